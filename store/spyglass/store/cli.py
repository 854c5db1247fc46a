"""The ``spyglass`` command.

``spyglass --version`` works on the core install; the other commands need the ``store`` extra
(click, rich, Starlette, uvicorn) and say how to install it when it is missing.
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
    try:
        from spyglass.store._cli import main as cli_main
    except ImportError as exc:
        print(
            f"spyglass: this command needs the store extra ({exc.name or exc} is missing).\n"
            "Install it with: pip install 'spyglass[store]'",
            file=sys.stderr,
        )
        return 1
    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
