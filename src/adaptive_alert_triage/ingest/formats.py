"""Webhook payload parsers: what Alertmanager, Grafana, Datadog, PagerDuty and
this project's own JSON send, turned into `AlertEvent`s.

Formats are told apart by shape (`detect_format`) so one endpoint can take them
all; an explicit ``fmt`` (the server's ``?format=``) settles ambiguous shapes.
Parsing is per alert: one bad alert in a batch becomes a `PayloadError` at its
index and the others still get in. Every mapping rule below is documented in
``docs/ingestion.md`` ("Mapping"); change the two together.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..sim.config import ALERT_TYPES
from .model import STATUSES, AlertEvent, PayloadError

__all__ = ["DEFAULT_SEVERITY", "FORMATS", "UNKNOWN_SERVICE", "detect_format", "parse"]

FORMATS: tuple[str, ...] = ("alertmanager", "grafana", "datadog", "pagerduty", "native")

#: Severity given to an alert whose sender uses a word we do not know, or none.
DEFAULT_SEVERITY = 0.5
#: Service of an alert that names none: the store still needs a non-empty key.
UNKNOWN_SERVICE = "unknown"

Result = AlertEvent | PayloadError
_Parser = Callable[[Any], list[Result]]

# What each format looks like, for error messages that tell the sender what we take.
_SHAPES: dict[str, str] = {
    "alertmanager": 'an object with "version": "4" and an "alerts" array (Alertmanager webhook)',
    "grafana": (
        'an object with "orgId" or "version": "1" and an "alerts" array (Grafana alerting), '
        'or an object with "ruleName"/"ruleId" and "state"/"evalMatches" (legacy Grafana)'
    ),
    "datadog": (
        "an object, or an array of objects, from a Datadog webhook template "
        '("alert_transition", "alert_id", "aggreg_key", "alert_cycle_key", ... '
        'or "event_type" with "date"/"body"/"org"/"title")'
    ),
    "pagerduty": (
        'a PagerDuty Events API v2 event ("event_action" with "payload"/"dedup_key"), '
        "or an array of them"
    ),
    "native": (
        'an alert object with "service", "alert_type", "severity" (this project\'s JSON), '
        "or an array of them"
    ),
}

# ---------------------------------------------------------------------------
# Mapping tables (docs/ingestion.md mirrors these)
# ---------------------------------------------------------------------------

#: Label/tag keys naming the affected service, most specific first.
_SERVICE_LABELS: tuple[str, ...] = ("service", "app", "job", "instance", "host", "hostname")
#: Label/tag keys carrying a severity word or number.
_SEVERITY_LABELS: tuple[str, ...] = ("severity", "priority")
#: Label/tag keys that may name one of ALERT_TYPES outright (they win over keywords).
_TYPE_LABELS: tuple[str, ...] = ("alert_type", "type")

#: Status words meaning the problem is over; any other status string means firing.
_RESOLVED_WORDS = frozenset({"resolved", "resolve", "recovered", "ok"})

#: Severity words (lower case, without spaces, "-" and "_") and their values.
_SEVERITY_WORDS: dict[str, float] = {
    word: value
    for value, words in (
        (0.9, ("critical", "crit", "fatal", "emergency", "emerg", "page", "p1", "sev1")),
        (0.75, ("high", "error", "err", "major", "p2", "sev2")),
        (0.5, ("warning", "warn", "medium", "moderate", "p3", "sev3")),
        (0.3, ("low", "minor", "p4", "sev4")),
        (0.15, ("info", "informational", "notice", "none", "p5", "sev5")),
    )
    for word in words
}
#: Datadog monitor priorities (``$ALERT_PRIORITY``).
_DATADOG_PRIORITY: dict[str, float] = {"p1": 0.95, "p2": 0.8, "p3": 0.6, "p4": 0.4, "p5": 0.2}
#: Datadog ``$ALERT_TYPE``, used when the monitor has no priority.
_DATADOG_ALERT_TYPE: dict[str, float] = {
    "error": 0.75,
    "warning": 0.5,
    "info": 0.15,
    "success": 0.15,
}

#: Keyword patterns per alert type, in precedence order; each must match a whole
#: token (see `_TOKEN`). Security first: a failed-login spike is a security
#: matter even when it shows up as latency.
_TYPE_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (alert_type, re.compile(pattern))
    for alert_type, pattern in (
        (
            "SECURITY",
            r"security|auth[a-z]*|login[a-z]*|intrusions?|breach[a-z]*|malware|vuln[a-z]*"
            r"|cves?|firewall[a-z]*|ssh[a-z]*|certs?|certificat[a-z]*|waf|ddos",
        ),
        (
            "DISK",
            r"disk[a-z]*|filesystem[a-z]*|fs|volume[a-z]*|inode[a-z]*|iops|storage[a-z]*"
            r"|partition[a-z]*",
        ),
        ("MEMORY", r"memory[a-z]*|mem|oom[a-z]*|heap[a-z]*|swap[a-z]*|rss"),
        ("CPU", r"cpu[a-z]*|load|loadavg[a-z]*|throttl[a-z]*|steal[a-z]*"),
        (
            "NETWORK",
            r"network[a-z]*|net|latenc[a-z]*|packet[a-z]*|dns|tcp|unreachable|ping[a-z]*"
            r"|bandwidth|connection[a-z]*|timeout[a-z]*",
        ),
    )
)
#: Word-ish tokens: camelCase humps, ALLCAPS runs, lower-case runs, digit runs.
#: "HighCPUUsage" -> High, CPU, Usage; "node_filesystem_avail_bytes" -> node,
#: filesystem, avail, bytes; "OOMKilled" -> OOM, Killed.
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

_ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH_TEXT = re.compile(r"\d+(?:\.\d*)?")
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: 9999-12-31T23:59:59Z: anything later is a unit mistake, not a date.
_MAX_UNIX = 253_402_300_799.0
#: Epoch values at least this big are milliseconds (as seconds: year 5138).
_MS_THRESHOLD = 1e11
_TIME_FORMS = "an ISO-8601 time such as '2024-05-01T12:00:00Z' or '2024-05-01T14:00:00.5+02:00'"
#: What else a time field takes, by the ``numbers`` mode of `_time`.
_NUMBER_FORMS: dict[str | None, str] = {
    None: "",
    "seconds": ", or Unix seconds",
    "detect": ", or Unix seconds or milliseconds",
}


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: quoted, cut short (a message must not echo a
    megabyte back) and safe for integers too long to print."""
    try:
        text = repr(value)
    except ValueError:
        return "<a number too long to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _time_error(field: str, value: Any, why: str) -> PayloadError:
    return PayloadError(f"{field}: {_show(value)} {why}", "time")


def _parse_offset(text: str | None, field: str, value: str) -> _dt.tzinfo:
    """A missing offset is read as UTC: webhook times are machine-written, and
    a sender's local zone is unknowable here."""
    if text is None or text in ("Z", "z"):
        return _dt.timezone.utc
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise _time_error(field, value, "has an impossible UTC offset; " + _TIME_FORMS)
    delta = _dt.timedelta(hours=hours, minutes=minutes)
    return _dt.timezone(-delta if text[0] == "-" else delta)


def _check_unix(seconds: float, field: str, value: Any) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise _time_error(field, value, "is before 1970-01-01 or not a finite time")
    if seconds > _MAX_UNIX:
        raise _time_error(field, value, "is after the year 9999")
    return float(seconds)


def _parse_iso(text: str, field: str, forms: str = _TIME_FORMS) -> float | None:
    """RFC 3339 / ISO-8601 to Unix seconds, by hand: Go senders put nanoseconds
    in the fraction, PagerDuty writes ``+0000``, and Python 3.10's
    ``fromisoformat`` takes neither. Go's zero time (year 1) means "unset"."""
    match = _ISO_TIME.fullmatch(text.strip())
    if match is None:
        raise _time_error(field, text, "is not a time; expected " + forms)
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    if (year, month, day) == (1, 1, 1):
        return None
    micro = int(((match[7] or "") + "000000")[:6])
    tzinfo = _parse_offset(match[8], field, text)
    try:
        # A leap second (":60") is clamped: the store only needs the second before.
        moment = _dt.datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo)
        seconds = moment.timestamp()
    except (ValueError, OverflowError) as exc:
        raise _time_error(field, text, f"is not a valid date/time ({exc})") from None
    return _check_unix(seconds, field, text)


def _from_epoch(value: float, field: str, shown: Any, *, detect_ms: bool) -> float:
    unit = "seconds or milliseconds" if detect_ms else "seconds"
    # int and float compare exactly, so huge ints are rejected before any conversion.
    if not (isinstance(value, int) or math.isfinite(value)) or value < 0:
        raise _time_error(field, shown, f"is not a Unix time in {unit} since 1970")
    if value > (_MAX_UNIX * 1000 if detect_ms else _MAX_UNIX):
        hint = "" if detect_ms else " (milliseconds sent as seconds?)"
        raise _time_error(field, shown, f"is after the year 9999 as a Unix time in {unit}{hint}")
    seconds = float(value)
    if detect_ms and seconds >= _MS_THRESHOLD:
        seconds /= 1000.0
    return _check_unix(seconds, field, shown)


def _time(value: Any, field: str, *, numbers: str | None = None) -> float | None:
    """A time field to Unix seconds, None when absent or empty.

    ``numbers`` says whether bare numbers are allowed: None (ISO strings only,
    as the sender never writes numbers), "seconds", or "detect" (Datadog, whose
    ``$DATE`` is in milliseconds but custom templates send seconds too).
    """
    if value is None or value == "":
        return None
    forms = _TIME_FORMS + _NUMBER_FORMS[numbers]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if numbers is None:
            raise _time_error(field, value, "is a number; expected " + forms)
        return _from_epoch(value, field, value, detect_ms=numbers == "detect")
    if not isinstance(value, str):
        raise _time_error(field, value, "is not a time; expected " + forms)
    text = value.strip()
    if numbers is not None and _EPOCH_TEXT.fullmatch(text):
        return _from_epoch(float(text), field, value, detect_ms=numbers == "detect")
    return _parse_iso(text, field, forms)


# ---------------------------------------------------------------------------
# Small field helpers
# ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages a webhook author understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _text(value: Any) -> str:
    """Any JSON value as a label string (labels are strings in the store)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        raise PayloadError(
            f"a label value ({_kind(value)}) is too large or too deeply nested to keep",
            "type",
        ) from None


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(
            f"{field}: expected an object of name/value pairs, got {_kind(value)}", "type"
        )
    return value


def _strings(mapping: Mapping[Any, Any]) -> dict[str, str]:
    return {str(key): _text(value) for key, value in mapping.items()}


def _first_text(mapping: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    """The first non-blank value among ``keys``, as text."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            text = _text(value).strip()
            if text:
                return text
    return None


def _key(value: Any, field: str) -> str | None:
    """A raw dedup key: a non-empty string or an integer (Datadog ids); None if absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise PayloadError(
        f"{field}: expected a non-empty string or integer key, got {_kind(value)} {_show(value)}",
        "type",
    )


def _first_key(obj: Mapping[str, Any], fields: Iterable[str]) -> str | None:
    for field in fields:
        raw = _key(obj.get(field), field)
        if raw is not None:
            return raw
    return None


def _digest(*parts: Any) -> str:
    """A stable key for senders that give none: same content, same key, any process."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _status(value: Any, field: str, default: str = "firing") -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise PayloadError(
            f"{field}: expected a status string such as 'firing' or 'resolved', "
            f"got {_kind(value)} {_show(value)}",
            "status",
        )
    return "resolved" if value.strip().lower() in _RESOLVED_WORDS else "firing"


def _norm_word(text: str) -> str:
    return re.sub(r"[\s_-]", "", text.lower())


def _unit(value: float, field: str, shown: Any, *, words: bool = True) -> float:
    # int first: math.isfinite would overflow on a huge one.
    if not (isinstance(value, int) or math.isfinite(value)) or not 0.0 <= value <= 1.0:
        allowed = "a number in [0, 1]"
        if words:
            allowed += " or a word such as critical, high, warning, low, info"
        raise PayloadError(f"{field}: {_show(shown)} is outside [0, 1]; send {allowed}", "range")
    return float(value)


def _severity(value: Any, field: str) -> float | None:
    """A severity word or number to [0, 1]; None when absent or blank so callers
    fall back. Unknown words get DEFAULT_SEVERITY rather than a rejection: a
    sender's private vocabulary should not cost us the alert."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PayloadError(
            f"{field}: expected a severity word or a number in [0, 1], got {_kind(value)}",
            "type",
        )
    if not isinstance(value, str):
        return _unit(value, field, value)
    text = value.strip()
    if not text:
        return None
    if _NUMBER_TEXT.fullmatch(text):
        return _unit(float(text), field, value)
    return _SEVERITY_WORDS.get(_norm_word(text), DEFAULT_SEVERITY)


def _label_severity(labels: Mapping[str, Any], prefix: str) -> float | None:
    for key in _SEVERITY_LABELS:
        severity = _severity(labels.get(key), f"{prefix}.{key}")
        if severity is not None:
            return severity
    return None


def _classify(explicit: Mapping[str, Any], tiers: Iterable[Iterable[Any]]) -> str:
    """The alert type: an explicit ``alert_type``/``type`` label naming one of
    ALERT_TYPES, else the first tier of texts (names before descriptions before
    other labels) where a keyword matches, else APPLICATION. Tiers keep a
    ``team: security`` label from overriding an alert named ``HighCPUUsage``."""
    for key in _TYPE_LABELS:
        value = explicit.get(key)
        if isinstance(value, str) and value.strip().upper() in ALERT_TYPES:
            return value.strip().upper()
    for tier in tiers:
        tokens = {
            token.lower()
            for text in tier
            if isinstance(text, str)
            for token in _TOKEN.findall(text)
        }
        for alert_type, pattern in _TYPE_KEYWORDS:
            if any(pattern.fullmatch(token) for token in tokens):
                return alert_type
    return "APPLICATION"


def _collect(
    items: Iterable[Any], parse_one: Callable[[Mapping[str, Any]], AlertEvent]
) -> list[Result]:
    """One result per item, in order: an event, or the error that item earned."""
    results: list[Result] = []
    for item in items:
        if not isinstance(item, Mapping):
            results.append(
                PayloadError(f"alert: expected a JSON object, got {_kind(item)}", "shape")
            )
            continue
        try:
            results.append(parse_one(item))
        except PayloadError as exc:
            results.append(exc)
    return results


def _objects(payload: Any, fmt: str) -> list[Any]:
    """The alerts of a format that takes one object or an array of them."""
    if isinstance(payload, Mapping):
        return [payload]
    if isinstance(payload, list):
        return payload
    raise PayloadError(f"{fmt} payload: expected {_SHAPES[fmt]}, got {_kind(payload)}", "shape")


# ---------------------------------------------------------------------------
# Alertmanager and Grafana alerting (same alert shape)
# ---------------------------------------------------------------------------


def _prometheus_alert(alert: Mapping[str, Any], source: str, group_status: str) -> AlertEvent:
    raw_labels = _mapping(alert.get("labels"), "labels")
    labels = _strings(raw_labels)
    annotations = _strings(_mapping(alert.get("annotations"), "annotations"))
    raw = _key(alert.get("fingerprint"), "fingerprint")
    if raw is None:
        if not labels:
            raise PayloadError(
                "fingerprint: missing, and the alert has no labels to derive a key from; "
                "send the alert's fingerprint or its labels",
                "missing",
            )
        raw = _digest(sorted(labels.items()))
    status = _status(alert.get("status"), "status", group_status)
    starts = _time(alert.get("startsAt"), "startsAt")
    ends = _time(alert.get("endsAt"), "endsAt") if status == "resolved" else None
    severity = _label_severity(raw_labels, "labels")
    alert_type = _classify(
        labels,
        (
            (labels.get("alertname"), labels.get("__name__")),
            (annotations.get("summary"), annotations.get("description")),
            (v for k, v in labels.items() if not k.startswith("__") and k != "alertname"),
        ),
    )
    return AlertEvent(
        source=source,
        dedup_key=f"{source}:{raw}",
        status=status,
        service=_first_text(labels, _SERVICE_LABELS) or UNKNOWN_SERVICE,
        alert_type=alert_type,
        severity=DEFAULT_SEVERITY if severity is None else severity,
        starts_at=starts,
        ends_at=ends,
        summary=_first_text(annotations, ("summary", "description")) or labels.get("alertname", ""),
        labels=labels,
    )


def _alert_group(payload: Any, source: str) -> list[Result]:
    """An Alertmanager-style group notification: one event per entry of ``alerts``."""
    if not isinstance(payload, Mapping):
        raise PayloadError(
            f"{source} payload: expected {_SHAPES[source]}, got {_kind(payload)}", "shape"
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(
            f'{source} payload: "alerts" must be an array of alert objects, got {_kind(alerts)}',
            "shape",
        )
    # The group's status stands in for an alert without one (rare, but harmless).
    top = payload.get("status")
    group_status = _status(top, "status") if isinstance(top, str) else "firing"
    return _collect(alerts, lambda alert: _prometheus_alert(alert, source, group_status))


def _parse_alertmanager(payload: Any) -> list[Result]:
    return _alert_group(payload, "alertmanager")


def _grafana_legacy(payload: Mapping[str, Any]) -> AlertEvent:
    """Grafana's pre-8 "legacy alerting" webhook: one rule, one notification, no times."""
    raw_tags = _mapping(payload.get("tags"), "tags")
    tags = _strings(raw_tags)
    rule_id = _key(payload.get("ruleId"), "ruleId")
    rule_name = _text(payload.get("ruleName")).strip()
    if rule_id is not None:
        raw = f"rule-{rule_id}"
    elif rule_name:
        raw = _digest(rule_name, sorted(tags.items()))
    else:
        raise PayloadError(
            "ruleId: missing, and ruleName is empty; send ruleId or ruleName to key the alert",
            "missing",
        )
    state = payload.get("state")
    # A paused rule is never evaluated again, so no "ok" would ever close it.
    paused = isinstance(state, str) and state.strip().lower() == "paused"
    status = "resolved" if paused else _status(state, "state")
    matches = payload.get("evalMatches")
    metrics = (
        [m.get("metric") for m in matches if isinstance(m, Mapping)]
        if isinstance(matches, list)
        else []
    )
    severity = _label_severity(raw_tags, "tags")
    title = _text(payload.get("title")).strip()
    return AlertEvent(
        source="grafana",
        dedup_key=f"grafana:{raw}",
        status=status,
        service=_first_text(tags, _SERVICE_LABELS) or UNKNOWN_SERVICE,
        alert_type=_classify(
            tags,
            ((rule_name,), (title, _text(payload.get("message")), *metrics), tags.values()),
        ),
        severity=DEFAULT_SEVERITY if severity is None else severity,
        summary=title or rule_name,
        labels=tags,
    )


def _parse_grafana(payload: Any) -> list[Result]:
    if isinstance(payload, Mapping) and "alerts" in payload:
        return _alert_group(payload, "grafana")
    if isinstance(payload, Mapping) and any(k in payload for k in _GRAFANA_LEGACY_KEYS):
        return _collect([payload], _grafana_legacy)
    raise PayloadError(f"grafana payload: expected {_SHAPES['grafana']}", "shape")


# ---------------------------------------------------------------------------
# Datadog
# ---------------------------------------------------------------------------


def _datadog_tags(value: Any) -> dict[str, str]:
    """``$TAGS`` ("env:prod,service:web,monitor") as labels; a bare tag maps to ""."""
    if value is None:
        return {}
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise PayloadError(
            f"tags: expected a comma-separated string of key:value tags or an array of them, "
            f"got {_kind(value)}",
            "type",
        )
    tags: dict[str, str] = {}
    for item in items:
        name, _, tag_value = _text(item).strip().partition(":")
        if name.strip():
            tags.setdefault(name.strip(), tag_value.strip())
    return tags


def _datadog(obj: Mapping[str, Any]) -> AlertEvent:
    tags = _datadog_tags(obj.get("tags"))
    raw = _first_key(obj, ("alert_cycle_key", "aggreg_key", "alert_id", "id"))
    if raw is None:
        raise PayloadError(
            "alert_cycle_key: missing, as are aggreg_key, alert_id and id; "
            "one of them is needed as the dedup key",
            "missing",
        )
    title = _text(obj.get("title")).strip()
    dd_type = obj.get("alert_type")
    dd_type = dd_type.strip().lower() if isinstance(dd_type, str) else ""
    transition = obj.get("alert_transition")
    if transition not in (None, ""):
        status = _status(transition, "alert_transition")
    elif dd_type == "success" or title.lower().startswith("[recovered"):
        status = "resolved"
    else:
        status = "firing"
    date = _time(obj.get("date"), "date", numbers="detect")
    updated = _time(obj.get("last_updated"), "last_updated", numbers="detect")
    # A recovery notification is dated when the monitor recovered, not when it fired.
    if status == "resolved":
        starts, ends = None, updated if updated is not None else date
    else:
        starts, ends = (date if date is not None else updated), None
    priority = obj.get("alert_priority")
    severity = _DATADOG_PRIORITY.get(_norm_word(priority)) if isinstance(priority, str) else None
    if severity is None:
        severity = _DATADOG_ALERT_TYPE.get(dd_type)
    if severity is None:
        severity = _label_severity(tags, "tags")
    alert_type = _classify(
        tags,
        (
            (obj.get("alert_metric"),),
            (title,),
            (obj.get("alert_query"), obj.get("alert_status"), obj.get("alert_scope")),
            tags.values(),
        ),
    )
    body = _text(obj.get("body")).strip()
    return AlertEvent(
        source="datadog",
        dedup_key=f"datadog:{raw}",
        status=status,
        service=tags.get("service") or _first_text(obj, ("hostname",)) or UNKNOWN_SERVICE,
        alert_type=alert_type,
        severity=DEFAULT_SEVERITY if severity is None else severity,
        starts_at=starts,
        ends_at=ends,
        summary=title or _first_text(obj, ("alert_status",)) or body.split("\n", 1)[0],
        labels=tags,
    )


def _parse_datadog(payload: Any) -> list[Result]:
    return _collect(_objects(payload, "datadog"), _datadog)


# ---------------------------------------------------------------------------
# PagerDuty Events API v2
# ---------------------------------------------------------------------------

_PAGERDUTY_ACTIONS: tuple[str, ...] = ("trigger", "acknowledge", "resolve")


def _pagerduty(obj: Mapping[str, Any]) -> AlertEvent:
    action = obj.get("event_action")
    allowed = ", ".join(_PAGERDUTY_ACTIONS)
    if action is None:
        raise PayloadError(f"event_action: missing; one of {allowed}", "missing")
    if not isinstance(action, str) or action.strip().lower() not in _PAGERDUTY_ACTIONS:
        # A closed set in the Events API: a typo here must not silently mean "firing".
        raise PayloadError(f"event_action: {_show(action)} is not one of {allowed}", "status")
    action = action.strip().lower()
    body = _mapping(obj.get("payload"), "payload")
    if action == "trigger":
        absent = [f for f in ("summary", "source", "severity") if body.get(f) in (None, "")]
        if absent:
            raise PayloadError(
                f"payload.{absent[0]}: missing; a trigger event needs payload.summary, "
                "payload.source and payload.severity (critical, error, warning or info)",
                "missing",
            )
    summary = _text(body.get("summary")).strip()
    source = _text(body.get("source")).strip()
    raw = _key(obj.get("dedup_key"), "dedup_key")
    if raw is None:
        if action != "trigger":
            raise PayloadError(
                f"dedup_key: missing; {action} events must name the alert they {action} "
                "by dedup_key",
                "missing",
            )
        raw = _digest(_text(obj.get("routing_key")), summary, source)
    severity = _severity(body.get("severity"), "payload.severity")
    details = body.get("custom_details")
    labels = {f: _text(body[f]) for f in ("source", "component", "group", "class") if f in body}
    if isinstance(details, Mapping):
        labels.update({f"custom_details.{k}": _text(v) for k, v in details.items()})
    elif details is not None:
        labels["custom_details"] = _text(details)
    explicit = details if isinstance(details, Mapping) else {}
    return AlertEvent(
        source="pagerduty",
        dedup_key=f"pagerduty:{raw}",
        status="resolved" if action == "resolve" else "firing",
        service=_first_text(body, ("component", "source")) or UNKNOWN_SERVICE,
        alert_type=_classify(
            explicit,
            ((body.get("class"),), (summary,), (body.get("component"), body.get("group"))),
        ),
        severity=DEFAULT_SEVERITY if severity is None else severity,
        starts_at=_time(body.get("timestamp"), "payload.timestamp"),
        summary=summary,
        labels=labels,
        # An acknowledge or resolve usually carries no payload: it changes only the
        # status of the alert its dedup_key names.
        status_only=action != "trigger" and not (summary or source or severity is not None),
    )


def _parse_pagerduty(payload: Any) -> list[Result]:
    return _collect(_objects(payload, "pagerduty"), _pagerduty)


# ---------------------------------------------------------------------------
# Native: this project's own alert JSON
# ---------------------------------------------------------------------------

_NATIVE_KEYS: tuple[str, ...] = ("id", "dedup_key", "alias", "fingerprint")


def _native_unit(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(
            f"{field}: expected a number in [0, 1], got {_kind(value)} {_show(value)}", "type"
        )
    return _unit(value, field, value, words=False)


def _native(obj: Mapping[str, Any]) -> AlertEvent:
    """Strict on purpose: this is the format we define, so nothing is guessed."""
    raw = _first_key(obj, _NATIVE_KEYS)
    if raw is None:
        raise PayloadError(
            "id: missing; give one of id, dedup_key, alias, fingerprint "
            "(a non-empty string or integer)",
            "missing",
        )
    service = obj.get("service")
    if service is None:
        raise PayloadError("service: missing; name the affected service", "missing")
    if not isinstance(service, str) or not service.strip():
        raise PayloadError(
            f"service: expected a non-empty string, got {_kind(service)} {_show(service)}", "type"
        )
    alert_type = obj.get("alert_type")
    if alert_type is None:
        raise PayloadError(
            f"alert_type: missing; one of {', '.join(ALERT_TYPES)} (any case)", "missing"
        )
    if not isinstance(alert_type, str) or alert_type.strip().upper() not in ALERT_TYPES:
        raise PayloadError(
            f"alert_type: {_show(alert_type)} is not one of {', '.join(ALERT_TYPES)} (any case)",
            "alert_type",
        )
    field = "severity" if obj.get("severity") is not None else "visible_severity"
    if obj.get(field) is None:
        raise PayloadError(
            "severity: missing; give severity (or visible_severity), a number in [0, 1]",
            "missing",
        )
    severity = _native_unit(obj[field], field)
    confidence = obj.get("confidence")
    status = obj.get("status")
    if status is None:
        status = "firing"
    elif not isinstance(status, str) or status.strip().lower() not in STATUSES:
        raise PayloadError(f"status: {_show(status)} is not one of {', '.join(STATUSES)}", "status")
    starts = _time(obj.get("starts_at"), "starts_at", numbers="seconds")
    ends = _time(obj.get("ends_at"), "ends_at", numbers="seconds")
    if starts is not None and ends is not None and ends < starts:
        raise _time_error("ends_at", obj.get("ends_at"), f"is before starts_at ({starts})")
    return AlertEvent(
        source="native",
        dedup_key=f"native:{raw}",
        status=status.strip().lower(),
        service=service.strip(),
        alert_type=alert_type.strip().upper(),
        severity=severity,
        confidence=None if confidence is None else _native_unit(confidence, "confidence"),
        starts_at=starts,
        ends_at=ends,
        summary=_text(obj.get("summary")),
        labels=_strings(_mapping(obj.get("labels"), "labels")),
    )


def _parse_native(payload: Any) -> list[Result]:
    return _collect(_objects(payload, "native"), _native)


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------

_GRAFANA_LEGACY_KEYS: tuple[str, ...] = ("ruleName", "ruleId")
_DATADOG_MARKERS: tuple[str, ...] = (
    "alert_transition",
    "alert_cycle_key",
    "aggreg_key",
    "alert_id",
    "alert_priority",
    "alert_metric",
    "alert_status",
    "alert_query",
    "alert_scope",
    "last_updated",
)


def _looks_alertmanager(d: Mapping[str, Any]) -> bool:
    if d.get("version") in ("4", 4):
        return True
    # Alertmanager-compatible senders that leave out "version".
    return (
        isinstance(d.get("alerts"), list)
        and "orgId" not in d
        and ("groupKey" in d or "receiver" in d)
    )


def _looks_grafana(d: Mapping[str, Any]) -> bool:
    if "alerts" in d and ("orgId" in d or d.get("version") in ("1", 1)):
        return True
    return any(k in d for k in _GRAFANA_LEGACY_KEYS) and ("state" in d or "evalMatches" in d)


def _looks_pagerduty(d: Mapping[str, Any]) -> bool:
    return "event_action" in d or ("routing_key" in d and ("payload" in d or "dedup_key" in d))


def _looks_datadog(d: Mapping[str, Any]) -> bool:
    if any(k in d for k in _DATADOG_MARKERS):
        return True
    return "event_type" in d and any(k in d for k in ("date", "body", "org", "title"))


def _looks_native(d: Mapping[str, Any]) -> bool:
    return any(k in d for k in ("alert_type", "severity", "visible_severity", "service"))


#: Checked in this order; the first match wins. Arrays only hold the last three.
_OBJECT_CHECKS: tuple[tuple[str, Callable[[Mapping[str, Any]], bool]], ...] = (
    ("alertmanager", _looks_alertmanager),
    ("grafana", _looks_grafana),
    ("pagerduty", _looks_pagerduty),
    ("datadog", _looks_datadog),
    ("native", _looks_native),
)
_ITEM_CHECKS = _OBJECT_CHECKS[2:]

_PARSERS: dict[str, _Parser] = {
    "alertmanager": _parse_alertmanager,
    "grafana": _parse_grafana,
    "datadog": _parse_datadog,
    "pagerduty": _parse_pagerduty,
    "native": _parse_native,
}


def _detect(payload: Any) -> str | None:
    if isinstance(payload, Mapping):
        return next((name for name, looks in _OBJECT_CHECKS if looks(payload)), None)
    if isinstance(payload, list):
        for item in payload:
            if isinstance(item, Mapping):
                for name, looks in _ITEM_CHECKS:
                    if looks(item):
                        return name
    return None


def _fits(payload: Any, fmt: str) -> bool:
    """Whether an explicitly named format can read this shape at all."""
    if isinstance(payload, Mapping):
        if fmt == "alertmanager":
            return "alerts" in payload or _looks_alertmanager(payload)
        if fmt == "grafana":
            return "alerts" in payload or any(k in payload for k in _GRAFANA_LEGACY_KEYS)
        return dict(_ITEM_CHECKS)[fmt](payload)
    if isinstance(payload, list) and fmt in dict(_ITEM_CHECKS):
        looks = dict(_ITEM_CHECKS)[fmt]
        return any(isinstance(item, Mapping) and looks(item) for item in payload)
    return False


def _describe(payload: Any) -> str:
    if isinstance(payload, Mapping):
        keys = [str(k) for k in list(payload)[:12]]
        more = ", ..." if len(payload) > 12 else ""
        return f"an object with keys {', '.join(keys) or '(none)'}{more}"
    if isinstance(payload, list):
        return f"an array of {len(payload)} items" if payload else "an empty array"
    return f"a {_kind(payload)}"


def _accepted() -> str:
    return "; ".join(f"{name}: {_SHAPES[name]}" for name in FORMATS)


def detect_format(payload: Any) -> str:
    """The format a payload has, by its shape alone (no headers needed).

    Raises PayloadError(reason="unknown_format") listing the accepted shapes
    when nothing matches, so the sender learns what to send.
    """
    name = _detect(payload)
    if name is None:
        raise PayloadError(
            f"cannot tell the payload format from its shape (got {_describe(payload)}). "
            f"Accepted: {_accepted()}. Or name the format: one of {', '.join(FORMATS)}.",
            "unknown_format",
        )
    return name


def _format_name(fmt: Any) -> str:
    name = fmt.strip().lower() if isinstance(fmt, str) else None
    if name not in FORMATS:
        raise PayloadError(
            f"format {_show(fmt)} is not one of {', '.join(FORMATS)}", "unknown_format"
        )
    return name


def parse(payload: Any, fmt: str | None = None) -> tuple[str, list[AlertEvent | PayloadError]]:
    """Parse a decoded webhook body into events, one result per alert, in order.

    ``fmt`` (one of FORMATS) skips detection; it must still suit the shape, so
    a Datadog body sent to ``?format=alertmanager`` is refused whole instead of
    becoming a list of nonsense errors. Raises PayloadError only for the
    payload as a whole (reason "shape" or "unknown_format"); each bad alert
    comes back as a PayloadError in its place in the list.
    """
    if fmt is None:
        name = detect_format(payload)
    else:
        name = _format_name(fmt)
        if not isinstance(payload, (Mapping, list)):
            raise PayloadError(
                f"payload: expected a JSON object or array, got {_kind(payload)}", "shape"
            )
        if not _fits(payload, name):
            detected = _detect(payload)
            if detected is not None:
                raise PayloadError(
                    f"format {name!r} was asked for but the payload looks like {detected} "
                    f"({_SHAPES[detected]}); a {name} payload is {_SHAPES[name]}",
                    "shape",
                )
    return name, _PARSERS[name](payload)
