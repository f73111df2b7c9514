"""``python -m drift``: see :mod:`drift.cli`."""

import sys

from drift.cli import main

if __name__ == "__main__":
    sys.exit(main())
