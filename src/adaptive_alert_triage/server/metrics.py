"""Prometheus metrics of one server app (its own registry, so apps in one
process never mix their counts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class ServerMetrics:
    """Sessions, steps, episodes and task scores, by API (``openenv`` for the
    OpenEnv protocol, ``http`` / ``ws_train`` for the earlier API) and task."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, sessions_live=None) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Counter(
            "alert_triage_sessions",
            "Episodes started (resets), by API and task.",
            ["api", "task"],
            registry=self.registry,
        )
        self.steps = Counter(
            "alert_triage_steps",
            "Environment steps taken, by API and task.",
            ["api", "task"],
            registry=self.registry,
        )
        self.episodes = Counter(
            "alert_triage_episodes",
            "Episodes finished, by API and task.",
            ["api", "task"],
            registry=self.registry,
        )
        self.invalid_actions = Counter(
            "alert_triage_invalid_actions",
            "Actions rejected as invalid, by API.",
            ["api"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "alert_triage_task_score",
            "Final task scores of finished episodes, by task.",
            ["task"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.ingest_alerts = Counter(
            "alert_triage_ingest_alerts",
            "Ingested alert notifications stored, by source, payload format and status.",
            ["source", "format", "status"],
            registry=self.registry,
        )
        self.ingest_rejected = Counter(
            "alert_triage_ingest_rejected",
            "Ingested alerts or requests rejected, by payload format and reason.",
            ["format", "reason"],
            registry=self.registry,
        )
        self.live = Gauge(
            "alert_triage_sessions_live",
            "Sessions of the earlier HTTP API currently held by the server.",
            registry=self.registry,
        )
        if sessions_live is not None:
            self.live.set_function(sessions_live)
        # (api, task) -> the steps counter's child; labels() costs a lock and a lookup.
        self._step_children: dict[tuple[str, str], Any] = {}

    def on_event(self, kind: str, data: dict[str, Any], api: str = "openenv") -> None:
        """The hook every face calls: ``reset``, ``step``, ``invalid`` or ``episode_end``."""
        task = str(data.get("task_id", "unknown"))
        if kind == "step":  # every step comes here: look its counter up once
            child = self._step_children.get((api, task))
            if child is None:
                child = self._step_children[(api, task)] = self.steps.labels(api, task)
            child.inc()
        elif kind == "reset":
            self.sessions.labels(api, task).inc()
        elif kind == "invalid":
            self.invalid_actions.labels(api).inc()
        elif kind == "episode_end":
            self.episodes.labels(api, task).inc()
            self.scores.labels(task).observe(float(data.get("score", 0.0)))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def results_summary(path: str | Path | None) -> dict[str, Any]:
    """Agent scores per task from an ``alert-triage evaluate`` results.json."""
    if path is None or not Path(path).is_file():
        return {"available": False, "source": None if path is None else str(path), "tasks": {}}
    try:
        results = json.loads(Path(path).read_text())
        tasks: dict[str, dict[str, Any]] = {}
        for row in results["summary"]:
            tasks.setdefault(row["task"], {})[row["agent"]] = {
                "mean_score": row["mean_score"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "success_rate": row["success_rate"],
                "episodes": row["episodes"],
            }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"available": False, "source": str(path), "error": str(exc), "tasks": {}}
    return {
        "available": True,
        "source": str(path),
        "created": results.get("created"),
        "tasks": tasks,
    }
