"""``GET <URL_PREFIX>healthz``: is the warehouse readable, which data and which models are served.

For load balancers and monitoring, so no authentication and no HTML: 200 with JSON when the
warehouse answers a query, 503 with JSON saying why when it is missing or unreadable. A
missing or stale model is reported in the body but keeps the 200: every page except
Segments, What-if and Model still works without one.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify

from dashboard.models import SUBJECTS, read_card
from dashboard.source import Unavailable

log = logging.getLogger(__name__)


def _models(data_version: str) -> tuple[dict, bool]:
    """(facts per subject, whether every model is present and trained on the served data)."""
    models, complete = {}, True
    for subject in SUBJECTS:
        try:
            card = read_card(subject)
        except Unavailable as exc:
            models[subject] = {"status": "missing", "message": exc.message, "command": exc.command}
            complete = False
            continue
        current = card.data_version == data_version
        complete = complete and current
        models[subject] = {"status": "current" if current else "stale",
                           "model_version": card.model_version,
                           "data_version": card.data_version,
                           "trained_at": card.trained_at}
    return models, complete


def health() -> tuple[dict, int]:
    from dashboard.queries import latest_run  # queries import Ibis; keep app start light

    try:
        run = latest_run()
    except Unavailable as exc:
        log.warning("health check: warehouse unavailable: %s", exc.message)
        return {"status": "unavailable", "message": exc.message, "command": exc.command}, 503
    except Exception as exc:  # noqa: BLE001 - a corrupt file fails in the query, not the open
        log.warning("health check: warehouse unreadable: %s", type(exc).__name__)
        return {"status": "unavailable", "message": f"The warehouse cannot be read ({type(exc).__name__})."}, 503
    models, complete = _models(run["data_version"])
    return {"status": "ok" if complete else "degraded", "data_version": run["data_version"],
            "last_refresh": str(run.get("finished_at")), "models": models}, 200


def register_health(server: Flask, prefix: str) -> None:
    @server.route(f"{prefix}healthz", methods=["GET"])
    def healthz():
        body, status = health()
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
