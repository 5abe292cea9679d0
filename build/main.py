"""Entry point of the frozen executable (PyInstaller): the same ``pillarbox`` command."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
