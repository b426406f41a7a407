"""The one shape every ingested alert takes, whatever sent it.

Parsers (`formats`) turn webhook payloads into `AlertEvent`s; the store keeps
them; live sessions and replays turn them into simulator alerts. Nothing here
knows about HTTP or SQLite.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..sim.config import ALERT_TYPES

#: Where an event came from (the ``source`` label of the ingestion metrics).
SOURCES: tuple[str, ...] = ("alertmanager", "grafana", "datadog", "pagerduty", "native")
STATUSES: tuple[str, ...] = ("firing", "resolved")


class PayloadError(ValueError):
    """A payload or one alert in it that cannot be ingested.

    ``reason`` is a short machine-readable label (the ``reason`` label of the
    reject counter); the message says what was wrong and what is allowed.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class AlertEvent:
    """One notification about one alert.

    ``dedup_key`` is prefixed by the source (``"alertmanager:<fingerprint>"``),
    so keys of different senders never collide. Times are Unix seconds (UTC).
    ``confidence`` is None when the sender has no notion of it. ``status_only``
    marks a notification that names an alert by key and says only its new
    status (a PagerDuty acknowledge or resolve without a payload): its service,
    type and severity are placeholders, so it must not overwrite what the
    alert's earlier notifications said.
    """

    source: str
    dedup_key: str
    status: str
    service: str
    alert_type: str
    severity: float
    confidence: float | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    summary: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    status_only: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise PayloadError(f"source {self.source!r} is not one of {SOURCES}", "source")
        if not isinstance(self.dedup_key, str) or not self.dedup_key:
            raise PayloadError(
                f"dedup_key must be a non-empty string, got {self.dedup_key!r}", "key"
            )
        if self.status not in STATUSES:
            raise PayloadError(f"status {self.status!r} is not one of {STATUSES}", "status")
        if not isinstance(self.service, str) or not self.service:
            raise PayloadError(
                f"service must be a non-empty string, got {self.service!r}", "service"
            )
        if self.alert_type not in ALERT_TYPES:
            raise PayloadError(
                f"alert_type {self.alert_type!r} is not one of {ALERT_TYPES}", "alert_type"
            )
        _check_unit("severity", self.severity)
        if self.confidence is not None:
            _check_unit("confidence", self.confidence)
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise PayloadError(
                    f"{name} must be a non-negative Unix time in seconds, got {value!r}", "time"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_unit(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise PayloadError(f"{name} must be a number in [0, 1], got {value!r}", "range")
