"""The handler's container image, built from ``functions/`` and pushed by ``pulumi up`` (issue 13).

Cloud Run and Knative run the HTTP adapter from ``functions/Dockerfile``. When a function's
``runtime.image`` is unset, its component declares a ``docker-build:index:Image`` (the
``pulumi-docker-build`` provider: BuildKit through an embedded buildx client) with:

* the build context ``functions/`` only (relative to the project directory, which is the program's
  working directory under ``pulumi up``), so nothing else of the repository is sent to BuildKit or
  can end up in the image; ``functions/.dockerignore`` keeps caches and local files out of the
  context and out of the provider's context hash;
* ``linux/amd64``: Cloud Run runs x86_64 only, and a Kubernetes node pool of another architecture is
  stated by an explicit ``runtime.image``;
* ``push: true`` to one tag, ``<repository>:<function key>`` (stack-scoped, so two stacks sharing a
  repository never move each other's tag);
* a registry cache (``<repository>:buildcache``) that CI runners without a local layer cache reuse;
* no build on a preview (``buildOnPreview: false``): the provider's preview build "never exported
  to registries, however cache manifests are still exported" (the SDK's ``build_on_preview`` docs),
  i.e. a ``pulumi preview`` of a pull request would write ``cacheTo`` to the production registry with
  the deployer's identity. Dropping only ``cacheTo`` on a preview is no fix: ``Diff``
  (``provider/internal/image.go``) compares ``cacheTo`` with ``reflect.DeepEqual`` against the state
  of the last update, so every preview (also the one ``pulumi up`` runs first) would show the image
  as changed, build it, and, a preview build having no pushed digest, show a new revision for every
  Cloud Run and Knative service; and ``ignore_changes`` would send the old ``cacheTo`` to the preview
  build. A constant ``buildOnPreview: false`` keeps the inputs identical on preview and update (no
  diff from it after the one update that sets it) and the provider's ``Create`` returns before
  building on a dry run (``if req.DryRun && !input.shouldBuildOnPreview()``). The Dockerfile is still
  validated on preview ("On-disk Dockerfiles are always validated for syntactic correctness"), and
  tests/test_image_build.py starts the image's command from exactly the files it copies;
* no image labels: a label is a build input, and the metadata that carries budgets and owners
  changes without any code change (a budget edit must not rebuild the image or name a new revision);
  and the policy pack treats a resource with ``labels`` as taggable.

The service deploys the image **by digest** (``<repository>@sha256:...``, :func:`digest_ref`): a
revision keeps exactly the image it was created with when the tag moves, and a digest change is a
template change, so the components name a new revision for it.

The arguments are the provider's (Registry docs, www.pulumi.com/registry/packages/docker-build/: the
push-to-a-registry example with ``context.location``, ``tags``, ``cacheFrom``/``cacheTo`` registry
refs, ``push`` and ``registries`` from a registry's auth token; the 0.0.22 schema, also in the
pulumi_docker_build SDK pinned here: ``digest`` is "Empty if the image was not exported", ``ref`` is
one tag plus the digest, ``platforms`` an enum such as ``linux/amd64``).

Provider behaviour this relies on (pulumi/pulumi-docker-build ``provider/internal/image.go``): an
update rebuilds when the context hash changes (``hashBuildContext`` over the context minus its
``.dockerignore`` exclusions, and the Dockerfile), ``digest`` is the pushed manifest's digest, and
``Diff`` ignores changes of a registry's ``password`` (only address and username count), so a
short-lived access token passed as the password does not rebuild the image on every run. Without
``registries`` the provider uses the Docker credentials of the machine (``provider/internal/host.go``:
``newHost`` loads ``GetAllCredentials()`` of the Docker config into memory), i.e. its ``docker login``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker_build as docker_build
from pulumi import ResourceOptions

#: The build context, relative to the project directory (the program's working directory).
BUILD_CONTEXT = "functions"
#: The Dockerfile of the Cloud Run / Knative image, inside the context.
DOCKERFILE = "functions/Dockerfile"
#: The image name under a registry (Kubernetes) or an Artifact Registry repository (GCP).
IMAGE_NAME = "inferops-http-handler"
#: Cloud Run runs x86_64 only (components/spec.py); Kubernetes images are built for the same.
PLATFORM = docker_build.Platform.LINUX_AMD64
#: The tag of the registry cache next to the image.
CACHE_TAG = "buildcache"


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for one registry host, kept in memory by the provider (never in a docker config)."""

    address: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]


def build_image(
    name: str,
    repository: pulumi.Input[str],
    tag: str,
    *,
    login: RegistryLogin | None,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> docker_build.Image:
    """Declare the build and push of ``functions/Dockerfile`` to ``<repository>:<tag>``.

    ``name`` is the child's logical name (``<component>-image``); ``login`` is None when the host's
    own Docker credentials (``docker login`` on the runner) are to be used.
    """
    repo = pulumi.Output.from_input(repository)
    registries = (
        [
            docker_build.RegistryArgs(
                address=login.address,
                username=login.username,
                password=pulumi.Output.secret(login.password),
            )
        ]
        if login is not None
        else None
    )
    return docker_build.Image(
        name,
        context=docker_build.BuildContextArgs(location=BUILD_CONTEXT),
        dockerfile=docker_build.DockerfileArgs(location=DOCKERFILE),
        platforms=[PLATFORM],
        push=True,
        # Nothing is built, pushed or cached on a preview (module docstring); the same value on
        # preview and update, so it never is a diff of its own.
        build_on_preview=False,
        tags=[pulumi.Output.concat(repo, ":", tag)],
        registries=registries,
        cache_from=[
            docker_build.CacheFromArgs(
                registry=docker_build.CacheFromRegistryArgs(ref=pulumi.Output.concat(repo, ":", CACHE_TAG))
            )
        ],
        cache_to=[
            docker_build.CacheToArgs(
                registry=docker_build.CacheToRegistryArgs(
                    ref=pulumi.Output.concat(repo, ":", CACHE_TAG),
                    # The cache as an OCI image manifest rather than an index (image-manifest,
                    # moby/buildkit#3724): "Some registries like AWS ECR will not work with caching if
                    # this is false" (the SDK's CacheToRegistry docs), and it "Requires ociMediaTypes
                    # to also be true". Artifact Registry needs neither (it stores OCI image indexes
                    # and OCI-format artifacts: cloud.google.com/artifact-registry/docs/supported-formats;
                    # cache export to it works: moby/buildkit#1143), so this one form fits every
                    # registry `inferops:containerRegistry` may name.
                    image_manifest=True,
                    oci_media_types=True,
                    # Every step's cache, not only the final image's layers (the SDK default, min):
                    # no registry requires it; for today's single-stage Dockerfile the two export the
                    # same layers, and a builder stage added later keeps its cache.
                    mode=docker_build.CacheMode.MAX,
                    ignore_error=True,  # a failed cache export must not fail the deploy
                )
            )
        ],
        opts=ResourceOptions(parent=parent, depends_on=depends_on),
    )


class ImageBuildError(RuntimeError):
    """The build finished without a pushed digest: nothing deployable to point a revision at."""


def digest_ref(repository: pulumi.Input[str], tag: str, image: docker_build.Image) -> pulumi.Output[str]:
    """``<repository>@<digest>``: the pushed image by digest, what the services deploy.

    A preview does not build (``buildOnPreview: false``), so a build that is about to change reports
    no digest yet: the preview then shows the tag, a provisional value that the update replaces. An
    update without a digest is an error, never an image reference ending in ``@``.
    """

    def ref(args: list[str]) -> str:
        repo, digest = args
        if digest:
            return f"{repo}@{digest}"
        if pulumi.runtime.is_dry_run():
            return f"{repo}:{tag}"
        raise ImageBuildError(f"{repo}:{tag}: the image build pushed no digest; check the builder and registry")

    return pulumi.Output.all(pulumi.Output.from_input(repository), image.digest).apply(ref)
