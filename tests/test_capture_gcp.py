"""GCP capture records leave the ``_Default`` log bucket (issue 13: monitoring must not cost more
than it saves): the component's project exclusion, checked under Pulumi's mocks and against a small
model of the Log Router.

Rules relied on, with their sources:

* A project exclusion is an exclusion filter of the ``_Default`` sink: the Logging API's
  ``projects.exclusions.create`` "Creates a new exclusion in the _Default sink in a specified parent
  resource" (cloud.google.com/logging/docs/reference/v2/rest/v2/projects.exclusions/create), and
  ``gcp.logging.ProjectExclusion`` is that API (terraform-provider-google
  google/services/logging/logging_exclusion_project.go: ``Projects.Exclusions.Create``).
* Sinks act independently: "Log sinks act independently of each other"
  (cloud.google.com/logging/docs/export); "every log sink in that resource independently evaluates the
  log entry" (cloud.google.com/logging/docs/routing/overview). So an exclusion of the ``_Default`` sink
  never stops the capture sink.
* Storing entries in a log bucket is what Logging bills ($0.50/GiB "streaming logs into log bucket
  storage"); "Log Router: No additional charge" (cloud.google.com/stackdriver/pricing).
* Exclusion ids: "limited to 100 characters and can include only letters, digits, underscores,
  hyphens, and periods. First character has to be alphanumeric" (LogExclusion.name, Logging API).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.gcp import STDOUT_LOG, capture_exclusion_name, capture_filter, service_name
from inferops.harness import ProgramRun
from tests.test_component_gcp import BUCKET_MEMBER, EXCLUSION, FN, SINK, SVC, RunEdited, children, one, set_fn

#: LogExclusion.name (Logging API reference), quoted in the module docstring.
EXCLUSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# --- a model of the Log Router, for the filter subset the component writes ----------------------------

#: Logging query language comparisons (cloud.google.com/logging/docs/view/logging-query-language):
#: ``FIELD="value"`` equality, ``FIELD:"value"`` has (substring for a string field), ``FIELD:*`` presence.
_CLAUSE = re.compile(r'(?P<field>[A-Za-z_][\w.]*)(?:(?P<op>[=:])"(?P<value>[^"]*)"|:(?P<star>\*))')


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def matches(query: str, entry: dict[str, Any]) -> bool:
    """``query`` (clauses joined by ``AND``) on ``entry``; a clause outside the subset is an error."""
    for clause in query.split(" AND "):
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            raise ValueError(f"not in the modelled filter subset: {clause!r}")
        value = _field(entry, m["field"])
        if m["star"]:
            ok = value is not None
        elif m["op"] == "=":
            ok = value is not None and str(value) == m["value"]
        else:
            ok = isinstance(value, str) and m["value"] in value
        if not ok:
            return False
    return True


def routed(entry: dict[str, Any], sinks: dict[str, tuple[str | None, list[str]]]) -> set[str]:
    """The sinks that route ``entry``: each evaluates it on its own (inclusion filter, then exclusions).

    An inclusion filter of None matches every entry (the ``_Default`` sink's filter only leaves out
    the audit logs routed to ``_Required``).
    """
    return {
        name
        for name, (include, exclusions) in sinks.items()
        if (include is None or matches(include, entry)) and not any(matches(x, entry) for x in exclusions)
    }


def entry(service: str = SVC, log: str = STDOUT_LOG, **payload: Any) -> dict[str, Any]:
    """A Cloud Run stdout ``LogEntry`` (cloud.google.com/run/docs/logging) with ``payload`` as jsonPayload."""
    return {
        "logName": f"projects/example-project/logs/{log}",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": service}},
        "jsonPayload": payload,
    }


RECORD = {"request_id": "r-1", "model_id": FN, "variant": "stable", "prediction": 1, "latency_ms": 3.2}


def router(run: ProgramRun) -> dict[str, tuple[str | None, list[str]]]:
    """The project's sinks as the program declares them: ``_Default`` with the project exclusions."""
    return {
        "_Default": (None, [x.inputs["filter"] for x in run.of_type(EXCLUSION)]),
        **{s.inputs["name"]: (s.inputs["filter"], []) for s in run.of_type(SINK)},
    }


# --- the exclusion ------------------------------------------------------------------------------------


def test_capture_records_are_excluded_from_default_with_the_sinks_own_filter(dev_run: ProgramRun) -> None:
    sink = one(dev_run, SINK)
    exclusion = one(dev_run, EXCLUSION)
    # Exactly the sink's filter: nothing but what the sink exports leaves _Default.
    assert exclusion.inputs["filter"] == sink.inputs["filter"] == capture_filter(SVC, FN)
    assert exclusion.inputs["name"] == f"{SVC}-capture" and EXCLUSION_ID.match(exclusion.inputs["name"])
    assert not exclusion.inputs.get("disabled")
    # ProjectExclusion is a project-level exclusion (Registry docs, gcp.logging.ProjectExclusion:
    # "Manages a project-level logging exclusion"); it names no sink, so it is the _Default sink's.
    assert "sink" not in exclusion.inputs
    # Created after the sink and its write grant (so a record is not in neither place while the
    # sink cannot write yet) and deleted before them.
    (writer,) = [m for m in children(dev_run, BUCKET_MEMBER) if m.name == f"{FN}-capture-write"]
    assert {sink.urn, writer.urn} <= set(exclusion.dependencies)
    assert exclusion.name == f"{FN}-capture-exclusion"


def test_the_capture_sink_still_receives_what_default_no_longer_stores(dev_run: ProgramRun) -> None:
    sinks = router(dev_run)
    capture_sink = one(dev_run, SINK).inputs["name"]
    # A capture record: exported, no longer stored (and billed) in _Default.
    assert routed(entry(**RECORD), sinks) == {capture_sink}
    # The same service's other stdout lines (no capture fields) and its stderr stay in _Default.
    assert routed(entry(message="model loaded", severity="INFO"), sinks) == {"_Default"}
    partial = {k: v for k, v in RECORD.items() if k != "prediction"}  # e.g. a request's error line
    assert routed(entry(**partial, error="bad input"), sinks) == {"_Default"}
    assert routed(entry(log="run.googleapis.com%2Fstderr", **RECORD), sinks) == {"_Default"}
    # Another service's records, or this service's for another model id, are not this sink's.
    other = service_name("inferops", "dev", "someone-else")
    assert routed(entry(service=other, **RECORD), sinks) == {"_Default"}
    assert routed(entry(**{**RECORD, "model_id": "another-model"}), sinks) == {"_Default"}


def test_the_router_model_would_catch_an_exclusion_on_the_wrong_sink(dev_run: ProgramRun) -> None:
    """The model can fail: an exclusion applied to the capture sink (its own ``exclusions``) drops the record."""
    sink = one(dev_run, SINK).inputs
    wrong = {"_Default": (None, []), sink["name"]: (sink["filter"], [one(dev_run, EXCLUSION).inputs["filter"]])}
    assert routed(entry(**RECORD), wrong) == {"_Default"}
    with pytest.raises(ValueError, match="not in the modelled filter subset"):
        matches('severity>=ERROR OR jsonPayload.x:"y"', entry())


def test_keep_in_logs_declares_no_exclusion(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"keepInLogs": True}))
    assert not children(run, EXCLUSION) and children(run, SINK)
    assert routed(entry(**RECORD), router(run)) == {"_Default", one(run, SINK).inputs["name"]}


def test_disabled_capture_excludes_nothing(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"enabled": False}))
    assert not run.of_type(EXCLUSION)


def test_an_existing_destination_is_excluded_from_default_too(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"destination": "gs://lake-bucket"}))
    assert one(run, EXCLUSION).inputs["filter"] == one(run, SINK).inputs["filter"]


@pytest.mark.parametrize("name", ["a", "x" * 200, "Weird Name!"])
def test_exclusion_ids_are_valid(name: str) -> None:
    exclusion = capture_exclusion_name(service_name("inferops", "dev", name))
    assert EXCLUSION_ID.match(exclusion), exclusion
