"""Azure Functions adapter (Python v2 programming model): ``POST /api/predict``, ``GET /api/healthz``.

``predict`` requires a function key (``AuthLevel.FUNCTION``) unless the app setting
``INFEROPS_AUTH_LEVEL`` is ``anonymous``, which the Azure component sets only when the spec says
``endpoint.public: true`` (and which the policy pack reports). The health probe is anonymous and
reveals only the model id and version.
"""

from __future__ import annotations

import json
import os

import azure.functions as func

if __package__:
    from . import core
else:  # deployed: this directory is the function app's root
    import core  # type: ignore[no-redef]

#: The app setting the Azure component writes: ``function`` (default) or ``anonymous``.
AUTH_LEVEL_SETTING = "INFEROPS_AUTH_LEVEL"


def auth_level(environ: dict[str, str] | None = None) -> func.AuthLevel:
    """The auth level of ``predict``: anonymous only when explicitly configured, else a function key."""
    value = (os.environ if environ is None else environ).get(AUTH_LEVEL_SETTING, "function").strip().lower()
    return func.AuthLevel.ANONYMOUS if value == "anonymous" else func.AuthLevel.FUNCTION


app = func.FunctionApp(http_auth_level=auth_level())


def _response(status: int, payload: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json")


@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    """Predict for the JSON body (one object of features, or ``{"instances": [...]}``)."""
    try:
        body = req.get_body()
    except Exception:  # a request the host could not buffer: answer, never raise into the host
        return _response(400, {"error": "body: cannot be read"})
    return _response(*core.handle(body, request_id=core.request_id_from(dict(req.headers))))


@app.route(route="healthz", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def healthz(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: 200 once the model is loaded."""
    return _response(*core.health())
