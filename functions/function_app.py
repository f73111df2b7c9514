"""Azure Functions adapter (Python v2 programming model): ``POST /api/predict``, ``GET /api/healthz``.

``predict`` requires a function key (``AuthLevel.FUNCTION``); the health probe is anonymous and
reveals only the model id and version.
"""

from __future__ import annotations

import json

import azure.functions as func

if __package__:
    from . import core
else:  # deployed: this directory is the function app's root
    import core  # type: ignore[no-redef]

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _response(status: int, payload: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json")


@app.route(route="predict", methods=["POST"])
def predict(req: func.HttpRequest) -> func.HttpResponse:
    """Predict for the JSON body (one object of features, or ``{"instances": [...]}``)."""
    return _response(*core.handle(req.get_body()))


@app.route(route="healthz", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def healthz(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: 200 once the model is loaded."""
    return _response(*core.health())
