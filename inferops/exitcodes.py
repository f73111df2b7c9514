"""Exit codes shared by every command line of the project (``../shared/design.md``).

Workflows act on :data:`EXIT_FINDING` only, so nothing but a real finding may return it: bad input is
:data:`EXIT_BAD_INPUT` with one line naming the file and field, and an unexpected exception is
:data:`EXIT_INTERNAL`, never mistaken for a verdict.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

EXIT_OK = 0
"""Nothing found."""
EXIT_FINDING = 1
"""A real finding: drift, a mandatory policy violation, a budget forecast or a cost anomaly."""
EXIT_BAD_INPUT = 2
"""Bad input or usage (argparse also exits 2 on usage errors)."""
EXIT_INTERNAL = 3
"""An internal error (a bug or a failing environment): never a verdict."""
EXIT_INTERRUPTED = 130


def run_guarded(prog: str, main: Callable[[], int]) -> int:
    """Run ``main`` and turn an unexpected exception into :data:`EXIT_INTERNAL` with a one-line message.

    ``main`` handles its own expected errors (returning :data:`EXIT_BAD_INPUT`); whatever escapes it is
    a bug or an environment failure. The traceback goes to stderr only when ``INFEROPS_DEBUG`` is set,
    so logs stay one line per failure.
    """

    try:
        return int(main())
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BaseException as exc:  # the whole point: nothing escapes as exit 1
        if os.environ.get("INFEROPS_DEBUG"):
            traceback.print_exc()
        detail = " ".join(str(exc).split())[:300]
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {detail} (exit {EXIT_INTERNAL})\n")
        return EXIT_INTERNAL
