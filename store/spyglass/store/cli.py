"""The ``spyglass`` command.

``spyglass --version`` works on the core install; the other commands need the ``store`` extra and say so.
"""

from __future__ import annotations

import sys
from importlib import metadata


def version() -> str:
    try:
        return metadata.version("spyglass")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"], ["version"]):
        print(f"spyglass {version()}")
        return 0
    print("usage: spyglass --version", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
