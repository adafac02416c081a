"""The ``selfrecon`` command (placeholder until the CLI issue)."""

from __future__ import annotations

import sys

from selfrecon import __version__


def main(argv: list[str] | None = None) -> int:
    print(f"selfrecon {__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
