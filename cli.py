"""Thin shim: ``python cli.py ...`` behaves exactly like the ``vaeloss`` command."""

import sys

from vaeloss.cli import main

if __name__ == "__main__":
    sys.exit(main())
