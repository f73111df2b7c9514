"""``python -m drift``: see :mod:`drift.cli`. An unexpected exception exits 3, never 1 (a finding)."""

import sys

from drift.cli import main
from inferops.exitcodes import run_guarded

if __name__ == "__main__":
    sys.exit(run_guarded("drift", main))
