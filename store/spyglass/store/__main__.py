"""``python -m spyglass.store`` runs the ``spyglass`` command."""

from spyglass.store.cli import main

raise SystemExit(main())
