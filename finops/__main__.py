"""``python -m finops``: see :mod:`finops.cli`."""

import sys

from finops.cli import main

if __name__ == "__main__":
    sys.exit(main())
