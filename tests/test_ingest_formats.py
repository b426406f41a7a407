"""Webhook payload parsers: detection, the documented field mapping
(docs/ingestion.md), errors that say what is wrong, and robustness against
any JSON a sender might post."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_alert_triage.ingest.formats import (
    DEFAULT_SEVERITY,
    FORMATS,
    UNKNOWN_SERVICE,
    detect_format,
    parse,
)
from adaptive_alert_triage.ingest.model import SOURCES, STATUSES, AlertEvent, PayloadError
from adaptive_alert_triage.sim.config import ALERT_TYPES

DATA = Path(__file__).parent / "data" / "ingest"
UTC = dt.timezone.utc


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def events(payload: Any, fmt: str | None = None) -> list[AlertEvent]:
    """Parse a payload that must be entirely good."""
    _, results = parse(payload, fmt)
    bad = [r for r in results if not isinstance(r, AlertEvent)]
    assert not bad, bad
    return results  # type: ignore[return-value]


def only(payload: Any, fmt: str | None = None) -> AlertEvent:
    (event,) = events(payload, fmt)
    return event


def error_at(payload: Any, index: int, fmt: str | None = None) -> PayloadError:
    _, results = parse(payload, fmt)
    assert isinstance(results[index], PayloadError), results[index]
    return results[index]


def ts(*args: int, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


def am(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    """A minimal Alertmanager v4 group around some alerts."""
    return {"version": "4", "status": status, "receiver": "r", "alerts": list(alerts)}


def am_alert(**labels: Any) -> dict[str, Any]:
    return {"status": "firing", "labels": labels, "fingerprint": "f0"}


def native(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "n1", "service": "api", "alert_type": "CPU", "severity": 0.5}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def assert_event_invariants(event: Any, fmt: str) -> None:
    """What every returned event must satisfy, whatever the payload was."""
    assert isinstance(event, AlertEvent)
    assert event.source == fmt
    assert event.dedup_key.startswith(f"{fmt}:") and len(event.dedup_key) > len(fmt) + 1
    assert event.status in STATUSES
    assert event.alert_type in ALERT_TYPES
    assert isinstance(event.service, str) and event.service
    assert isinstance(event.severity, float) and 0.0 <= event.severity <= 1.0
    if fmt != "native":
        assert event.confidence is None
    elif event.confidence is not None:
        assert 0.0 <= event.confidence <= 1.0
    for value in (event.starts_at, event.ends_at):
        assert value is None or (math.isfinite(value) and value >= 0)
    if fmt in ("alertmanager", "grafana", "datadog") and event.ends_at is not None:
        assert event.status == "resolved"
    assert isinstance(event.summary, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.labels.items())
    assert AlertEvent(**event.to_dict()) == event  # the model's own checks agree


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------

EXAMPLES = {
    "alertmanager_v4_firing.json": "alertmanager",
    "alertmanager_v4_resolved.json": "alertmanager",
    "grafana_unified.json": "grafana",
    "grafana_legacy_alerting.json": "grafana",
    "grafana_legacy_ok.json": "grafana",
    "datadog_triggered.json": "datadog",
    "datadog_recovered.json": "datadog",
    "datadog_batch.json": "datadog",
    "pagerduty_trigger.json": "pagerduty",
    "pagerduty_resolve.json": "pagerduty",
    "pagerduty_batch.json": "pagerduty",
    "native_single.json": "native",
    "native_list.json": "native",
    "bad_native_severity_range.json": "native",
    "bad_native_missing_fields.json": "native",
    "bad_native_batch_one_bad.json": "native",
    "bad_alertmanager_timestamp.json": "alertmanager",
    "bad_grafana_severity_range.json": "grafana",
    "bad_datadog_date.json": "datadog",
    "bad_pagerduty_missing_fields.json": "pagerduty",
    "bad_shape_alerts_not_array.json": "alertmanager",
}


def test_formats_are_the_sources() -> None:
    assert FORMATS == SOURCES


def test_every_example_file_is_covered() -> None:
    names = {p.name for p in DATA.glob("*.json")}
    assert set(EXAMPLES) | {"bad_shape_scalar.json", "bad_unknown_format.json"} == names


@pytest.mark.parametrize(("name", "fmt"), sorted(EXAMPLES.items()))
def test_detects_every_example(name: str, fmt: str) -> None:
    assert detect_format(load(name)) == fmt


@pytest.mark.parametrize(("name", "fmt"), sorted(EXAMPLES.items()))
def test_good_examples_parse_with_detected_and_explicit_format(name: str, fmt: str) -> None:
    if name.startswith("bad_"):
        return
    payload = load(name)
    detected, results = parse(payload)
    assert detected == fmt
    assert parse(payload, fmt) == (fmt, results)
    assert results
    for event in results:
        assert_event_invariants(event, fmt)


@pytest.mark.parametrize("name", ["bad_unknown_format.json", "bad_shape_scalar.json"])
def test_unknown_shapes_list_what_is_accepted(name: str) -> None:
    with pytest.raises(PayloadError) as info:
        detect_format(load(name))
    assert info.value.reason == "unknown_format"
    message = str(info.value)
    for fmt in FORMATS:
        assert fmt in message
    assert '"version": "4"' in message and "event_action" in message


def test_unknown_format_message_shows_what_was_received() -> None:
    with pytest.raises(PayloadError, match="keys message, host, level"):
        parse(load("bad_unknown_format.json"))


@pytest.mark.parametrize(
    "payload", [[], [1, "x", None], 42, None, "alert", True, {}, {"alerts": []}]
)
def test_detection_fails_cleanly(payload: Any) -> None:
    with pytest.raises(PayloadError) as info:
        parse(payload)
    assert info.value.reason == "unknown_format"


def test_array_is_judged_by_its_first_recognisable_element() -> None:
    payload = ["junk", {"x": 1}, native(), {"event_action": "trigger"}]
    assert detect_format(payload) == "native"
    _, results = parse(payload)
    assert [type(r).__name__ for r in results] == [
        "PayloadError",
        "PayloadError",
        "AlertEvent",
        "PayloadError",
    ]
    assert results[0].reason == "shape"  # type: ignore[union-attr]


def test_grafana_legacy_shares_org_id_but_not_alerts() -> None:
    legacy = load("grafana_legacy_alerting.json")
    assert "orgId" in legacy and "alerts" not in legacy
    assert detect_format(legacy) == "grafana"


def test_alertmanager_compatible_sender_without_version() -> None:
    payload = load("alertmanager_v4_firing.json")
    del payload["version"]
    assert detect_format(payload) == "alertmanager"


# ---------------------------------------------------------------------------
# Explicit format
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["prometheus", "", "ALERTMANAGERS", 5, ["native"]])
def test_unknown_format_name_names_the_allowed_ones(fmt: Any) -> None:
    with pytest.raises(PayloadError) as info:
        parse(load("native_single.json"), fmt)
    assert info.value.reason == "unknown_format"
    assert all(name in str(info.value) for name in FORMATS)


def test_format_name_is_case_insensitive() -> None:
    assert parse(load("native_single.json"), " Native ")[0] == "native"


@pytest.mark.parametrize(
    ("name", "fmt", "looks_like"),
    [
        ("datadog_triggered.json", "alertmanager", "datadog"),
        ("alertmanager_v4_firing.json", "native", "alertmanager"),
        ("pagerduty_trigger.json", "datadog", "pagerduty"),
        ("native_list.json", "grafana", "native"),
    ],
)
def test_wrong_explicit_format_is_refused_whole(name: str, fmt: str, looks_like: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse(load(name), fmt)
    assert info.value.reason == "shape"
    assert fmt in str(info.value) and looks_like in str(info.value)


def test_explicit_format_settles_an_ambiguous_shape() -> None:
    # A native alert carrying a Datadog-looking key is detected as Datadog ...
    payload = native(alert_id="ext-7")
    assert detect_format(payload) == "datadog"
    # ... and ?format=native reads it as what it is.
    assert only(payload, "native").dedup_key == "native:n1"


def test_explicit_format_for_compatible_shape() -> None:
    # Grafana's alerting webhook is Alertmanager's shape; either name reads it.
    results = events(load("grafana_unified.json"), "alertmanager")
    assert [e.dedup_key for e in results] == [
        "alertmanager:9c1d3e5f7a2b4c6d",
        "alertmanager:2a7e91d04c5b38f6",
    ]


def test_explicit_format_trusted_for_unrecognised_objects() -> None:
    # A custom Datadog template without the usual variables: detection gives up,
    # ?format=datadog reads it.
    payload = {"monitor": "High CPU on web", "id": "9", "text": "CPU above 90%"}
    with pytest.raises(PayloadError):
        detect_format(payload)
    assert only(payload, "datadog").dedup_key == "datadog:9"


@pytest.mark.parametrize("fmt", FORMATS)
def test_scalar_payload_is_a_shape_error_for_every_format(fmt: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse("not json alerts", fmt)
    assert info.value.reason == "shape"


@pytest.mark.parametrize("fmt", ["alertmanager", "grafana"])
def test_group_formats_need_an_object(fmt: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse([load("native_single.json")], fmt)
    assert info.value.reason == "shape"


@pytest.mark.parametrize("fmt", ["datadog", "pagerduty", "native"])
def test_empty_batch_with_explicit_format(fmt: str) -> None:
    assert parse([], fmt) == (fmt, [])


def test_empty_alert_group_is_fine() -> None:
    assert parse(am()) == ("alertmanager", [])


# ---------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------


def test_alertmanager_firing_group_maps_every_field() -> None:
    cpu, disk, crash = events(load("alertmanager_v4_firing.json"))

    assert cpu.dedup_key == "alertmanager:5f0a2c8d9e1b3a47"
    assert cpu.status == "firing"
    assert cpu.service == "checkout"  # the service label beats job/instance
    assert cpu.alert_type == "CPU"
    assert cpu.severity == 0.5  # warning
    assert cpu.confidence is None
    assert cpu.starts_at == pytest.approx(ts(2024, 11, 5, 14, 2, 17) + 0.512384, abs=1e-6)
    assert cpu.ends_at is None  # zero time, and firing
    assert cpu.summary == "CPU usage above 90% on checkout-7d9f8b6c5-x2kqp"
    assert cpu.labels["pod"] == "checkout-7d9f8b6c5-x2kqp"
    assert cpu.labels["alertname"] == "HighCPUUsage"

    assert disk.dedup_key == "alertmanager:b41e77c0a9d2f365"
    assert disk.service == "node-exporter"  # no service/app label: job
    assert disk.alert_type == "DISK"
    assert disk.severity == 0.9  # critical
    assert disk.starts_at == pytest.approx(ts(2024, 11, 5, 13, 47, 2) + 0.004)

    assert crash.status == "resolved"
    assert crash.service == "payments-api"  # app label
    assert crash.alert_type == "APPLICATION"
    assert crash.starts_at == pytest.approx(ts(2024, 11, 5, 12, 30, 45) + 0.1)  # +01:00
    assert crash.ends_at == pytest.approx(ts(2024, 11, 5, 13, 1, 45) + 0.1)
    assert crash.summary == "Pod is crash looping."


def test_alertmanager_without_fingerprint_hashes_its_labels() -> None:
    payload = load("alertmanager_v4_resolved.json")
    (event,) = events(payload)
    assert re.fullmatch(r"alertmanager:[0-9a-f]{16}", event.dedup_key)
    assert event.status == "resolved"
    assert event.alert_type == "MEMORY"  # ContainerOOMKilled
    assert event.severity == 0.75  # high
    assert event.service == "kube-state-metrics"
    assert event.ends_at == pytest.approx(ts(2024, 11, 5, 9, 27, 30) + 0.25)
    # Stable: same labels in another order, another status, another time -> same key.
    alert = payload["alerts"][0]
    alert["labels"] = dict(reversed(list(alert["labels"].items())))
    alert.update(status="firing", startsAt="2024-11-06T00:00:00Z")
    assert only(payload).dedup_key == event.dedup_key
    # A different label set is a different alert.
    alert["labels"]["container"] = "search-api"
    assert only(payload).dedup_key != event.dedup_key


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), min_size=1, max_size=8))
def test_label_hash_is_stable_and_order_free(labels: dict[str, str]) -> None:
    first = only(am({"labels": labels}))
    again = only(am({"labels": dict(reversed(list(labels.items())))}))
    assert first.dedup_key == again.dedup_key
    assert re.fullmatch(r"alertmanager:[0-9a-f]{16}", first.dedup_key)


def test_alertmanager_alert_without_key_or_labels_is_rejected() -> None:
    err = error_at(am({"status": "firing", "labels": {}}), 0)
    assert err.reason == "missing" and "fingerprint" in str(err)


def test_alert_status_falls_back_to_group_status() -> None:
    assert only(am({"labels": {"a": "b"}}, status="resolved")).status == "resolved"
    assert only(am({"labels": {"a": "b"}, "status": "firing"}, status="resolved")).status == (
        "firing"
    )


def test_ends_at_is_ignored_while_firing() -> None:
    alert = am_alert(alertname="X") | {"endsAt": "2024-11-05T10:00:00Z"}
    assert only(am(alert)).ends_at is None
    alert["status"] = "resolved"
    assert only(am(alert)).ends_at == ts(2024, 11, 5, 10)


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ({"service": "a", "app": "b", "job": "c"}, "a"),
        ({"app": "b", "job": "c", "instance": "d"}, "b"),
        ({"job": "c", "instance": "d"}, "c"),
        ({"instance": "d", "host": "e"}, "d"),
        ({"host": "e", "hostname": "f"}, "e"),
        ({"hostname": "f"}, "f"),
        ({"service": " ", "app": "b"}, "b"),
        ({"team": "x"}, UNKNOWN_SERVICE),
    ],
)
def test_service_label_precedence(labels: dict[str, str], service: str) -> None:
    assert only(am(am_alert(**labels))).service == service


# ---------------------------------------------------------------------------
# Grafana
# ---------------------------------------------------------------------------


def test_grafana_unified_maps_every_field() -> None:
    latency, ssh = events(load("grafana_unified.json"))
    assert latency.source == "grafana"
    assert latency.dedup_key == "grafana:9c1d3e5f7a2b4c6d"
    assert latency.status == "firing"
    assert latency.service == "checkout"
    assert latency.alert_type == "NETWORK"
    assert latency.severity == 0.75  # high
    assert latency.starts_at == ts(2024, 11, 5, 14, 10)  # 15:10+01:00
    assert latency.ends_at is None
    assert latency.summary == "p99 latency of checkout is 1.84s (SLO 0.8s)"
    assert latency.labels["grafana_folder"] == "Shop SLOs"

    assert ssh.status == "resolved"
    assert ssh.service == "bastion-01"  # host label
    assert ssh.alert_type == "SECURITY"
    assert ssh.severity == 0.9
    assert ssh.ends_at == ts(2024, 11, 5, 14, 20)
    assert ssh.summary == "More than 50 failed SSH logins per minute on bastion-01"


def test_grafana_legacy_alerting_and_ok_share_a_key() -> None:
    alerting = only(load("grafana_legacy_alerting.json"))
    ok = only(load("grafana_legacy_ok.json"))
    assert alerting.dedup_key == ok.dedup_key == "grafana:rule-27"
    assert (alerting.status, ok.status) == ("firing", "resolved")
    assert alerting.service == "postgres"
    assert alerting.alert_type == "MEMORY"  # "swap" in the rule name
    assert alerting.severity == 0.5  # tag severity: warning
    assert alerting.starts_at is None and alerting.ends_at is None
    assert alerting.summary == "[Alerting] Database hosts swap usage"
    assert alerting.labels == {"service": "postgres", "severity": "warning"}


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("alerting", "firing"),
        ("ok", "resolved"),
        ("OK", "resolved"),
        ("no_data", "firing"),
        ("pending", "firing"),
        ("paused", "resolved"),
    ],
)
def test_grafana_legacy_states(state: str, status: str) -> None:
    payload = load("grafana_legacy_alerting.json") | {"state": state}
    assert only(payload).status == status


def test_grafana_legacy_without_rule_id_hashes_name_and_tags() -> None:
    payload = load("grafana_legacy_alerting.json")
    del payload["ruleId"]
    key = only(payload).dedup_key
    assert re.fullmatch(r"grafana:[0-9a-f]{16}", key)
    assert only(payload).dedup_key == key
    payload["ruleName"] = "Another rule"
    assert only(payload).dedup_key != key


def test_grafana_legacy_metric_names_classify() -> None:
    payload = load("grafana_legacy_alerting.json") | {"ruleName": "Database hosts"}
    assert only(payload).alert_type == "MEMORY"  # from evalMatches[].metric


# ---------------------------------------------------------------------------
# Datadog
# ---------------------------------------------------------------------------


def test_datadog_triggered_maps_every_field() -> None:
    event = only(load("datadog_triggered.json"))
    assert event.dedup_key == "datadog:7389461027318549286"  # alert_cycle_key
    assert event.status == "firing"
    assert event.service == "storefront"  # service tag beats hostname
    assert event.alert_type == "CPU"  # system.cpu.user
    assert event.severity == 0.8  # P2
    assert event.confidence is None
    assert event.starts_at == 1730819400.0  # $DATE in milliseconds
    assert event.ends_at is None
    assert event.summary == "[Triggered on {host:web-03}] High CPU on web hosts"
    assert event.labels == {
        "env": "prod",
        "host": "web-03",
        "role": "web",
        "service": "storefront",
        "team": "web-platform",
    }


def test_datadog_recovered_maps_every_field() -> None:
    event = only(load("datadog_recovered.json"))
    assert event.dedup_key == "datadog:a07c9f1e2b3d4c5e6f708192a3b4c5d6"  # aggreg_key
    assert event.status == "resolved"
    assert event.service == "db-01"  # no service tag: hostname
    assert event.alert_type == "DISK"
    assert event.severity == 0.6  # P3
    assert event.starts_at is None
    assert event.ends_at == 1730823012.0
    assert event.labels["device"] == "/dev/sdb"


def test_datadog_batch_in_seconds() -> None:
    warn, no_data = events(load("datadog_batch.json"))
    assert warn.dedup_key == "datadog:55501"  # alert_id
    assert warn.status == no_data.status == "firing"
    assert warn.service == "checkout"
    assert warn.alert_type == "NETWORK"  # metric says nothing; the title says latency
    assert warn.severity == 0.5  # no priority: alert_type warning
    assert warn.starts_at == 1730820000.0
    assert no_data.service == "orders-db"
    assert no_data.alert_type == "DISK"  # aws.rds.free_storage_space
    assert no_data.severity == 0.95  # P1


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"alert_cycle_key": "c", "aggreg_key": "a", "alert_id": 1, "id": 2}, "c"),
        ({"aggreg_key": "a", "alert_id": 1, "id": 2}, "a"),
        ({"alert_cycle_key": "", "alert_id": 1, "id": 2}, "1"),
        ({"id": 2, "event_type": "query_alert_monitor", "date": 1}, "2"),
    ],
)
def test_datadog_key_precedence(fields: dict[str, Any], key: str) -> None:
    assert only(fields, "datadog").dedup_key == f"datadog:{key}"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"alert_transition": "Triggered"}, "firing"),
        ({"alert_transition": "Re-Triggered"}, "firing"),
        ({"alert_transition": "Warn"}, "firing"),
        ({"alert_transition": "No Data"}, "firing"),
        ({"alert_transition": "Renotify"}, "firing"),
        ({"alert_transition": "Recovered"}, "resolved"),
        ({"alert_type": "success"}, "resolved"),
        ({"title": "[Recovered on {host:a}] Disk"}, "resolved"),
        ({"title": "[Triggered on {host:a}] Disk"}, "firing"),
    ],
)
def test_datadog_statuses(fields: dict[str, Any], status: str) -> None:
    assert only({"alert_id": 1, **fields}, "datadog").status == status


@pytest.mark.parametrize(
    ("fields", "severity"),
    [
        ({"alert_priority": "P1"}, 0.95),
        ({"alert_priority": "P2"}, 0.8),
        ({"alert_priority": "p3"}, 0.6),
        ({"alert_priority": "P4"}, 0.4),
        ({"alert_priority": "P5", "alert_type": "error"}, 0.2),
        ({"alert_priority": "", "alert_type": "error"}, 0.75),
        ({"alert_type": "warning"}, 0.5),
        ({"alert_type": "info"}, 0.15),
        ({"alert_type": "success"}, 0.15),
        ({"tags": "severity:critical"}, 0.9),
        ({}, DEFAULT_SEVERITY),
    ],
)
def test_datadog_severity(fields: dict[str, Any], severity: float) -> None:
    assert only({"alert_id": 1, **fields}, "datadog").severity == severity


def test_datadog_tags_as_array_and_bare_tags() -> None:
    event = only({"alert_id": 1, "tags": ["service:web", "monitor", " env : prod "]})
    assert event.labels == {"service": "web", "monitor": "", "env": "prod"}
    assert event.service == "web"


@given(st.integers(min_value=10**8, max_value=10**11 - 1))
def test_datadog_dates_in_seconds_and_milliseconds_agree(seconds: int) -> None:
    """Both units read the same from 1973 (10^8 s) to the year 5138 (10^11 s)."""
    as_seconds = only({"alert_id": 1, "date": seconds}).starts_at
    as_ms = only({"alert_id": 1, "date": str(seconds * 1000)}).starts_at
    assert as_seconds == as_ms == float(seconds)


def test_datadog_date_falls_back_to_last_updated() -> None:
    event = only({"alert_id": 1, "last_updated": "1730819400000"})
    assert event.starts_at == 1730819400.0


# ---------------------------------------------------------------------------
# PagerDuty
# ---------------------------------------------------------------------------


def test_pagerduty_trigger_maps_every_field() -> None:
    event = only(load("pagerduty_trigger.json"))
    assert event.dedup_key == "pagerduty:edge-router-2/packet-loss"
    assert event.status == "firing"
    assert event.service == "edge-router"  # component beats source
    assert event.alert_type == "NETWORK"  # class: network
    assert event.severity == 0.9
    assert event.confidence is None
    assert event.starts_at == pytest.approx(ts(2024, 11, 5, 14, 25, 31) + 0.042)  # +0000
    assert event.summary == "Packet loss above 5% on edge-router-2 uplink xe-0/0/1"
    assert event.labels["source"] == "edge-router-2.fra1.example.net"
    assert event.labels["custom_details.packet_loss_percent"] == "7.4"


def test_pagerduty_resolve_closes_the_trigger() -> None:
    trigger = only(load("pagerduty_trigger.json"))
    resolve = only(load("pagerduty_resolve.json"))
    assert resolve.dedup_key == trigger.dedup_key
    assert resolve.status == "resolved"
    assert resolve.service == UNKNOWN_SERVICE
    assert resolve.severity == DEFAULT_SEVERITY


def test_pagerduty_batch_hashes_a_trigger_without_key() -> None:
    trigger, ack = events(load("pagerduty_batch.json"))
    assert re.fullmatch(r"pagerduty:[0-9a-f]{16}", trigger.dedup_key)
    assert trigger.alert_type == "MEMORY"  # "heap" in the summary; class jvm says nothing
    assert trigger.service == "search-worker"
    assert trigger.severity == 0.5
    assert ack.status == "firing"  # acknowledged is still a live problem
    assert ack.dedup_key == "pagerduty:edge-router-2/packet-loss"
    # The hash is over routing_key + summary + source: stable, and sensitive to each.
    again = load("pagerduty_batch.json")[0]
    assert only(again).dedup_key == trigger.dedup_key
    again["payload"]["source"] = "search-worker-5.prod.internal"
    assert only(again).dedup_key != trigger.dedup_key


@pytest.mark.parametrize(
    ("severity", "value"),
    [("critical", 0.9), ("error", 0.75), ("warning", 0.5), ("info", 0.15)],
)
def test_pagerduty_severity(severity: str, value: float) -> None:
    payload = load("pagerduty_trigger.json")
    payload["payload"]["severity"] = severity
    assert only(payload).severity == value


def test_pagerduty_service_falls_back_to_source() -> None:
    payload = load("pagerduty_trigger.json")
    del payload["payload"]["component"]
    assert only(payload).service == "edge-router-2.fra1.example.net"


# ---------------------------------------------------------------------------
# Native
# ---------------------------------------------------------------------------


def test_native_single_maps_every_field() -> None:
    event = only(load("native_single.json"))
    assert event == AlertEvent(
        source="native",
        dedup_key="native:orders-db-volume-94",
        status="firing",
        service="orders-db",
        alert_type="DISK",
        severity=0.82,
        confidence=0.9,
        starts_at=ts(2024, 11, 5, 14),
        ends_at=None,
        summary="Data volume of orders-db is 94% full",
        labels={"env": "prod", "replicas": "3"},
    )


def test_native_list_key_aliases_and_units() -> None:
    auth, cart, search = events(load("native_list.json"))
    assert auth.dedup_key == "native:auth-brute-force-eu"  # dedup_key
    assert auth.severity == 0.95  # visible_severity
    assert auth.starts_at == 1730815200.0  # Unix seconds
    assert cart.dedup_key == "native:cart-mem-leak"  # alias
    assert cart.alert_type == "MEMORY"  # "Memory", any case
    assert (cart.status, cart.confidence) == ("resolved", 0.55)
    assert cart.ends_at == ts(2024, 11, 5, 13, 30)
    assert search.dedup_key == "native:42"  # integer fingerprint
    assert search.severity == 0.0 and search.confidence is None


@pytest.mark.parametrize(
    ("fields", "reason", "fragment"),
    [
        ({"severity": 1.7}, "range", "severity: 1.7 is outside [0, 1]"),
        ({"severity": -0.1}, "range", "[0, 1]"),
        ({"severity": float("nan")}, "range", "nan"),
        ({"severity": "0.5"}, "type", "severity: expected a number in [0, 1]"),
        ({"severity": True}, "type", "severity"),
        ({"confidence": 2}, "range", "confidence: 2 is outside [0, 1]"),
        ({"alert_type": "GPU"}, "alert_type", "'GPU' is not one of CPU, MEMORY"),
        ({"status": "open"}, "status", "status: 'open' is not one of firing, resolved"),
        ({"service": ""}, "type", "service: expected a non-empty string"),
        ({"labels": ["a"]}, "type", "labels: expected an object"),
        ({"id": 1.5}, "type", "id: expected a non-empty string or integer"),
        ({"starts_at": -5}, "time", "starts_at: -5"),
        ({"starts_at": 1730815200000}, "time", "milliseconds sent as seconds"),
        ({"starts_at": "soon"}, "time", "starts_at: 'soon' is not a time"),
        ({"starts_at": 100, "ends_at": 50}, "time", "ends_at: 50 is before starts_at"),
    ],
)
def test_native_errors_name_field_value_and_rule(
    fields: dict[str, Any], reason: str, fragment: str
) -> None:
    err = error_at(native(**fields), 0)
    assert err.reason == reason
    assert fragment in str(err)


# ---------------------------------------------------------------------------
# Shared mapping rules
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("critical", 0.9),
        ("CRIT", 0.9),
        ("page", 0.9),
        ("P1", 0.9),
        ("Sev-1", 0.9),
        ("high", 0.75),
        ("error", 0.75),
        ("major", 0.75),
        ("p2", 0.75),
        ("warning", 0.5),
        ("warn", 0.5),
        ("medium", 0.5),
        ("low", 0.3),
        ("minor", 0.3),
        ("info", 0.15),
        ("informational", 0.15),
        ("none", 0.15),
        ("P5", 0.15),
        ("0.42", 0.42),
        ("1", 1.0),
        ("0", 0.0),
        ("blue", DEFAULT_SEVERITY),
        ("", DEFAULT_SEVERITY),
    ],
)
def test_severity_table(word: str, value: float) -> None:
    assert only(am(am_alert(severity=word))).severity == value


def test_priority_label_when_no_severity() -> None:
    assert only(am(am_alert(priority="P2"))).severity == 0.75
    assert only(am(am_alert(severity="low", priority="P1"))).severity == 0.3
    assert only(am(am_alert(alertname="X"))).severity == DEFAULT_SEVERITY


@pytest.mark.parametrize("word", ["7", "-0.1", "1.01", "1e9", 3, float("inf")])
def test_out_of_range_severity_is_rejected(word: Any) -> None:
    err = error_at(am(am_alert(severity=word)), 0)
    assert err.reason == "range"
    assert "labels.severity" in str(err) and "[0, 1]" in str(err)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_numeric_severity_in_range_is_kept(value: float) -> None:
    assert only(am(am_alert(severity=repr(value)))).severity == value
    assert only(native(severity=value)).severity == value


@pytest.mark.parametrize(
    ("name", "alert_type"),
    [
        ("HighCPUUsage", "CPU"),
        ("CPUThrottlingHigh", "CPU"),
        ("node_load15", "CPU"),
        ("system.load.1", "CPU"),
        ("HostCpuStealNoisyNeighbor", "CPU"),
        ("NodeFilesystemSpaceFillingUp", "DISK"),
        ("node_filesystem_avail_bytes", "DISK"),
        ("KubePersistentVolumeFillingUp", "DISK"),
        ("HighDiskIOPS", "DISK"),
        ("InodesNearlyExhausted", "DISK"),
        ("node_fs_usage", "DISK"),
        ("ContainerOOMKilled", "MEMORY"),
        ("container_memory_rss", "MEMORY"),
        ("JvmHeapUsageHigh", "MEMORY"),
        ("HostSwapIsFillingUp", "MEMORY"),
        ("mem_used_percent", "MEMORY"),
        ("HTTPLatencyHigh", "NETWORK"),
        ("DNSResolutionFailed", "NETWORK"),
        ("node_network_receive_errs_total", "NETWORK"),
        ("TooManyTCPConnections", "NETWORK"),
        ("UpstreamTimeouts", "NETWORK"),
        ("HostUnreachable", "NETWORK"),
        ("SSLCertExpiringSoon", "SECURITY"),
        ("FailedSSHLogins", "SECURITY"),
        ("WAFBlockedRequestsSpike", "SECURITY"),
        ("CVE-2024-3094 found on build hosts", "SECURITY"),
        ("AuthServiceHighCPU", "SECURITY"),  # precedence: security before CPU
        ("DiskLatencyHigh", "DISK"),  # precedence: disk before network
        ("KubeAPIErrorBudgetBurn", "APPLICATION"),
        ("TargetDown", "APPLICATION"),
        ("MemberlistJoinFailed", "APPLICATION"),  # "mem" must be a whole token
        ("DownloadQueueStuck", "APPLICATION"),  # so must "load"
        ("Netflix OSS gateway 5xx", "APPLICATION"),  # and "net"
    ],
)
def test_keyword_classification(name: str, alert_type: str) -> None:
    assert only(am(am_alert(alertname=name))).alert_type == alert_type


def test_name_tier_beats_label_tier() -> None:
    assert only(am(am_alert(alertname="HighCPUUsage", team="security"))).alert_type == "CPU"
    assert only(am(am_alert(alertname="TargetDown", team="storage"))).alert_type == "DISK"


def test_description_tier_before_labels() -> None:
    alert = am_alert(alertname="SLOBurn", team="storage")
    alert["annotations"] = {"description": "p99 latency over budget"}
    assert only(am(alert)).alert_type == "NETWORK"


@pytest.mark.parametrize("key", ["alert_type", "type"])
def test_explicit_type_label_wins(key: str) -> None:
    labels = {"alertname": "HighCPUUsage", key: "network"}
    assert only(am(am_alert(**labels))).alert_type == "NETWORK"
    labels[key] = "gauge"  # not a type: ignored
    assert only(am(am_alert(**labels))).alert_type == "CPU"


@pytest.mark.parametrize(
    ("status", "mapped"),
    [
        ("firing", "firing"),
        ("resolved", "resolved"),
        ("RESOLVED", "resolved"),
        ("resolve", "resolved"),
        ("Recovered", "resolved"),
        ("ok", "resolved"),
        ("alerting", "firing"),
        ("trigger", "firing"),
        ("acknowledge", "firing"),
        ("Triggered", "firing"),
        ("something-new", "firing"),
    ],
)
def test_status_words(status: str, mapped: str) -> None:
    assert only(am(am_alert() | {"status": status})).status == mapped


def test_non_string_status_is_rejected() -> None:
    err = error_at(am(am_alert() | {"status": 1}), 0)
    assert err.reason == "status" and "status" in str(err)


@pytest.mark.parametrize(
    ("action", "status"),
    [("trigger", "firing"), ("acknowledge", "firing"), ("resolve", "resolved")],
)
def test_pagerduty_actions(action: str, status: str) -> None:
    payload = load("pagerduty_trigger.json") | {"event_action": action}
    assert only(payload).status == status


# ---------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-05T14:02:17Z", ts(2024, 11, 5, 14, 2, 17)),
        ("2024-11-05T14:02:17.123456789Z", ts(2024, 11, 5, 14, 2, 17) + 0.123456),
        ("2024-11-05t14:02:17z", ts(2024, 11, 5, 14, 2, 17)),
        ("2024-11-05 14:02:17", ts(2024, 11, 5, 14, 2, 17)),
        ("2024-11-05T16:02:17+02:00", ts(2024, 11, 5, 14, 2, 17)),
        ("2024-11-05T16:02:17.5+0200", ts(2024, 11, 5, 14, 2, 17) + 0.5),
        ("2024-11-05T09:02:17-05", ts(2024, 11, 5, 14, 2, 17)),
        ("2016-12-31T23:59:60Z", ts(2016, 12, 31, 23, 59, 59)),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_timestamp_forms(text: str, expected: float | None) -> None:
    event = only(am(am_alert() | {"startsAt": text}))
    if expected is None:
        assert event.starts_at is None
    else:
        assert event.starts_at == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "2024-13-05T14:02:17Z",
        "2024-11-05",
        "1730815337",
        "2024-11-05T14:02:17+25:00",
        "1969-12-31T23:59:59Z",
        "yesterday",
    ],
)
def test_bad_timestamps_name_field_and_value(text: str) -> None:
    err = error_at(am(am_alert() | {"startsAt": text}), 0)
    assert err.reason == "time"
    assert str(err).startswith("startsAt: ") and repr(text) in str(err)


def test_numbers_are_not_alertmanager_times() -> None:
    err = error_at(am(am_alert() | {"startsAt": 1730815337}), 0)
    assert err.reason == "time" and "ISO-8601" in str(err)


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_OFFSETS
    ),
    st.sampled_from(["", "123", "123456789"]),
)
def test_iso_times_round_trip(moment: dt.datetime, extra_digits: str) -> None:
    text = moment.isoformat()
    if moment.microsecond and extra_digits:
        date_part, offset = text[:-6], text[-6:]
        text = date_part + extra_digits + offset  # sub-microsecond digits are dropped
    event = only(native(starts_at=text))
    assert event.starts_at == pytest.approx(moment.timestamp(), abs=1e-6)


# ---------------------------------------------------------------------------
# Bad payloads
# ---------------------------------------------------------------------------


def test_bad_native_severity_range() -> None:
    err = error_at(load("bad_native_severity_range.json"), 0)
    assert err.reason == "range"
    assert "severity: 1.7 is outside [0, 1]" in str(err)


def test_bad_native_missing_fields_each_named() -> None:
    _, results = parse(load("bad_native_missing_fields.json"))
    assert all(isinstance(r, PayloadError) and r.reason == "missing" for r in results)
    messages = [str(r) for r in results]
    assert messages[0].startswith("service: missing")
    assert messages[1].startswith("alert_type: missing") and "SECURITY" in messages[1]
    assert messages[2].startswith("severity: missing") and "[0, 1]" in messages[2]
    assert messages[3].startswith("id: missing") and "dedup_key" in messages[3]


def test_batch_with_one_bad_alert_keeps_the_good_ones() -> None:
    fmt, results = parse(load("bad_native_batch_one_bad.json"))
    assert fmt == "native"
    first, bad, third = results
    assert isinstance(first, AlertEvent) and first.dedup_key == "native:a"
    assert isinstance(bad, PayloadError) and bad.reason == "range" and "5" in str(bad)
    assert isinstance(third, AlertEvent) and third.dedup_key == "native:c"


def test_bad_alertmanager_timestamp_only_fails_its_alert() -> None:
    _, (bad, good) = parse(load("bad_alertmanager_timestamp.json"))
    assert isinstance(bad, PayloadError) and bad.reason == "time"
    assert "startsAt: '05/11/2024 14:02' is not a time" in str(bad)
    assert isinstance(good, AlertEvent) and good.dedup_key == "alertmanager:1d2e3f4a5b6c7d8e"


def test_bad_grafana_severity_range() -> None:
    err = error_at(load("bad_grafana_severity_range.json"), 0)
    assert err.reason == "range" and "labels.severity: '7' is outside [0, 1]" in str(err)


def test_bad_datadog_date() -> None:
    err = error_at(load("bad_datadog_date.json"), 0)
    assert err.reason == "time"
    assert "date: '$DATE'" in str(err) and "milliseconds" in str(err)


def test_bad_pagerduty_events() -> None:
    _, (no_severity, no_key, bad_action) = parse(load("bad_pagerduty_missing_fields.json"))
    assert isinstance(no_severity, PayloadError) and no_severity.reason == "missing"
    assert str(no_severity).startswith("payload.severity: missing")
    assert isinstance(no_key, PayloadError) and no_key.reason == "missing"
    assert str(no_key).startswith("dedup_key: missing") and "resolve" in str(no_key)
    assert isinstance(bad_action, PayloadError) and bad_action.reason == "status"
    assert "'escalate' is not one of trigger, acknowledge, resolve" in str(bad_action)


def test_pagerduty_missing_action_and_bad_payload() -> None:
    err = error_at([{"routing_key": "r", "payload": {}}], 0, "pagerduty")
    assert err.reason == "missing" and str(err).startswith("event_action: missing")
    err = error_at({"event_action": "trigger", "payload": "disk full"}, 0)
    assert err.reason == "type" and str(err).startswith("payload: expected an object")


def test_bad_shape_alerts_not_array() -> None:
    with pytest.raises(PayloadError) as info:
        parse(load("bad_shape_alerts_not_array.json"))
    assert info.value.reason == "shape"
    assert '"alerts" must be an array' in str(info.value) and "got object" in str(info.value)


def test_wrong_types_inside_an_alert() -> None:
    err = error_at(am({"labels": "alertname=X", "fingerprint": "f"}), 0)
    assert err.reason == "type" and str(err).startswith("labels: expected an object")
    err = error_at(am("just a string"), 0)
    assert err.reason == "shape" and "got string" in str(err)
    err = error_at({"alert_id": 1, "tags": 5}, 0)
    assert err.reason == "type" and str(err).startswith("tags:")


def test_long_values_are_cut_in_messages() -> None:
    err = error_at(native(alert_type="X" * 10_000), 0)
    assert len(str(err)) < 300


# ---------------------------------------------------------------------------
# Robustness: any JSON in, events or PayloadError out
# ---------------------------------------------------------------------------

_KNOWN_KEYS = [
    "version",
    "alerts",
    "status",
    "orgId",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "ruleName",
    "ruleId",
    "state",
    "evalMatches",
    "tags",
    "title",
    "alert_id",
    "alert_cycle_key",
    "aggreg_key",
    "alert_transition",
    "alert_priority",
    "alert_type",
    "alert_metric",
    "date",
    "last_updated",
    "hostname",
    "event_type",
    "id",
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "class",
    "custom_details",
    "service",
    "visible_severity",
    "confidence",
    "starts_at",
    "ends_at",
    "alias",
    "receiver",
    "groupKey",
]
_INTERESTING = [
    "4",
    "1",
    "firing",
    "resolved",
    "ok",
    "paused",
    "critical",
    "P1",
    "0.7",
    "7",
    "CPU",
    "disk",
    "trigger",
    "resolve",
    "acknowledge",
    "Recovered",
    "success",
    "2024-11-05T14:02:17.123456789Z",
    "0001-01-01T00:00:00Z",
    "2024-11-05T14:02:17+0200",
    "1730819400000",
    "service:web,env:prod,monitor",
    "HighCPUUsage",
]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(_INTERESTING)
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KNOWN_KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=25,
)


def _check_total(payload: Any, fmt: str | None) -> None:
    try:
        name, results = parse(payload, fmt)
    except PayloadError as exc:
        assert str(exc) and isinstance(exc.reason, str) and exc.reason
        return
    assert name in FORMATS and (fmt is None or name == fmt.strip().lower())
    for result in results:
        if isinstance(result, PayloadError):
            assert str(result) and result.reason
        else:
            assert_event_invariants(result, name)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.none() | st.sampled_from(FORMATS))
def test_parse_is_total_on_json_like_values(payload: Any, fmt: str | None) -> None:
    _check_total(payload, fmt)


# Values a sender might plausibly put in a field, mixed with anything at all, so
# the fuzzing reaches the successful paths as well as the error ones.
_plausible = st.one_of(
    st.sampled_from(_INTERESTING),
    st.text(max_size=12),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=2 * 10**12),
    st.dictionaries(
        st.sampled_from(["alertname", "service", "severity", "type", "host"]) | st.text(max_size=6),
        st.sampled_from(_INTERESTING) | st.text(max_size=8),
        max_size=4,
    ),
)
field_values = st.one_of(_plausible, _plausible, _plausible, json_values)


def _group(alert_keys: list[str]) -> st.SearchStrategy[Any]:
    alert = st.dictionaries(st.sampled_from(alert_keys), field_values, max_size=len(alert_keys))
    return st.fixed_dictionaries(
        {"version": st.sampled_from(["4", "1"]), "alerts": st.lists(alert, max_size=3)},
        optional={"orgId": st.just(1), "status": field_values},
    )


_AM_KEYS = ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint"]
_DD_KEYS = [
    "id",
    "title",
    "date",
    "last_updated",
    "alert_id",
    "alert_cycle_key",
    "aggreg_key",
    "alert_transition",
    "alert_priority",
    "alert_type",
    "alert_metric",
    "hostname",
    "tags",
    "body",
]
_PD_BODY_KEYS = ["summary", "source", "severity", "timestamp", "component", "class"]
_NATIVE_KEYS = [
    "id",
    "service",
    "alert_type",
    "severity",
    "confidence",
    "status",
    "starts_at",
    "ends_at",
    "labels",
]
_iso_times = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda moment: moment.isoformat().replace("+00:00", "Z"))
_times = _iso_times | st.sampled_from(["0001-01-01T00:00:00Z", ""]) | field_values
_label_maps = st.dictionaries(
    st.sampled_from(["alertname", "service", "app", "job", "instance", "severity", "type"])
    | st.text(max_size=6),
    st.sampled_from(_INTERESTING) | st.text(max_size=10),
    max_size=5,
)


def _overlay(base: st.SearchStrategy[dict[str, Any]], keys: list[str]) -> st.SearchStrategy[Any]:
    """A mostly valid object with up to two fields replaced by anything."""
    noise = st.dictionaries(st.sampled_from(keys), field_values, max_size=2)
    return st.builds(lambda b, n: {**b, **n}, base, st.just({}) | noise)


_near_valid_alert = _overlay(
    st.fixed_dictionaries(
        {"labels": _label_maps},
        optional={
            "status": st.sampled_from(["firing", "resolved"]),
            "annotations": _label_maps,
            "startsAt": _times,
            "endsAt": _times,
            "fingerprint": st.text(min_size=1, max_size=16),
        },
    ),
    _AM_KEYS,
)
_near_valid = st.one_of(
    st.fixed_dictionaries(
        {
            "version": st.just("4"),
            "status": st.just("firing"),
            "alerts": st.lists(_near_valid_alert),
        }
    ),
    st.fixed_dictionaries(
        {"orgId": st.just(1), "version": st.just("1"), "alerts": st.lists(_near_valid_alert)}
    ),
    st.lists(
        _overlay(
            st.fixed_dictionaries(
                {"alert_id": st.integers(min_value=0) | st.text(min_size=1)},
                optional={
                    "alert_transition": st.sampled_from(["Triggered", "Recovered", "No Data"]),
                    "alert_priority": st.sampled_from(["P1", "P3", "", "P9"]),
                    "alert_type": st.sampled_from(["error", "warning", "success", "info"]),
                    "date": st.integers(min_value=0, max_value=253_402_300_799_000),
                    "last_updated": _times,
                    "tags": st.text(max_size=30),
                    "title": st.text(max_size=30),
                },
            ),
            _DD_KEYS,
        ),
        min_size=1,
        max_size=3,
    ),
    st.lists(
        _overlay(
            st.fixed_dictionaries(
                {
                    "event_action": st.sampled_from(["trigger", "acknowledge", "resolve"]),
                    "dedup_key": st.text(min_size=1, max_size=12),
                    "payload": st.fixed_dictionaries(
                        {
                            "summary": st.text(min_size=1, max_size=20),
                            "source": st.text(min_size=1, max_size=10),
                            "severity": st.sampled_from(["critical", "error", "warning", "info"]),
                        },
                        optional={"timestamp": _times, "class": st.text(max_size=10)},
                    ),
                }
            ),
            ["dedup_key", "routing_key", "payload"],
        ),
        min_size=1,
        max_size=3,
    ),
    st.lists(
        _overlay(
            st.fixed_dictionaries(
                {
                    "id": st.integers() | st.text(min_size=1, max_size=8),
                    "service": st.text(min_size=1, max_size=8),
                    "alert_type": st.sampled_from([*ALERT_TYPES, "cpu", "Disk"]),
                    "severity": st.floats(min_value=0.0, max_value=1.0),
                },
                optional={
                    "confidence": st.none() | st.floats(min_value=0.0, max_value=1.0),
                    "status": st.sampled_from(["firing", "resolved", "Resolved"]),
                    "starts_at": st.integers(min_value=0, max_value=253_402_300_799) | _times,
                    "ends_at": _times,
                    "summary": st.text(max_size=20),
                    "labels": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
                },
            ),
            _NATIVE_KEYS,
        ),
        min_size=1,
        max_size=3,
    ),
)
_shaped_payloads = st.one_of(
    _near_valid,
    _group(_AM_KEYS),
    st.fixed_dictionaries({"ruleId": field_values, "state": field_values}).flatmap(
        lambda base: st.dictionaries(
            st.sampled_from(["ruleName", "tags", "title", "evalMatches", "message"]), field_values
        ).map(lambda extra: {**base, **extra})
    ),
    st.lists(st.dictionaries(st.sampled_from(_DD_KEYS), field_values), min_size=1, max_size=3),
    st.lists(
        st.fixed_dictionaries(
            {
                "event_action": st.sampled_from(["trigger", "acknowledge", "resolve", "x"]),
                "payload": st.dictionaries(st.sampled_from(_PD_BODY_KEYS), field_values)
                | field_values,
            },
            optional={"dedup_key": field_values, "routing_key": field_values},
        ),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.dictionaries(st.sampled_from(_NATIVE_KEYS), field_values), min_size=1, max_size=3),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_shaped_payloads, st.none() | st.sampled_from(FORMATS))
def test_parse_is_total_on_format_shaped_values(payload: Any, fmt: str | None) -> None:
    """Like the above, but with the right keys so the field mapping itself is fuzzed."""
    _check_total(payload, fmt)


@settings(max_examples=200, deadline=None)
@given(_shaped_payloads)
def test_parse_is_deterministic(payload: Any) -> None:
    try:
        first = parse(payload)
    except PayloadError as exc:
        with pytest.raises(PayloadError) as again:
            parse(payload)
        assert (str(again.value), again.value.reason) == (str(exc), exc.reason)
        return
    second = parse(payload)
    assert first[0] == second[0]
    for a, b in zip(first[1], second[1], strict=True):
        if isinstance(a, AlertEvent):
            assert a == b
        else:
            assert (type(a), str(a), a.reason) == (type(b), str(b), b.reason)  # type: ignore[union-attr]
