"""The handler image that ``pulumi up`` builds and pushes for gcp and kubernetes functions (issue 13).

No Docker engine exists here, so the build is checked where it can be: the ``docker-build:index:Image``
resources the program registers under Pulumi's mocks (context, Dockerfile, platform, push, registry,
credentials), the digest wired into the Cloud Run revision and the Knative container, the revision
names a new digest gets across a deploy history, and ``functions/Dockerfile`` and
``functions/.dockerignore`` themselves: parsed, the context they define computed, and the image's
command started from exactly the files the Dockerfile copies.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from components.gcp import artifact_repository_id
from components.image import BUILD_CONTEXT, DOCKERFILE
from components.kubernetes import CONTAINER_PORT
from components.spec import SpecError, parse_stack_config
from inferops.harness import (
    MOCK_ACCESS_TOKEN,
    ProgramError,
    ProgramRun,
    RecordingMocks,
    RegisteredResource,
    run_program,
)
from tests.conftest import DEV_STACK, ROOT, function_config
from tests.history import State, StatefulMocks, Step
from tests.test_transitions import LIMIT_NAMES, check_gcp, check_kubernetes, history

IMAGE = "docker-build:index:Image"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPOSITORY_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
RUN = "gcp:cloudrunv2/service:Service"
KSVC = "kubernetes:serving.knative.dev/v1:Service"
GCP_FN, K8S_FN = "doc-classifier", "sentiment"
#: Pulumi's secret envelope in registered inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
DIGEST_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
#: What the dev stack's functions deployed with their given images before images could be built
#: (computed by the program at commit 6489385): a stack that keeps ``runtime.image`` must keep its
#: revision names, or every existing deployment would get a new revision from this change alone.
GIVEN_GCP_IMAGE = "us-docker.pkg.dev/example-inferops-dev/inferops/http-handler:0.1.0"
GIVEN_K8S_IMAGE = "ghcr.io/example/inferops-http-handler:0.1.0"
GIVEN_GCP_REVISION = "inferops-dev-doc-classifier-3-0-1-9e2e"
GIVEN_K8S_REVISION = "sentiment-0-9-0-d7a8282"


# --- helpers -------------------------------------------------------------------------------------


def children(run: ProgramRun, component: str, typ: str) -> list[RegisteredResource]:
    (comp,) = [r for r in run.resources if not r.custom and r.name == component and r.type.startswith("inferops:")]
    return [r for r in run.children_of(comp.urn) if r.type == typ]


def one(run: ProgramRun, component: str, typ: str) -> RegisteredResource:
    found = children(run, component, typ)
    assert len(found) == 1, (component, typ, [r.name for r in found])
    return found[0]


def unwrap_secret(value: Any) -> tuple[Any, bool]:
    """``(plain value, was it a secret)`` of a registered input."""
    if isinstance(value, dict) and SECRET_SIG in value:
        return value["value"], True
    return value, False


def cloud_run_image(run: ProgramRun) -> str:
    return str(one(run, GCP_FN, RUN).inputs["template"]["containers"][0]["image"])


def knative_template(run: ProgramRun) -> dict[str, Any]:
    return one(run, K8S_FN, KSVC).inputs["spec"]["template"]  # type: ignore[no-any-return]


def with_images(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    function_config(config, GCP_FN)["runtime"]["image"] = GIVEN_GCP_IMAGE
    function_config(config, K8S_FN)["runtime"]["image"] = GIVEN_K8S_IMAGE
    return config


# --- the image resources -------------------------------------------------------------------------


def test_gcp_builds_functions_into_its_own_artifact_registry_repository(dev_run: ProgramRun) -> None:
    repo = one(dev_run, GCP_FN, REPOSITORY)
    assert repo.inputs["format"] == "DOCKER"
    assert repo.inputs["location"] == "us-central1"  # the function's region
    assert repo.inputs["repositoryId"] == "inferops-dev-doc-classifier"  # project, stack and function
    assert repo.name == f"{GCP_FN}-images"
    assert repo.inputs["labels"]["function-name"] == "inferops-dev-doc-classifier"  # cost attribution

    image = one(dev_run, GCP_FN, IMAGE)
    assert image.name == f"{GCP_FN}-image"
    args = image.inputs
    assert args["context"] == {"location": "functions"}  # the build sees functions/ only
    assert args["dockerfile"] == {"location": "functions/Dockerfile"}
    assert args["push"] is True
    # Cloud Run runs x86_64 only (cloud.google.com/run/docs/container-contract: "linux/amd64").
    assert args["platforms"] == ["linux/amd64"]
    # <region>-docker.pkg.dev/<project>/<repository>/<image> (cloud.google.com/artifact-registry/docs/docker/names)
    repository = "us-central1-docker.pkg.dev/example-project/inferops-dev-doc-classifier/inferops-http-handler"
    assert repo.outputs["registryUri"] + "/inferops-http-handler" == repository
    assert args["tags"] == [f"{repository}:inferops-dev-doc-classifier"]
    assert args["cacheFrom"] == [{"registry": {"ref": f"{repository}:buildcache"}}]
    assert args["cacheTo"][0]["registry"]["ref"] == f"{repository}:buildcache"
    assert "labels" not in args  # a label is a build input: metadata edits must not rebuild


def test_gcp_push_logs_in_with_the_providers_access_token_as_a_secret(dev_run: ProgramRun) -> None:
    """Artifact Registry accepts an OAuth access token as the password of user ``oauth2accesstoken``
    (cloud.google.com/artifact-registry/docs/docker/authentication, access token): the identity that
    runs ``pulumi up`` (a CI runner's workload identity) pushes, with no docker login on the runner.
    The provider ignores password changes in its diff (pulumi/pulumi-docker-build
    provider/internal/image.go, ``Diff``), so a fresh token each run rebuilds nothing."""
    registries, secret = unwrap_secret(one(dev_run, GCP_FN, IMAGE).inputs["registries"])
    assert secret, "the access token must never be a plain input"
    assert registries == [
        {"address": "us-central1-docker.pkg.dev", "username": "oauth2accesstoken", "password": MOCK_ACCESS_TOKEN}
    ]


def test_no_grant_on_the_repository_the_service_agent_pulls_from_its_own_project(dev_run: ProgramRun) -> None:
    """Cloud Run pulls the image with its service agent, not the revision's service account: the
    control plane's error names it ("Google Cloud Run Service Agent <account> must have permission to
    read the image", matched by GoogleCloudPlatform/gcpdiag gcpdiag/runbook/cloudrun/service_deployment.py),
    and "Google Cloud runtime environments are preconfigured with access to repositories in the same
    project" (cloud.google.com/artifact-registry/docs/deploy). The repository is the service's
    project's (one provider), so nothing is granted: the running code gets no read on images."""
    assert not children(dev_run, GCP_FN, REPOSITORY_MEMBER)
    repo, svc = one(dev_run, GCP_FN, REPOSITORY), one(dev_run, GCP_FN, RUN)
    assert "project" not in repo.inputs and "project" not in svc.inputs  # both the provider's project
    assert repo.inputs["location"] == svc.inputs["location"]


def test_cloud_run_deploys_the_built_image_by_digest(dev_run: ProgramRun) -> None:
    """The digest is the pushed manifest's; BuildKit's default provenance makes it an image index
    (image + attestation manifest). Cloud Run accepts Docker V2 and OCI images, and of an index "the
    manifest list must include linux/amd64" (cloud.google.com/run/docs/container-contract; it added
    index support in 2023, docker/buildx#1533), which the single linux/amd64 platform guarantees."""
    image = one(dev_run, GCP_FN, IMAGE)
    digest = image.outputs["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    repository = image.inputs["tags"][0].rsplit(":", 1)[0]
    assert cloud_run_image(dev_run) == f"{repository}@{digest}"
    assert DIGEST_REF.match(cloud_run_image(dev_run))


def test_knative_pushes_to_the_configured_registry_and_deploys_by_digest(dev_run: ProgramRun) -> None:
    image = one(dev_run, K8S_FN, IMAGE)
    args = image.inputs
    assert args["context"] == {"location": "functions"} and args["dockerfile"] == {"location": "functions/Dockerfile"}
    assert args["push"] is True and args["platforms"] == ["linux/amd64"]
    # inferops:containerRegistry of Pulumi.dev.yaml, a stack-scoped tag
    assert args["tags"] == ["ghcr.io/example/inferops-http-handler:inferops-dev-sentiment"]
    assert "registries" not in args  # the runner's own docker login; stack config holds no secrets
    (container,) = knative_template(dev_run)["spec"]["containers"]
    assert container["image"] == f"ghcr.io/example/inferops-http-handler@{image.outputs['digest']}"
    assert container["ports"] == [{"name": "http1", "containerPort": CONTAINER_PORT}]


def test_images_are_built_once_per_function_and_only_without_runtime_image(dev_run: ProgramRun) -> None:
    built = sorted(r.name for r in dev_run.resources if r.type == IMAGE)
    assert built == [f"{GCP_FN}-image", f"{K8S_FN}-image"]  # aws and azure deploy no container


def test_a_given_runtime_image_is_deployed_unchanged_and_nothing_is_built(dev_config: dict[str, Any]) -> None:
    run = run_program(DEV_STACK, config=with_images(dev_config), stack="dev")
    assert not [r for r in run.resources if r.type in (IMAGE, REPOSITORY, REPOSITORY_MEMBER)]
    assert cloud_run_image(run) == GIVEN_GCP_IMAGE
    assert knative_template(run)["spec"]["containers"][0]["image"] == GIVEN_K8S_IMAGE
    # Revision names as before images could be built: existing stacks get no new revision.
    assert one(run, GCP_FN, RUN).inputs["template"]["revision"] == GIVEN_GCP_REVISION
    assert knative_template(run)["metadata"]["name"] == GIVEN_K8S_REVISION
    # ...and with every kubernetes image given, no registry is needed.
    config = with_images(dev_config)
    del config["inferops:containerRegistry"]
    assert parse_stack_config(config).container_registry is None


def test_registry_is_required_only_for_a_kubernetes_build(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    del config["inferops:containerRegistry"]
    with pytest.raises(SpecError, match=r"^inferops:containerRegistry: required when a kubernetes function"):
        parse_stack_config(config)
    # GCP declares its own repository: a gcp build needs no registry key.
    function_config(config, K8S_FN)["runtime"]["image"] = GIVEN_K8S_IMAGE
    assert function_config(config, GCP_FN)["runtime"].get("image") is None
    assert parse_stack_config(config).functions[2].runtime.image is None


@pytest.mark.parametrize("name", [GCP_FN, LIMIT_NAMES["gcp"]])
@pytest.mark.parametrize("stack", ["dev", "Prod.EU_2"])
def test_artifact_registry_repository_ids_meet_the_naming_rule(name: str, stack: str) -> None:
    """Repository ids: lowercase letters, digits and hyphens, starting with a letter, ending with a letter
    or digit, at most 63 characters (cloud.google.com/artifact-registry/docs/repositories/create-repos);
    distinct per stack (design.md: two stacks never collide in one project)."""
    rid = artifact_repository_id("inferops", stack, name)
    assert re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", rid), rid
    assert rid != artifact_repository_id("inferops", "other", name)


# --- a new digest: a new revision, and canaries keep working --------------------------------------


class Builds(StatefulMocks):
    """Stateful mocks whose image builds report the digest of a given code version (``code``)."""

    def __init__(self, prior: State, code: str) -> None:
        super().__init__(prior)
        self.code = code

    def outputs_for(self, args: Any) -> tuple[str, dict[str, Any]]:
        rid, outputs = super().outputs_for(args)
        if args.typ == IMAGE:
            digest = "sha256:" + hashlib.sha256(f"{self.code}/{args.name}".encode()).hexdigest()
            outputs = {**outputs, "digest": digest}
            self.state.resources[(args.typ, args.name)]["outputs"] = outputs
        return rid, outputs


def deploy(configs: list[tuple[str, str, dict[str, Any]]]) -> list[Step]:
    """(label, code version, config) deployed in order with state carried, like tests.history."""
    steps, state = [], State()
    for label, code, config in configs:
        mocks = Builds(state, code)
        run = run_program(DEV_STACK, config=config, stack="dev", mocks=mocks)
        steps.append(Step(label, state, run, mocks.state))
        state = mocks.state
    return steps


@pytest.fixture(scope="module")
def code_history(dev_config: dict[str, Any]) -> list[Step]:
    configs = dict(history(dev_config, long_names=False))
    return deploy(
        [
            ("stable first", "code-1", configs["stable first"]),
            ("stable, code changed", "code-2", configs["stable first"]),
            ("canary, code changed again", "code-3", configs["canary"]),
            ("canary, same code", "code-3", configs["canary"]),
        ]
    )


def test_a_new_digest_is_a_new_revision_and_the_same_digest_keeps_it(code_history: list[Step]) -> None:
    """Cloud Run rejects a reused revision name with another template (HTTP 409,
    cloud.google.com/run/docs/managing/revisions) and Knative a changed template that keeps its name
    (VerifyNameChange, knative/serving pkg/apis/serving/v1/revision_validation.go): the digest is part
    of the template, so it must be part of the name."""
    first, changed, canary, same = (s.run for s in code_history)
    assert cloud_run_image(first) != cloud_run_image(changed)
    assert (
        one(first, GCP_FN, RUN).inputs["template"]["revision"]
        != one(changed, GCP_FN, RUN).inputs["template"]["revision"]
    )
    assert knative_template(first)["metadata"]["name"] != knative_template(changed)["metadata"]["name"]
    # Same code, same config: the same revision (no needless rollout).
    assert one(canary, GCP_FN, RUN).inputs["template"] == one(same, GCP_FN, RUN).inputs["template"]
    assert knative_template(canary) == knative_template(same)
    for step in code_history:
        check_gcp(step)
        check_kubernetes(step)


def test_a_canary_built_from_new_code_routes_to_the_stable_revision_of_the_old_code(
    code_history: list[Step],
) -> None:
    stable_run, canary_run = code_history[1].run, code_history[2].run
    stable_gcp = one(stable_run, GCP_FN, RUN).inputs["template"]["revision"]
    stable_k8s = knative_template(stable_run)["metadata"]["name"]
    gcp_traffic = {t["revision"]: t["percent"] for t in one(canary_run, GCP_FN, RUN).inputs["traffics"]}
    candidate = one(canary_run, GCP_FN, RUN).inputs["template"]["revision"]
    assert gcp_traffic == {stable_gcp: 90, candidate: 10}
    k8s_traffic = {t["revisionName"]: t["percent"] for t in one(canary_run, K8S_FN, KSVC).inputs["spec"]["traffic"]}
    assert k8s_traffic == {stable_k8s: 90, knative_template(canary_run)["metadata"]["name"]: 10}
    assert canary_run.exports[GCP_FN]["canaryPercent"] == 10 and canary_run.exports[K8S_FN]["canaryPercent"] == 10


# --- functions/Dockerfile and the build context ---------------------------------------------------

FUNCTIONS = ROOT / BUILD_CONTEXT


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of functions/Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / DOCKERFILE).read_text()
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copies() -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of each COPY (no ``--from``: everything comes from the context)."""
    out = []
    for word, args in dockerfile_instructions():
        assert word != "ADD", "ADD can fetch URLs and unpack archives: the image uses COPY only"
        if word == "COPY":
            assert not args.startswith("--from"), args
            parts = args.split()
            out.append((parts[:-1], parts[-1]))
    return out


def dockerignore_excludes(relative: str, patterns: list[str]) -> bool:
    """Whether ``relative`` (a path in the context) is excluded by .dockerignore ``patterns``.

    Docker's rules (docs.docker.com/build/concepts/context/#dockerignore-files): patterns match with Go's
    filepath.Match plus ``**`` for any number of directories, a path is also excluded when a parent
    directory matches, ``!`` makes an exception, and the last matching line decides.
    """

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out += pattern[i : end + 1]
                i = end + 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out)

    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        if any(regex(pattern).fullmatch(p) for p in prefixes):
            excluded = not negate
    return excluded


def ignore_patterns() -> list[str]:
    lines = (FUNCTIONS / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def context_files(root: Path) -> set[str]:
    """The files of a context directory that BuildKit receives (after .dockerignore)."""
    patterns = ignore_patterns()
    found = set()
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            if not dockerignore_excludes(rel, patterns):
                found.add(rel)
    return found


def test_dockerignore_evaluator_follows_dockers_rules() -> None:
    """The helper below is checked against Docker's documented examples before it judges the context."""
    assert dockerignore_excludes("a/b/__pycache__/x.pyc", ["**/__pycache__"])
    assert dockerignore_excludes("temp.txt", ["temp?.txt"]) is False
    assert dockerignore_excludes("temp1.txt", ["temp?.txt"])
    assert dockerignore_excludes("README.md", ["*.md", "!README.md"]) is False
    assert dockerignore_excludes("docs/x.md", ["*.md"]) is False  # * does not cross directories
    assert dockerignore_excludes("models/m.json", ["*", "!models"]) is False
    assert dockerignore_excludes("models/m.json", ["*"])


def test_every_copy_source_is_inside_functions_and_in_the_context() -> None:
    """The build uses only functions/: COPY sources are relative paths inside the context that exist
    and that .dockerignore keeps (a COPY of an excluded file fails the build)."""
    sources = [s for srcs, _ in copies() for s in srcs]
    assert sources, "the Dockerfile copies nothing"
    included = context_files(FUNCTIONS)
    for src in sources:
        assert not src.startswith("/") and ".." not in Path(src).parts, src
        path = (FUNCTIONS / src).resolve()
        assert path.is_relative_to(FUNCTIONS.resolve()) and path.exists(), src
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for f in files:
            if "__pycache__" not in f.parts:
                assert f.relative_to(FUNCTIONS).as_posix() in included, f"{f} is copied but excluded"


def test_context_is_what_the_image_needs_and_no_cache_or_test_file(tmp_path: Path) -> None:
    """A copy of functions/ with the debris of a working tree: caches, tests, a venv, the other adapters."""
    context = tmp_path / "functions"
    shutil.copytree(FUNCTIONS, context, ignore=shutil.ignore_patterns("__pycache__"))
    for debris in (
        "__pycache__/core.cpython-311.pyc",
        "models/__pycache__/x.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".mypy_cache/3.11/core.meta.json",
        "tests/test_core.py",
        ".venv/bin/python",
        "core.pyc",
        ".env",
    ):
        (context / debris).parent.mkdir(parents=True, exist_ok=True)
        (context / debris).write_text("x")
    included = context_files(context)
    copied = {s for srcs, _ in copies() for s in srcs}
    expected = {"Dockerfile"} | {
        p.relative_to(context).as_posix()
        for s in copied
        for p in ([context / s] if (context / s).is_file() else (context / s).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert included == expected
    # The Lambda and Azure adapters are not in the context: editing them rebuilds no image.
    assert "aws_lambda.py" not in included and "function_app.py" not in included


def test_entry_point_runs_the_http_adapter_as_a_numeric_non_root_user() -> None:
    instructions = dockerfile_instructions()
    words = [w for w, _ in instructions]
    assert words[0] == "FROM"
    (cmd,) = [json.loads(a) for w, a in instructions if w == "CMD"]  # exec form: PID 1 gets SIGTERM
    assert cmd == ["python", "-m", "http_server"]
    assert "ENTRYPOINT" not in words
    (workdir,) = [a for w, a in instructions if w == "WORKDIR"]
    # http_server.py lands in the working directory, where `python -m` finds it.
    assert any("http_server.py" in srcs and dest in ("./", ".", workdir, workdir + "/") for srcs, dest in copies())
    # runAsNonRoot can only be verified for a numeric user (kubernetes.io/docs/tasks/configure-pod-container/
    # security-context: "the kubelet will validate the image at runtime to ensure that it does not run as UID 0").
    (user,) = [a for w, a in instructions if w == "USER"]
    assert user.isdigit() and int(user) != 0
    exposed = [a for w, a in instructions if w == "EXPOSE"]
    assert exposed == [str(CONTAINER_PORT)]


def build_app_dir(tmp_path: Path) -> Path:
    """The image's /app as the Dockerfile assembles it: only the COPY sources, at their destinations."""
    app = tmp_path / "app"
    app.mkdir()
    for sources, dest in copies():
        for src in sources:
            origin = FUNCTIONS / src
            if dest.endswith("/") or len(sources) > 1 or dest in (".", "./"):
                target = app / dest / Path(src).name
            else:
                target = app / dest
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    return app


def test_the_images_command_starts_from_the_copied_files_alone(tmp_path: Path) -> None:
    """The CMD run in a directory holding only what the Dockerfile copies (so a module the adapter
    imports but the image lacks fails here), on a loopback port, answers /healthz and /predict."""
    app = build_app_dir(tmp_path)
    (cmd,) = [json.loads(a) for w, a in dockerfile_instructions() if w == "CMD"]
    assert cmd[0] == "python"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": "0",  # any free port; the server says which
        "INFEROPS_HTTP_HOST": "127.0.0.1",
        "MODEL_URI": str(app / "models" / "example-linear.json"),
        "MODEL_ID": "example",
        "MODEL_VERSION": "1.0.0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, *cmd[1:]], cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(20, proc.kill)  # a hung start fails instead of hanging
    watchdog.start()
    try:
        port = None
        seen = []
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            try:
                record = json.loads(line)
            except ValueError:  # a traceback: the image would not start either
                continue
            if record.get("message") == "listening":
                port = int(record["port"])
                assert record["host"] == "127.0.0.1"
                break
        assert port, f"the server did not start: {seen[-3:]}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        health = conn.getresponse()
        assert health.status == 200, health.read()
        health.read()
        body = json.dumps({"amount": 20, "age": 30, "country": "US", "device": "ios"})
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        payload = json.loads(answer.read())
        assert answer.status == 200, payload
        assert payload["model_version"] == "1.0.0" and "request_id" in payload
        conn.close()
    finally:
        watchdog.cancel()
        proc.kill()
        proc.communicate(timeout=10)


class NoDigest(RecordingMocks):
    """A build that exported nothing (the provider reports an empty digest)."""

    def outputs_for(self, args: Any) -> tuple[str, dict[str, Any]]:
        rid, outputs = super().outputs_for(args)
        if args.typ == IMAGE:
            outputs = {**outputs, "digest": ""}
        return rid, outputs


def test_a_preview_before_the_push_shows_the_tag_and_an_update_without_digest_fails() -> None:
    preview = run_program(DEV_STACK, stack="dev", preview=True, mocks=NoDigest())
    assert cloud_run_image(preview).endswith("/inferops-http-handler:inferops-dev-doc-classifier")
    assert knative_template(preview)["spec"]["containers"][0]["image"] == (
        "ghcr.io/example/inferops-http-handler:inferops-dev-sentiment"
    )
    with pytest.raises(Exception, match="the image build pushed no digest"):
        run_program(DEV_STACK, stack="dev", preview=False, mocks=NoDigest())


def test_the_pack_reads_an_image_builds_tags_as_image_references_not_a_tag_map(dev_run: ProgramRun) -> None:
    """``tags`` of a docker-build Image is a list of image references: no cost-allocation tag map,
    so the FinOps tag rule does not ask it for cost-center; a hand-written resource with a tag map
    still must carry the keys (the same rule, one mutation)."""
    from tests.test_policy_support import finops, run_resource

    image = one(dev_run, K8S_FN, IMAGE)
    assert run_resource(finops.tags_validator, IMAGE, image.inputs, name=image.name) == []
    tagged = {**image.inputs, "tags": {"team": "ml"}}
    messages = run_resource(finops.tags_validator, IMAGE, tagged, name=image.name)
    assert len(messages) == 4 and all("cost-allocation key" in m for m in messages)


def test_the_program_stops_with_one_line_naming_the_registry_key(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    del config["inferops:containerRegistry"]
    with pytest.raises(ProgramError) as err:
        run_program(DEV_STACK, config=config, stack="dev")
    assert str(err.value).startswith("inferops:containerRegistry: required when a kubernetes function")
    assert "\n" not in str(err.value)
