"""``python -m inferops.cisetup``: what a CI runner needs before ``pulumi preview``/``up`` of a stack.

The program builds the handler image itself (:mod:`components.image`, the ``pulumi-docker-build``
provider) for every GCP and Kubernetes function without ``runtime.image``. The runner then needs a
BuildKit builder (the workflows set up buildx), and for a Kubernetes build a ``docker login`` to the
registry host of ``inferops:containerRegistry``: the provider reads the runner's Docker credentials
(GCP builds log in with the GCP provider's access token and need nothing from the runner).

Inputs come from the environment only, so no user value reaches a command line: ``STACK`` (reads
``Pulumi.<stack>.yaml`` in the working directory) or ``STACK_FILE`` (a path). The stack file is read
through :func:`inferops.harness.load_stack_file` (:mod:`inferops.safeload`: bounded, plain values) and
validated by :func:`components.spec.parse_stack_config`, the program's own parser, so the decision is
the program's and the registry is a validated ``host[:port][/path]`` (it never starts with ``-``).

Output: ``key=value`` lines appended to ``$GITHUB_OUTPUT`` (stdout when it is unset):

* ``build``: ``true`` when some function's image is built (set up buildx);
* ``login``: ``true`` when a Kubernetes function's image is built (log in to ``registry``);
* ``registry``: the registry host (``ghcr.io``) of ``inferops:containerRegistry``, empty otherwise;
* ``functions``: the functions whose image is built, comma-separated (for the log).

Exit 0; 2 with one line naming the file and field for a missing, unreadable or invalid stack file or
a usage error; 3 for an internal error (:func:`inferops.exitcodes.run_guarded`).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_OK, run_guarded

PROG = "inferops.cisetup"
_STACK_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # Pulumi stack names (a project-scoped name)


@dataclass(frozen=True)
class CiNeeds:
    """What the runner must provide before the program runs."""

    built: tuple[str, ...]  # functions whose image the program builds (gcp or kubernetes, no runtime.image)
    kubernetes_built: tuple[str, ...]  # of those, the kubernetes ones (pushed with the runner's login)
    registry_host: str  # host[:port] of inferops:containerRegistry when a kubernetes image is built, else ""

    def outputs(self) -> dict[str, str]:
        """The step outputs, as strings."""
        return {
            "build": "true" if self.built else "false",
            "login": "true" if self.kubernetes_built else "false",
            "registry": self.registry_host,
            "functions": ",".join(self.built),
        }


def registry_host(registry: str) -> str:
    """``ghcr.io/example`` -> ``ghcr.io``: the key of Docker's credential store is the host[:port]."""
    return registry.split("/", 1)[0]


def ci_needs(stack_file: str | os.PathLike[str]) -> CiNeeds:
    """Read and validate ``stack_file``; raises ``ValueError`` with one line naming the file and field."""
    from components.spec import SpecError, parse_stack_config
    from inferops.harness import load_stack_file
    from inferops.safeload import escape

    config = load_stack_file(stack_file)  # StackFileError (a ValueError) names the file
    try:
        stack = parse_stack_config(config)
    except SpecError as exc:
        raise ValueError(f"{escape(str(stack_file))}: {exc}") from None
    built = tuple(f.name for f in stack.functions if f.platform in ("gcp", "kubernetes") and f.runtime.image is None)
    kube = tuple(f.name for f in stack.functions if f.platform == "kubernetes" and f.runtime.image is None)
    # parse_stack_config requires inferops:containerRegistry when `kube` is not empty.
    host = registry_host(stack.container_registry) if kube and stack.container_registry else ""
    return CiNeeds(built=built, kubernetes_built=kube, registry_host=host)


def _stack_file(env: dict[str, str]) -> Path:
    if env.get("STACK_FILE"):
        return Path(env["STACK_FILE"])
    stack = env.get("STACK", "")
    if not _STACK_RE.fullmatch(stack):
        raise ValueError("STACK: set it to the stack name (Pulumi.<stack>.yaml), or STACK_FILE to the stack file")
    return Path(f"Pulumi.{stack}.yaml")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from inferops.safeload import escape

    def run() -> int:
        args = sys.argv[1:] if argv is None else argv
        if args:
            print(f"{PROG}: error: takes no arguments (STACK or STACK_FILE in the environment)", file=sys.stderr)
            return EXIT_BAD_INPUT
        env = dict(os.environ)
        try:
            needs = ci_needs(_stack_file(env))
        except ValueError as exc:
            print(f"{PROG}: error: {escape(' '.join(str(exc).split()))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        lines = "".join(f"{k}={v}\n" for k, v in needs.outputs().items())
        out = env.get("GITHUB_OUTPUT")
        if out:
            with open(out, "a", encoding="utf-8") as fh:
                fh.write(lines)
        else:
            sys.stdout.write(lines)
        what = ", ".join(needs.built) or "none"
        login = f"; docker login to {needs.registry_host} needed" if needs.kubernetes_built else ""
        print(f"{PROG}: images built by the program: {what}{login}", file=sys.stderr)
        return EXIT_OK

    return run_guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main())
