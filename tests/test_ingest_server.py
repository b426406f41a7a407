"""Alert ingestion end to end, with real components only: a real Prometheus
Alertmanager posting to the server, every webhook format over HTTP, tokens,
metrics, a SIGKILL in the middle of ingestion, concurrent clients, fuzzed
bodies, and live sessions that see what was ingested.

The Alertmanager test is marked ``alertmanager`` and fails (never skips) when
the binary is missing: ``apt-get install -y prometheus-alertmanager``.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from adaptive_alert_triage.ingest.formats import FORMATS, parse
from adaptive_alert_triage.ingest.model import AlertEvent
from adaptive_alert_triage.ingest.store import AlertStore
from adaptive_alert_triage.server import create_server_app

from .ingest_utils import (
    DATA,
    Alertmanager,
    ServeProcess,
    assert_json_error,
    rfc3339,
    wait_until,
)
from .server_utils import LiveServer

EXAMPLES = DATA / "ingest"
TOKEN = "s3cret"

#: The good example payloads: file stem -> (format, number of alerts in it).
GOOD_EXAMPLES: dict[str, tuple[str, int]] = {
    "alertmanager_v4_firing": ("alertmanager", 3),
    "alertmanager_v4_resolved": ("alertmanager", 1),
    "datadog_batch": ("datadog", 2),
    "datadog_recovered": ("datadog", 1),
    "datadog_triggered": ("datadog", 1),
    "grafana_legacy_alerting": ("grafana", 1),
    "grafana_legacy_ok": ("grafana", 1),
    "grafana_unified": ("grafana", 2),
    "native_list": ("native", 3),
    "native_single": ("native", 1),
    "pagerduty_batch": ("pagerduty", 2),
    "pagerduty_resolve": ("pagerduty", 1),
    "pagerduty_trigger": ("pagerduty", 1),
}
#: The bad ones: stem -> (status, {index of a rejected alert: reason}) for
#: per-alert rejections, or (status, None) when the payload as a whole is refused.
BAD_EXAMPLES: dict[str, tuple[int, dict[int, str] | None]] = {
    "bad_alertmanager_timestamp": (207, {0: "time"}),
    "bad_native_batch_one_bad": (207, {1: "range"}),
    "bad_datadog_date": (422, {0: "time"}),
    "bad_grafana_severity_range": (422, {0: "range"}),
    "bad_native_missing_fields": (422, {0: "missing", 1: "missing", 2: "missing", 3: "missing"}),
    "bad_native_severity_range": (422, {0: "range"}),
    "bad_pagerduty_missing_fields": (422, {0: "missing", 1: "missing", 2: "status"}),
    "bad_shape_alerts_not_array": (422, None),
    "bad_shape_scalar": (422, None),
    "bad_unknown_format": (422, None),
}
#: Formats that read each other's shape on request (same alert objects).
SIBLINGS = {"alertmanager", "grafana"}


def example(stem: str) -> Any:
    return json.loads((EXAMPLES / f"{stem}.json").read_text())


def example_bytes(stem: str) -> bytes:
    return (EXAMPLES / f"{stem}.json").read_bytes()


def native(key: str, **fields: Any) -> dict[str, Any]:
    """One alert in the project's own JSON."""
    return {
        "id": key,
        "service": "payments",
        "alert_type": "CPU",
        "severity": 0.7,
        "confidence": 0.8,
        **fields,
    }


def read_store(db: Path) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """(alerts rows, number of events, events per key), through a connection
    of its own: only what was committed."""
    with AlertStore(db) as store:
        alerts = store.alerts()
        events = store.events()
    return alerts, len(events), Counter(e.event.dedup_key for e in events)


def rows_by_key(db: Path) -> dict[str, dict[str, Any]]:
    return {row["dedup_key"]: row for row in read_store(db)[0]}


def ingest(client: httpx.Client, payload: Any, fmt: str | None = None, **kw) -> httpx.Response:
    params = {"format": fmt} if fmt is not None else None
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return client.post("/ingest/alerts", content=content, params=params, headers=headers, **kw)


def metric_samples(client: httpx.Client) -> dict[tuple[str, frozenset], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class Servers:
    """Fresh in-process servers (real uvicorn on loopback), each on its own
    store, all stopped at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.live: list[LiveServer] = []

    def start(self, db: str | None = "alerts.db", **kwargs: Any) -> tuple[LiveServer, Path | None]:
        path = None
        if db is not None:
            path = self.tmp_path / f"{len(self.live)}-{db}"
            kwargs["db_path"] = str(path)
        kwargs.setdefault("results_path", None)
        live = LiveServer(create_server_app(**kwargs))
        self.live.append(live)
        return live, path

    def stop(self) -> None:
        for live in self.live:
            live.stop()


@pytest.fixture
def servers(tmp_path):
    made = Servers(tmp_path)
    yield made
    made.stop()


@pytest.fixture
def fresh(servers):
    """A server with an empty store and a keep-alive client on it."""
    live, db = servers.start()
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client, db


# --------------------------------------------------------------------------- 1. Alertmanager
@pytest.mark.alertmanager
def test_a_real_alertmanager_fires_and_resolves_into_the_store(servers, tmp_path):
    live, db = servers.start(ingest_token=TOKEN)
    manager = Alertmanager(
        tmp_path / "alertmanager",
        webhook_url=f"{live.url}/ingest/alerts",
        token=TOKEN,
        group_wait="1s",
        group_interval="1s",
    )
    try:
        started = time.time() - 30
        labels = {"alertname": "HighCPUUsage", "service": "payments", "severity": "critical"}
        alert = {
            "labels": labels,
            "annotations": {"summary": "CPU of payments above 95% for 5 minutes"},
            "startsAt": rfc3339(started),
        }
        manager.post_alerts([alert])
        fingerprint = wait_until(
            lambda: next(
                (
                    a["fingerprint"]
                    for a in httpx.get(f"{manager.url}/api/v2/alerts", timeout=5).json()
                    if a["labels"].get("alertname") == "HighCPUUsage"
                ),
                None,
            ),
            timeout=10,
            what="Alertmanager to list the alert",
            diagnostics=manager.log_tail,
        )
        key = f"alertmanager:{fingerprint}"

        def stored(status: str):
            row = rows_by_key(db).get(key)
            return row if row is not None and row["status"] == status else None

        row = wait_until(
            lambda: stored("firing"),
            timeout=20,
            what=f"Alertmanager's firing notification of {key} in the store",
            diagnostics=manager.log_tail,
        )
        assert row["source"] == "alertmanager" and row["format"] == "alertmanager"
        assert row["service"] == "payments"
        assert row["alert_type"] == "CPU"
        assert row["severity"] == pytest.approx(0.9)  # "critical"
        assert row["summary"] == "CPU of payments above 95% for 5 minutes"
        assert row["starts_at"] == pytest.approx(started, abs=0.01)
        assert row["ends_at"] is None
        assert row["labels"] == labels

        ended = time.time() - 1
        manager.post_alerts([{**alert, "endsAt": rfc3339(ended)}])
        row = wait_until(
            lambda: stored("resolved"),
            timeout=20,
            what=f"Alertmanager's resolved notification of {key} in the store",
            diagnostics=manager.log_tail,
        )
        assert row["ends_at"] == pytest.approx(ended, abs=0.01)
        assert row["starts_at"] == pytest.approx(started, abs=0.01)
        assert row["service"] == "payments" and row["severity"] == pytest.approx(0.9)
        alerts, _, per_key = read_store(db)
        # Updated in place, not duplicated: one alert, one row, both notifications.
        assert [a["dedup_key"] for a in alerts] == [key]
        assert row["notifications"] == per_key[key] >= 2
        with AlertStore(db) as store:
            statuses = [s.event.status for s in store.events()]
        assert statuses[0] == "firing" and statuses[-1] == "resolved"
    finally:
        manager.stop()
    assert manager.proc.poll() is not None


# --------------------------------------------------------------------------- 2. formats
@pytest.mark.parametrize("stem", sorted(GOOD_EXAMPLES))
def test_every_example_payload_is_ingested_over_http(fresh, stem):
    client, db = fresh
    fmt, count = GOOD_EXAMPLES[stem]
    payload = example(stem)
    _, parsed = parse(payload)
    expected_keys = [e.dedup_key for e in parsed if isinstance(e, AlertEvent)]
    assert len(expected_keys) == count

    r = ingest(client, example_bytes(stem))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == fmt
    assert body["received"] == body["accepted"] == count
    assert body["rejected"] == []
    assert body["keys"] == expected_keys
    assert all(k.startswith(f"{fmt}:") for k in body["keys"])
    assert body["last_seq"] == count

    # A status-only notification (a PagerDuty acknowledge or resolve without a
    # payload) of a key the store does not hold firing makes no alert.
    ghosts = [e.dedup_key for e in parsed if isinstance(e, AlertEvent) and e.status_only]
    assert body["unknown"] == ghosts
    rows = rows_by_key(db)
    assert set(rows) == set(expected_keys) - set(ghosts)
    for event in parsed:
        if event.dedup_key in ghosts:
            continue
        row = rows[event.dedup_key]
        assert (row["source"], row["format"]) == (fmt, fmt)
        assert (row["service"], row["alert_type"], row["status"]) == (
            event.service,
            event.alert_type,
            event.status,
        )
        assert row["severity"] == pytest.approx(event.severity)

    # The same payload, named explicitly: same format, same keys.
    named = ingest(client, payload, fmt=fmt)
    assert named.status_code == 200, named.text
    assert named.json()["format"] == fmt and named.json()["keys"] == expected_keys

    # Named as something else: refused whole (4xx with a detail), except a group
    # of Alertmanager-shaped alerts, which Grafana's unified alerting also sends.
    for other in FORMATS:
        if other == fmt:
            continue
        r = ingest(client, payload, fmt=other)
        if {fmt, other} == SIBLINGS and "alerts" in payload:
            assert r.status_code == 200, r.text
            assert all(k.startswith(f"{other}:") for k in r.json()["keys"])
        else:
            assert_json_error(r, 422)


def test_a_mismatched_format_is_refused_and_nothing_is_stored(fresh):
    client, db = fresh
    r = ingest(client, example("native_single"), fmt="alertmanager")
    detail = assert_json_error(r, 422)
    assert "alertmanager" in detail and "native" in detail
    detail = assert_json_error(ingest(client, example("alertmanager_v4_firing"), fmt="pagerduty"))
    assert "pagerduty" in detail
    assert read_store(db)[1] == 0


@pytest.mark.parametrize("stem", sorted(BAD_EXAMPLES))
def test_bad_example_payloads(fresh, stem):
    client, db = fresh
    status, reasons = BAD_EXAMPLES[stem]
    r = ingest(client, example_bytes(stem))
    assert r.status_code == status, r.text
    if status == 207:
        body = r.json()
        assert {item["index"]: item["reason"] for item in body["rejected"]} == reasons
        assert all(item["detail"] for item in body["rejected"])
        assert body["accepted"] == body["received"] - len(reasons) == len(body["keys"]) > 0
        assert set(rows_by_key(db)) == set(body["keys"])
        return
    detail = assert_json_error(r, 422)
    if reasons is not None:
        assert {item["index"]: item["reason"] for item in detail["rejected"]} == reasons
        assert "none of the" in detail["message"]
    assert read_store(db)[1] == 0


def test_repeated_notifications_update_and_resolve_closes(fresh):
    client, db = fresh
    first = ingest(client, example("alertmanager_v4_firing"))
    second = ingest(client, example("alertmanager_v4_firing"))
    assert first.status_code == second.status_code == 200
    assert first.json()["keys"] == second.json()["keys"]
    assert second.json()["last_seq"] == 2 * first.json()["last_seq"]
    alerts, n_events, per_key = read_store(db)
    assert len(alerts) == 3 and n_events == 6
    assert set(per_key.values()) == {2}
    assert {a["notifications"] for a in alerts} == {2}

    # Trigger then resolve: one alert, closed, ends_at from the sender.
    for stem in ("pagerduty_trigger", "pagerduty_resolve", "grafana_legacy_alerting"):
        assert ingest(client, example(stem)).status_code == 200
    rows = rows_by_key(db)
    assert rows["pagerduty:edge-router-2/packet-loss"]["status"] == "resolved"
    assert rows["grafana:rule-27"]["status"] == "firing"
    assert ingest(client, example("grafana_legacy_ok")).status_code == 200
    rows = rows_by_key(db)
    assert rows["grafana:rule-27"]["status"] == "resolved"
    assert rows["grafana:rule-27"]["notifications"] == 2

    # Native: fire, update the severity, resolve; then it may fire again.
    fire = native("checkout-latency", severity=0.4, starts_at=1_730_000_000)
    assert ingest(client, fire).status_code == 200
    assert ingest(client, {**fire, "severity": 0.95}).status_code == 200
    row = rows_by_key(db)["native:checkout-latency"]
    assert (row["status"], row["severity"], row["notifications"]) == ("firing", 0.95, 2)
    done = {**fire, "status": "resolved", "ends_at": 1_730_000_600}
    assert ingest(client, done).status_code == 200
    row = rows_by_key(db)["native:checkout-latency"]
    assert (row["status"], row["ends_at"], row["starts_at"]) == (
        "resolved",
        1_730_000_600,
        1_730_000_000,
    )
    with AlertStore(db) as store:
        open_keys = {e.dedup_key for e in store.open_events()}
    assert "native:checkout-latency" not in open_keys
    assert ingest(client, fire).status_code == 200
    assert rows_by_key(db)["native:checkout-latency"]["status"] == "firing"
    assert len(read_store(db)[0]) == len(set(read_store(db)[2]))


def test_a_batch_with_one_bad_alert_is_a_207(fresh):
    client, db = fresh
    batch = [native("good-0"), native("bad-1", severity=7), native("good-2"), "not an object"]
    r = ingest(client, batch)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["received"] == 4 and body["accepted"] == 2
    assert body["keys"] == ["native:good-0", "native:good-2"]
    assert [(x["index"], x["reason"]) for x in body["rejected"]] == [(1, "range"), (3, "shape")]
    assert "severity" in body["rejected"][0]["detail"]
    assert set(rows_by_key(db)) == {"native:good-0", "native:good-2"}


def test_request_errors_are_4xx_json_with_a_detail(fresh):
    client, db = fresh
    # Every alert invalid: 422 listing each.
    detail = assert_json_error(ingest(client, [native("a", severity=-1), {"id": "b"}]), 422)
    assert detail["format"] == "native" and len(detail["rejected"]) == 2
    # Malformed JSON, in several ways.
    for raw in (b"{not json", b"", b'{"a": 1', b"\xff\xfe", b"1" * 5000, b"[" * 100_000):
        assert "malformed JSON" in assert_json_error(ingest(client, raw), 400)
    # Not JSON at all by its content type.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = client.post("/ingest/alerts", content=b"{}", headers={"content-type": content_type})
        assert content_type in assert_json_error(r, 415)
    # Formats: unknown by name, or a shape nothing reads.
    assert "unknown format" in assert_json_error(ingest(client, native("x"), fmt="nagios"), 422)
    assert "NATIVE" in assert_json_error(ingest(client, native("x"), fmt="NATIVE"), 422)
    assert "cannot tell" in assert_json_error(ingest(client, {"hello": "world"}), 422)
    assert "cannot tell" in assert_json_error(ingest(client, 42), 422)
    # Over the body limit (1 MiB), declared or streamed.
    big = json.dumps([native(f"k{i}", summary="x" * 1000) for i in range(1100)]).encode()
    assert "limit" in assert_json_error(ingest(client, big), 413)

    def chunks():
        for _ in range(40):
            yield b" " * 32_768

    r = client.post(
        "/ingest/alerts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "limit" in assert_json_error(r, 413)
    # Wrong methods and paths are JSON too.
    assert_json_error(client.get("/ingest/alerts"), 405)
    assert_json_error(client.post("/ingest/alert", json={}), 404)
    # None of it stored anything.
    assert read_store(db)[1] == 0
    # An empty batch is fine and stores nothing (a bare [] is read as native).
    for payload, fmt in (
        ([], None),
        ([], "native"),
        ([], "pagerduty"),
        ({"version": "4", "alerts": []}, None),
    ):
        empty = ingest(client, payload, fmt=fmt)
        assert empty.status_code == 200, empty.text
        assert empty.json()["accepted"] == empty.json()["received"] == 0
        assert empty.json()["keys"] == [] and empty.json()["last_seq"] is None
    stats = client.get("/ingest/stats").json()
    assert stats["events"] == 0 and stats["alerts"] == 0


def test_lone_surrogates_are_a_client_error(fresh):
    client, db = fresh
    # JSON may escape a lone UTF-16 surrogate; no UTF-8 store or reply can hold it.
    for raw in (
        b'{"id": "\\ud800", "service": "s", "alert_type": "CPU", "severity": 0.5}',
        b'{"id": "x", "service": "\\udfff", "alert_type": "CPU", "severity": 0.5}',
        b'{"\\udc00": 1}',
    ):
        assert "surrogates" in assert_json_error(ingest(client, raw), 400)
    assert read_store(db)[1] == 0
    # An escaped surrogate pair is one character, and fine.
    raw = b'{"id": "\\ud83d\\ude00", "service": "s", "alert_type": "CPU", "severity": 0.5}'
    r = ingest(client, raw)
    assert r.status_code == 200 and r.json()["keys"] == ["native:\U0001f600"]
    assert set(rows_by_key(db)) == {"native:\U0001f600"}


def test_a_pagerduty_acknowledge_keeps_what_the_trigger_said(fresh):
    client, db = fresh
    assert ingest(client, example("pagerduty_trigger")).status_code == 200
    assert ingest(client, example("pagerduty_batch")).status_code == 200  # holds the ack
    row = rows_by_key(db)["pagerduty:edge-router-2/packet-loss"]
    assert row["status"] == "firing"
    assert (row["service"], row["alert_type"], row["severity"]) == ("edge-router", "NETWORK", 0.9)


def test_a_status_only_notification_never_creates_or_reopens_an_alert(fresh):
    client, db = fresh
    ghost = {"event_action": "acknowledge", "dedup_key": "ghost"}
    r = ingest(client, ghost)
    assert r.status_code == 200 and r.json()["unknown"] == ["pagerduty:ghost"], r.text
    assert rows_by_key(db) == {}  # logged as an event, but no alert

    trigger = {
        "event_action": "trigger",
        "dedup_key": "k9",
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    assert ingest(client, trigger).json()["unknown"] == []
    ack = {"event_action": "acknowledge", "dedup_key": "k9"}
    assert ingest(client, ack).json()["unknown"] == []  # k9 is firing: a known key
    assert rows_by_key(db)["pagerduty:k9"]["status"] == "firing"
    assert ingest(client, {"event_action": "resolve", "dedup_key": "k9"}).status_code == 200
    r = ingest(client, ack)
    assert r.status_code == 200 and r.json()["unknown"] == ["pagerduty:k9"]
    row = rows_by_key(db)["pagerduty:k9"]
    assert (row["status"], row["notifications"], row["severity"]) == ("resolved", 3, 0.9)
    with AlertStore(db) as store:
        assert store.open_events() == []
        stats = store.stats()
    assert (stats["alerts"], stats["firing"], stats["unknown"], stats["events"]) == (1, 0, 2, 5)
    assert client.get("/ingest/stats").json()["unknown"] == 2

    # A live session queues none of them, and counts them as unknown when they arrive.
    r = client.post("/env/reset/easy", json={"seed": 0, "options": {"live_alerts": True}})
    session = {"X-Session-Id": r.json()["session_id"]}
    info = client.post("/env/step", json=[], headers=session).json()["info"]
    assert info["external_alerts"]["queued"] == {}
    assert ingest(client, ghost).json()["unknown"] == ["pagerduty:ghost"]
    assert ingest(client, ack).json()["unknown"] == ["pagerduty:k9"]
    external = client.post("/env/step", json=[], headers=session).json()["info"]["external_alerts"]
    assert external["queued"] == {}
    assert external["stats"]["unknown_key"] == 2 and external["stats"]["queued"] == 0


def test_a_non_ascii_token_is_compared_as_utf8(servers):
    token = "sécret-ключ"
    live, _ = servers.start(ingest_token=token)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        utf8 = {"authorization": b"Bearer " + token.encode("utf-8")}
        r = ingest(client, native("accented"), headers=utf8)
        assert r.status_code == 200, r.text
        assert client.get("/ingest/stats", headers=utf8).status_code == 200
        for wrong in (
            b"Bearer " + token.encode("utf-8")[:-1],
            b"Bearer " + "sécret".encode(),  # a prefix of the token
        ):
            assert_json_error(ingest(client, native("x"), headers={"authorization": wrong}), 401)
    latin = "sécret"  # a token Latin-1 can encode: only its UTF-8 bytes are accepted
    live, _ = servers.start(ingest_token=latin)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert_json_error(
            ingest(client, native("y"), headers={"authorization": b"Bearer s\xe9cret"}), 401
        )
        r = ingest(client, native("y"), headers={"authorization": f"Bearer {latin}".encode()})
        assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- 3. auth, no store
def test_a_token_guards_ingestion(servers):
    live, db = servers.start(ingest_token=TOKEN)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        alert = native("guarded")
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": f"Basic {TOKEN}"},
            {"authorization": TOKEN},
            {"authorization": f"Bearer {TOKEN}x"},
            {"authorization": "Bearer"},
        ):
            detail = assert_json_error(ingest(client, alert, headers=headers), 401)
            assert "Bearer" in detail
            assert_json_error(client.get("/ingest/stats", headers=headers), 401)
        # Auth comes before anything else: a bad body without a token is still a 401.
        assert_json_error(ingest(client, b"{oops"), 401)
        assert read_store(db)[1] == 0

        good = {"authorization": f"Bearer {TOKEN}"}
        r = ingest(client, alert, headers=good)
        assert r.status_code == 200 and r.json()["keys"] == ["native:guarded"]
        assert ingest(client, alert, headers={"authorization": f"bearer  {TOKEN}"}).is_success
        stats = client.get("/ingest/stats", headers=good).json()
        assert stats["events"] == 2 and stats["alerts"] == 1
        # The token does not guard the environment.
        assert client.post("/env/reset/easy", json={"seed": 0}).status_code == 200


def test_without_a_store_ingestion_is_a_503(servers):
    live, _ = servers.start(db=None)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert "--db" in assert_json_error_5xx(ingest(client, native("x")), 503)
        assert "--db" in assert_json_error_5xx(client.get("/ingest/stats"), 503)
        r = client.post("/env/reset/easy", json={"seed": 1, "options": {"live_alerts": True}})
        assert "--db" in assert_json_error(r, 422)
        assert client.post("/env/reset/easy", json={"seed": 1}).status_code == 200


def test_the_default_app_has_no_store(servers):
    live = LiveServer(create_server_app())
    servers.live.append(live)
    with httpx.Client(base_url=live.url, timeout=10) as client:
        assert_json_error_5xx(ingest(client, native("x")), 503)


def assert_json_error_5xx(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


# --------------------------------------------------------------------------- 4. metrics
def test_metrics_count_ingested_and_rejected_alerts(servers):
    live, _ = servers.start(ingest_token=TOKEN)
    auth = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=live.url, timeout=10, headers=auth) as client:
        for stem in ("alertmanager_v4_firing", "native_list", "pagerduty_batch", "native_single"):
            assert ingest(client, example(stem)).status_code == 200
        assert ingest(client, example("bad_native_batch_one_bad")).status_code == 207
        assert ingest(client, example("bad_native_missing_fields")).status_code == 422
        assert ingest(client, b"{", fmt="grafana").status_code == 400
        r = client.post("/ingest/alerts", content=b"x", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        assert ingest(client, {}, fmt="nagios").status_code == 422
        assert ingest(client, {"hello": 1}).status_code == 422
        assert ingest(client, example("native_single"), fmt="datadog").status_code == 422
        assert ingest(client, {}, headers={"authorization": "Bearer no"}).status_code == 401
        samples = metric_samples(client)

    def alerts(source: str, fmt: str, status: str) -> float:
        labels = frozenset({"source": source, "format": fmt, "status": status}.items())
        return samples.get(("alert_triage_ingest_alerts_total", labels), 0.0)

    def rejected(fmt: str, reason: str) -> float:
        labels = frozenset({"format": fmt, "reason": reason}.items())
        return samples.get(("alert_triage_ingest_rejected_total", labels), 0.0)

    assert alerts("alertmanager", "alertmanager", "firing") == 2
    assert alerts("alertmanager", "alertmanager", "resolved") == 1
    assert alerts("native", "native", "firing") == 2 + 1 + 2  # list, single, 207 batch
    assert alerts("native", "native", "resolved") == 1
    assert alerts("pagerduty", "pagerduty", "firing") == 2
    total = sum(v for (name, _), v in samples.items() if name == "alert_triage_ingest_alerts_total")
    assert total == 3 + 3 + 2 + 1 + 2

    assert rejected("native", "range") == 1
    assert rejected("native", "missing") == 4
    assert rejected("grafana", "json") == 1
    assert rejected("unknown", "content_type") == 1
    assert rejected("unknown", "unknown_format") == 2  # ?format=nagios, unknown shape
    assert rejected("datadog", "shape") == 1
    assert rejected("unknown", "unauthorized") == 1


# --------------------------------------------------------------------------- 5. crash safety
def _post_batches(
    url: str,
    prefix: str,
    batches: int,
    size: int,
    acked: list[str],
    seqs: list[tuple[int, int]],
    errors: list[BaseException],
    lock: threading.Lock,
    stop: threading.Event | None = None,
) -> None:
    """Post ``batches`` batches of ``size`` distinct native alerts; record the
    keys of every acknowledged (200/207) response. Stops at the first failure."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for b in range(batches):
            if stop is not None and stop.is_set():
                return
            batch = [native(f"{prefix}-{b}-{i}", severity=(i % 10) / 10) for i in range(size)]
            try:
                r = ingest(client, batch)
            except httpx.HTTPError as exc:
                with lock:
                    errors.append(exc)
                return
            if r.status_code not in (200, 207):
                with lock:
                    errors.append(AssertionError(f"{r.status_code}: {r.text}"))
                return
            body = r.json()
            with lock:
                acked.extend(body["keys"])
                seqs.append((body["last_seq"], body["accepted"]))


def test_acknowledged_alerts_survive_a_sigkill(tmp_path):
    db = tmp_path / "alerts.db"
    threads_n, batches, size = 2, 40, 20
    acked: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    server = ServeProcess(db, tmp_path / "serve-1.log")
    try:
        threads = [
            threading.Thread(
                target=_post_batches,
                args=(server.url, f"crash{t}", batches, size, acked, [], errors, lock),
            )
            for t in range(threads_n)
        ]
        for t in threads:
            t.start()
        wait_until(
            lambda: len(acked) >= threads_n * batches * size // 4 or errors,
            timeout=60,
            interval=0.002,
            what="a quarter of the batches to be acknowledged",
        )
        server.kill()  # SIGKILL, with requests in flight
        for t in threads:
            t.join(timeout=60)
    finally:
        server.kill()
    assert server.proc.returncode == -9
    assert not [e for e in errors if not isinstance(e, httpx.HTTPError)], errors
    acknowledged = set(acked)
    assert len(acknowledged) == len(acked) > 0
    assert len(acked) < threads_n * batches * size, "the kill came after every batch"
    assert errors, "no request failed: the server died idle"

    # The file is a sound database, and every acknowledged alert is in it.
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        n_events, n_keys = raw.execute(
            "SELECT COUNT(*), COUNT(DISTINCT dedup_key) FROM events"
        ).fetchone()
    raw.close()
    stored = set(rows_by_key(db))
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged alerts lost"
    # Whole batches only: a batch is one transaction.
    assert n_events == n_keys == len(stored) and n_events % size == 0

    # The server comes back on the same store and carries on.
    again = ServeProcess(db, tmp_path / "serve-2.log")
    with again, httpx.Client(base_url=again.url, timeout=30) as client:
        stats = client.get("/ingest/stats").json()
        assert stats["events"] == n_events and stats["alerts"] == len(stored)
        assert stats["by_source"] == {"native": {"events": n_events, "alerts": n_events}}
        r = ingest(client, [native("after-restart"), native(sorted(acknowledged)[0][7:])])
        assert r.status_code == 200, r.text
        assert r.json()["last_seq"] == n_events + 2
        stats = client.get("/ingest/stats").json()
        assert stats["events"] == n_events + 2 and stats["alerts"] == len(stored) + 1
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()


# --------------------------------------------------------------------------- 6. concurrency
def test_concurrent_clients_lose_and_duplicate_nothing(fresh):
    client, db = fresh
    url = str(client.base_url).rstrip("/")
    threads_n, batches, size = 8, 15, 10
    acked: list[str] = []
    seqs: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        _post_batches(url, f"conc{t}", batches, size, acked, seqs, errors, lock)
        # Then its first batch again: updates, not new alerts.
        _post_batches(url, f"conc{t}", 1, size, acked, seqs, errors, lock)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(acked) == threads_n * (batches + 1) * size
    alerts, n_events, per_key = read_store(db)
    assert n_events == len(acked)
    assert len(alerts) == len(set(acked)) == threads_n * batches * size
    assert per_key == Counter(acked)
    # Every batch got a contiguous run of sequence numbers: one transaction each.
    covered = sorted(s for last, n in seqs for s in range(last - n + 1, last + 1))
    assert covered == list(range(1, n_events + 1))
    stats = client.get("/ingest/stats").json()
    assert stats["events"] == n_events and stats["alerts"] == len(alerts)


# --------------------------------------------------------------------------- 7. fuzzing
@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    live = LiveServer(create_server_app(db_path=str(db), results_path=None))
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client
    live.stop()


def _all_examples() -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]


# Any text, lone surrogates included.
_text = st.text(st.characters(exclude_categories=()), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
wrong_values = st.sampled_from(
    [
        *(None, True, False, -1, 2, 1.5, -0.0, 1e308, -1e308, 10**30, "", " ", "x" * 500),
        *([], {}, [None], {"a": {}}, "critical", "resolved", "NaN", "0001-01-01T00:00:00Z"),
        *("2024-13-45T99:99:99Z", "1e400", "-5", "99999999999999999999", "9999-12-31T23:59:60Z"),
    ]
).map(copy.deepcopy) | st.floats(allow_nan=True, allow_infinity=True)  # fresh containers


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def near_format_payloads(draw) -> Any:
    """An example payload with a few keys dropped or values replaced by
    values of the wrong type or out of range."""
    payload = copy.deepcopy(draw(st.sampled_from(_all_examples())))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(payload) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["drop", "wrong", "random", "duplicate"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "wrong":
            parent[path[-1]] = draw(wrong_values)
        elif action == "random":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return payload


bodies = (
    json_values.map(lambda v: ("json", v))
    | near_format_payloads().map(lambda v: ("json", v))
    | st.lists(near_format_payloads(), max_size=3).map(lambda v: ("json", v))
    | st.binary(max_size=64).map(lambda v: ("raw", v))
)
formats = st.sampled_from(
    [None, *FORMATS, "", "NATIVE", " native", "nagios", "%00", "\x00", "a" * 300]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.api+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        None,
    ]
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(body=bodies, fmt=formats, content_type=content_types)
def test_fuzzed_bodies_never_get_a_5xx(fuzz_client, body, fmt, content_type):
    kind, value = body
    content = value if kind == "raw" else json.dumps(value).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    params = None if fmt is None else {"format": fmt}
    r = fuzz_client.post("/ingest/alerts", content=content, headers=headers, params=params)
    assert r.status_code < 500, (r.status_code, r.text)
    assert r.status_code in (200, 207, 400, 415, 422), r.text
    if r.status_code >= 400:
        assert_json_error(r)
        return
    result = r.json()
    assert result["accepted"] == len(result["keys"]) == result["received"] - len(result["rejected"])
    assert (r.status_code == 207) == bool(result["rejected"])
    assert result["format"] in FORMATS


# --------------------------------------------------------------------------- 8. live sessions
def test_live_sessions_see_ingested_alerts_over_http(fresh):
    client, _ = fresh
    r = client.post("/env/reset/hard", json={"seed": 1, "options": {"live_alerts": True}})
    assert r.status_code == 200, r.text
    live_session = r.json()["session_id"]
    plain_session = client.post("/env/reset/hard", json={"seed": 1}).json()["session_id"]

    alert = {
        "id": "live-1",
        "service": "payments",
        "alert_type": "SECURITY",
        "severity": 0.9,
        "confidence": 0.95,
    }
    r = ingest(client, alert)
    assert r.status_code == 200 and r.json()["keys"] == ["native:live-1"]

    step = client.post("/env/step", json=[], headers={"X-Session-Id": live_session})
    assert step.status_code == 200, step.text
    body = step.json()
    external = body["info"]["external_alerts"]
    assert list(external["queued"].values()) == ["native:live-1"]
    (alert_id,) = external["queued"]
    assert external["stats"]["queued"] == 1
    shown = {a["id"]: a for a in body["observation"]["alerts"]}
    assert alert_id in shown
    assert shown[alert_id]["alert_type"] == "SECURITY"
    assert shown[alert_id]["visible_severity"] == pytest.approx(0.9)

    plain = client.post("/env/step", json=[], headers={"X-Session-Id": plain_session}).json()
    assert "external_alerts" not in plain["info"]
    assert alert_id not in {a["id"] for a in plain["observation"]["alerts"]}

    # A resolve from the sender takes a queued alert off the queue.
    other = {**alert, "id": "live-2", "service": "search", "alert_type": "DISK", "severity": 0.3}
    assert ingest(client, other).status_code == 200
    body = client.post("/env/step", json=[], headers={"X-Session-Id": live_session}).json()
    queued = {v: k for k, v in body["info"]["external_alerts"]["queued"].items()}
    assert set(queued) == {"native:live-1", "native:live-2"}
    assert queued["native:live-2"] in {a["id"] for a in body["observation"]["alerts"]}
    assert ingest(client, {**other, "status": "resolved"}).status_code == 200
    body = client.post("/env/step", json=[], headers={"X-Session-Id": live_session}).json()
    external = body["info"]["external_alerts"]
    assert list(external["queued"].values()) == ["native:live-1"]
    assert external["stats"]["withdrawn"] == 1
    assert queued["native:live-2"] not in {a["id"] for a in body["observation"]["alerts"]}

    # The agent decides a real alert like any other; the feed then forgets it.
    decision = [{"alert_id": alert_id, "action_type": "ESCALATE"}]
    r = client.post("/env/step", json=decision, headers={"X-Session-Id": live_session})
    assert r.status_code == 200, r.text
    assert [p["alert_id"] for p in r.json()["info"]["processed_alerts"]] == [alert_id]
    assert r.json()["info"]["external_alerts"]["queued"] == {}

    # Bad options are refused.
    for options in ({"live_alerts": "yes"}, {"live": True}, ["live_alerts"]):
        r = client.post("/env/reset/hard", json={"seed": 1, "options": options})
        assert_json_error(r, 422)


def test_openenv_http_sessions_see_ingested_alerts(fresh):
    client, _ = fresh
    r = client.post("/reset", json={"task_id": "hard", "seed": 1, "options": {"live_alerts": True}})
    assert r.status_code == 200, r.text  # OpenEnv's /reset passes the options through
    alert = {
        "id": "live-openenv",
        "service": "payments",
        "alert_type": "SECURITY",
        "severity": 0.9,
        "confidence": 0.95,
    }
    assert ingest(client, alert).status_code == 200
    r = client.post("/step", json={"action": {"decisions": []}})
    assert r.status_code == 200, r.text
    body = r.json()
    external = body["observation"]["metadata"]["external_alerts"]
    assert list(external["queued"].values()) == ["native:live-openenv"]
    (alert_id,) = external["queued"]
    assert alert_id in {a["id"] for a in body["observation"]["alerts"]}

    # Without the option: nothing external.
    assert client.post("/reset", json={"task_id": "hard", "seed": 1}).status_code == 200
    assert ingest(client, {**alert, "id": "live-openenv-2"}).status_code == 200
    body = client.post("/step", json={"action": {"decisions": []}}).json()
    assert "external_alerts" not in body["observation"].get("metadata", {})
    assert "external_alerts" not in (body.get("metadata") or {})

    # Fields reach the environment (not dropped by OpenEnv): bad ones are refused.
    r = client.post("/reset", json={"task_id": "hard", "options": {"live_alerts": 1}})
    assert "live_alerts" in assert_json_error(r, 422)
    assert "bogus" in assert_json_error(client.post("/reset", json={"bogus": 1}), 422)
