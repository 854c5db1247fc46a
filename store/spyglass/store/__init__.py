"""The bundled Spyglass trace store (``spyglass serve``): OTLP receiver, storage, API, UI and CLI.

Importing this package must stay cheap and dependency-free: the ``spyglass`` console script starts here.
"""

from __future__ import annotations

__all__: list[str] = []
