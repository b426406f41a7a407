"""Real alerts in episodes: injection semantics, trace replay (deterministic and
graded), live feeds from a real SQLite store, and the replay / ingest-stats
commands."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_alert_triage.agents import OracleAgent, RuleBasedAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.evaluation import play_episode
from adaptive_alert_triage.ingest import AlertEvent
from adaptive_alert_triage.ingest.feed import LiveFeed, Trace, load_trace, service_index
from adaptive_alert_triage.ingest.store import AlertStore
from adaptive_alert_triage.models import Action
from adaptive_alert_triage.multiagent import parallel_env
from adaptive_alert_triage.sim import external
from adaptive_alert_triage.sim.config import ALERT_TYPES, get_task
from adaptive_alert_triage.sim.engine import SLOT_FEATURES
from adaptive_alert_triage.sim.fast import available as numba_available
from adaptive_alert_triage.sim.incidents import N_TYPES
from adaptive_alert_triage.sim.topology import service_names

T0 = 1_700_000_000.0


def storm(n_keys: int = 24, seed: int = 7) -> list[dict]:
    """A recorded storm in the project's alert JSON: bursts on a few services,
    repeats of the same alerts, and resolutions."""
    rng = np.random.default_rng(seed)
    records = []
    for k in range(n_keys):
        start = T0 + 30.0 * k + float(rng.integers(0, 20))
        record = {
            "id": f"alert-{k}",
            "service": ["payments", "checkout", "db-primary", "edge", "auth"][k % 5],
            "alert_type": ALERT_TYPES[int(rng.integers(0, len(ALERT_TYPES)))],
            "severity": round(float(rng.uniform(0.2, 1.0)), 3),
            "confidence": round(float(rng.uniform(0.3, 1.0)), 3),
            "starts_at": start,
        }
        records.append(record)
        if k % 4 == 0:  # a repeat notification of the same alert
            records.append({**record, "time": start + 45.0, "severity": 0.95})
        if k % 6 == 0:  # the sender resolves it later
            records.append({**record, "status": "resolved", "ends_at": start + 200.0})
    return records


def play(env, agent, seed: int) -> tuple[dict, list]:
    """An episode's record plus every observation and reward along the way."""
    trail = []
    original_step = env.step

    def step(action):
        result = original_step(action)
        trail.append((result[0].model_dump(), result[1].value))
        return result

    env.step = step
    try:
        record = play_episode(env, agent, seed)
    finally:
        env.step = original_step
    return record, trail


# ---------------------------------------------------------------------- replay
def test_trace_replays_into_the_same_episode_twice():
    trace = storm()
    runs = []
    for _ in range(2):
        env = AdaptiveAlertTriageEnv("hard", scenario={"trace": trace})
        runs.append(play(env, RuleBasedAgent(), seed=5))
    assert runs[0] == runs[1]
    record, trail = runs[0]
    assert len(trail) == record["steps"] > 0


def test_replay_is_the_same_on_both_backends():
    if not numba_available():
        pytest.fail("numba is part of the [dev] extra; install it")
    trace = storm()
    runs = []
    for backend in ("numpy", "numba"):
        env = AdaptiveAlertTriageEnv("hard", scenario={"trace": trace}, backend=backend)
        oracle = OracleAgent()
        oracle.bind(env)
        runs.append(play(env, oracle, 3))
    assert runs[0] == runs[1]


def test_replayed_episode_is_graded_like_any_other():
    trace = storm(40)
    env = AdaptiveAlertTriageEnv("hard", scenario={"trace": trace})
    agent = OracleAgent()
    agent.bind(env)
    oracle = play_episode(env, agent, 0)
    metrics = env.grader.metrics()
    assert metrics["incidents_seen"] > 0  # the trace's incidents reach the grader
    rule = play_episode(env, RuleBasedAgent(), 0)
    ignore_all = play_episode(env, _Always("IGNORE"), 0)
    for record in (oracle, rule, ignore_all):
        assert 0.0 <= record["score"] <= 1.0
    assert oracle["score"] >= rule["score"]
    assert oracle["score"] > ignore_all["score"]


class _Always:
    def __init__(self, verb: str) -> None:
        self.verb = verb

    def act(self, observation):
        return Action(alert_id=observation.alerts[0].id, action_type=self.verb)


def test_every_trace_alert_is_queued_or_reported():
    trace = storm(30)
    firing_keys = {f"native:{r['id']}" for r in trace}
    # Nobody acts, so a high failure threshold keeps the episode to its end.
    env = AdaptiveAlertTriageEnv("hard", scenario={"trace": trace}, failure_threshold=1000)
    env.reset(seed=1)
    seen: set[str] = set(env.team.feed.ids)
    done = False
    while not done:
        _, _, done, info = env.step([])
        seen |= set(info["external_alerts"]["queued"].values())
    stats = env.team.feed.stats
    assert stats["dropped"] == 0
    assert seen | set(env.team.feed.ids) == firing_keys
    assert stats["queued"] == len(firing_keys)
    assert stats["updated"] >= 1 and stats["withdrawn"] >= 1


def test_without_synthetic_processes_every_incident_comes_from_the_trace():
    trace = storm(10)
    env = AdaptiveAlertTriageEnv("medium", scenario={"trace": trace}, ensure_nonempty_queue=False)
    env.reset(seed=0)
    opened = set()  # incidents the trace's alerts opened (their first alerts)
    groups = set()  # correlation groups of every real alert queued
    done = False
    while not done:
        first = env.team.last_injection.incidents[:, 1]
        opened |= set(first[first >= 0].tolist())
        groups |= {r["group"] for r in env.sim.queue_records(0) if not r["is_noise"]}
        done = env.step([])[2]
    assert int(env.sim.noise_total[0]) == 0  # no synthetic false positives
    assert opened and groups <= opened | {-1}  # roots from the trace, cascades in their groups
    # With the synthetic processes on, there are more.
    mixed = AdaptiveAlertTriageEnv("medium", scenario={"trace": trace, "trace_synthetic": True})
    mixed.reset(seed=0)
    while not mixed.step([])[2]:
        pass
    assert int(mixed.sim.alerts_total[0]) > mixed.team.feed.stats["queued"]


def test_trace_spreads_over_the_episode_and_respects_step_seconds():
    events = [
        (T0 + 60.0 * i, AlertEvent("native", f"native:{i}", "firing", "a", "CPU", 0.5))
        for i in range(10)
    ]
    fitted = Trace(events, max_steps=30)
    assert min(fitted.schedule) == 0 and max(fitted.schedule) == 29
    assert fitted.beyond == 0
    fixed = Trace(events, max_steps=30, step_seconds=120.0)
    assert sorted(fixed.schedule) == [0, 1, 2, 3, 4]
    short = Trace(events, max_steps=3, step_seconds=60.0)
    assert short.beyond == 7 and len(short.at(2)) == 8  # late ones arrive on the last step


def test_trace_from_a_store_file_and_mapping(tmp_path):
    db = tmp_path / "alerts.db"
    with AlertStore(db) as store:
        store.add(
            [
                AlertEvent(
                    "alertmanager", f"alertmanager:{i}", "firing", "api", "CPU", 0.8, None, T0 + i
                )
                for i in range(5)
            ],
            "alertmanager",
        )
        store.add(
            [AlertEvent("pagerduty", "pagerduty:x", "firing", "db", "DISK", 0.9)], "pagerduty"
        )
    assert load_trace(str(db), 30).n_events == 6
    assert load_trace({"db": db, "source": "alertmanager"}, 30).n_events == 5
    env = AdaptiveAlertTriageEnv("hard", scenario={"trace": {"db": str(db)}})
    record = play_episode(env, RuleBasedAgent(), 0)
    assert 0.0 <= record["score"] <= 1.0
    jsonl = tmp_path / "trace.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in storm(5)))
    assert load_trace(jsonl, 30).n_events == len(storm(5))


@pytest.mark.parametrize(
    ("scenario", "error", "match"),
    [
        ({"trace": []}, ValueError, "empty"),
        (
            {"trace": [{"id": "a", "service": "x", "alert_type": "CPU", "severity": 0.5}]},
            ValueError,
            "no time",
        ),
        (
            {"trace": [{"id": "a", "service": "x", "alert_type": "CPU", "severity": 2, "time": 1}]},
            ValueError,
            "trace alert 0",
        ),
        ({"trace": ["nope"]}, ValueError, "JSON object"),
        ({"trace": "missing.json"}, ValueError, "does not exist"),
        ({"trace": 42}, TypeError, "trace must be"),
        ({"trace": {"path": "x"}}, ValueError, "'db'"),
        ({"trace_step_seconds": 5}, ValueError, "needs a 'trace'"),
        ({"trace": storm(2), "trace_synthetic": "yes"}, TypeError, "trace_synthetic"),
        ({"trace": storm(2), "trace_step_seconds": -1}, ValueError, "trace_step_seconds"),
    ],
)
def test_bad_traces_say_what_is_wrong(scenario, error, match):
    with pytest.raises(error, match=match):
        AdaptiveAlertTriageEnv("hard", scenario=scenario)


# ---------------------------------------------------------------------- injection
def _fresh(task: str = "hard", seed: int = 0, **overrides):
    env = AdaptiveAlertTriageEnv(
        task, base_incident_rate=0.0, noise_rate=0.0, ensure_nonempty_queue=False, **overrides
    )
    env.reset(seed=seed)
    return env


def test_real_alert_on_a_healthy_service_opens_an_incident_that_can_fail_it():
    env = _fresh(failure_threshold=10, cascade_prob=0.0)
    sim = env.sim
    s = 2
    alert = external.ExternalAlert(s, 0, 0.9, 0.9, is_noise=False, true_severity=0.95)
    injection = external.inject(sim, 0, [alert])
    assert injection.counters[0] >= 0 and sim.inc_active[0, s] and sim.inc_critical[0, s]
    assert injection.incidents[s, 1] == sim.inc_uid[0, s]
    failed = False
    for _ in range(12):
        _, _, done, info = env.step([])
        failed |= info["failures_this_step"] > 0
        if done:
            break
    assert failed  # neglected, it fails its service like any critical incident


@pytest.mark.parametrize(
    ("field", "value"), [("service", 2.5), ("alert_type", 1.0), ("age", 3.5), ("age", True)]
)
def test_an_injected_alert_with_a_field_that_is_not_a_whole_number_is_refused(field, value):
    env = _fresh()
    alert = dataclasses.replace(
        external.ExternalAlert(2, 1, 0.5, 0.9, False, 0.5), **{field: value}
    )
    before = env.sim.alerts.copy()
    with pytest.raises(TypeError, match=f"{field} must be an int, got {value!r}"):
        external.inject(env.sim, 0, [alert])
    assert np.array_equal(env.sim.alerts, before)  # nothing queued


@pytest.mark.parametrize("age", [0, 7, 50, 400])
def test_an_injected_alerts_age_is_observed_alike_on_both_backends(age):
    """An injected alert can be older than an episode (its age counts from
    before it arrived): both backends observe its age as the reference's
    capped quotient, below the cap and at it."""
    observed = []
    for backend in ("numpy", "numba"):
        env = parallel_env(
            "hard",
            backend=backend,
            base_incident_rate=0.0,
            noise_rate=0.0,
            ensure_nonempty_queue=False,
        )
        env.reset(seed=3)
        external.inject(env.sim, 0, [external.ExternalAlert(4, 2, 0.5, 0.9, True, 0.0, age=age)])
        observed.append(env.sim.observe(team=True)[0, 0])
    assert np.array_equal(observed[0], observed[1])
    age_feature = 3 + N_TYPES  # of slot 0, which holds the alert
    assert observed[1][0] == 1.0 and observed[1][SLOT_FEATURES] == 0.0
    assert observed[1][age_feature] == np.float32(min(age / get_task("hard").max_steps, 1.0))


def test_real_alert_joins_the_open_incident_of_its_service():
    env = _fresh()
    sim = env.sim
    first = external.inject(sim, 0, [external.ExternalAlert(4, 1, 0.5, 0.9, False, 0.5)])
    second = external.inject(sim, 0, [external.ExternalAlert(4, 2, 0.8, 0.9, False, 0.9)])
    rows = sim.queue_records(0)
    assert [r["incident"] for r in rows] == [rows[0]["incident"]] * 2
    assert rows[1]["true_severity"] == rows[0]["true_severity"] == 0.5
    assert first.incidents[4, 1] >= 0 and second.incidents[4, 1] == -1  # counted once


def test_noise_alert_is_a_false_positive_and_ignoring_it_is_credited():
    env = _fresh()
    external.inject(env.sim, 0, [external.ExternalAlert(1, 0, 0.8, 0.3, True, 0.0)])
    obs = env.team.sim.queue_records(0)
    assert obs[0]["is_noise"]
    env._observation()  # what the decision maker sees now (injected behind its back)
    _, reward, _, info = env.step(Action(alert_id=obs[0]["id"], action_type="IGNORE"))
    assert info["processed_alerts"][0]["outcome"] == "false_positive_ignored"
    assert reward.components["false_positive_ignored"] > 0


def test_a_full_queue_reports_dropped_real_alerts():
    env = _fresh(queue_capacity=12, n_slots=10)
    alerts = [external.ExternalAlert(i % 5, 0, 0.5, 0.9, False, 0.5) for i in range(15)]
    injection = external.inject(env.sim, 0, alerts)
    assert injection.dropped == 3
    assert sum(c >= 0 for c in injection.counters) == 12


def test_update_and_withdraw_keep_the_queue_in_arrival_order():
    env = _fresh()
    sim = env.sim
    inj = external.inject(
        sim, 0, [external.ExternalAlert(i, 0, 0.3, 0.9, True, 0.0) for i in range(4)]
    )
    assert external.update(sim, 0, inj.counters[1], 0.99)
    assert external.withdraw(sim, 0, inj.counters[0])
    rows = sim.queue_records(0)
    assert [r["service"] for r in rows] == [1, 2, 3]
    assert rows[0]["visible_severity"] == 0.99
    assert not external.withdraw(sim, 0, inj.counters[0])  # already gone


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("service", 99, "service"),
        ("alert_type", 6, "alert_type"),
        ("confidence", 1.5, "confidence"),
    ],
)
def test_bad_external_alerts_are_rejected(field, value, match):
    env = _fresh()
    kwargs = dict(
        service=0,
        alert_type=0,
        visible_severity=0.5,
        confidence=0.5,
        is_noise=False,
        true_severity=0.5,
    )
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        external.inject(env.sim, 0, [external.ExternalAlert(**kwargs)])


@settings(max_examples=60, deadline=None)
@given(
    key=st.text(min_size=1, max_size=20),
    seed=st.integers(0, 2**63 - 1),
    severity=st.floats(0, 1),
    confidence=st.none() | st.floats(0, 1),
)
def test_synthetic_truth_is_a_function_of_episode_and_key(key, seed, severity, confidence):
    a = external.draw_truth(key, seed, severity, confidence, 0.15)
    b = external.draw_truth(key, seed, severity, confidence, 0.15)
    assert a == b
    is_noise, true, conf = a
    assert 0.0 <= true <= 1.0 and 0.0 <= conf <= 1.0
    assert (true == 0.0) == is_noise or (not is_noise and true >= 0.05)


def test_synthetic_truth_follows_confidence():
    noisy = [external.draw_truth(f"k{i}", 1, 0.5, 0.1, 0.15)[0] for i in range(400)]
    sure = [external.draw_truth(f"k{i}", 1, 0.5, 0.95, 0.15)[0] for i in range(400)]
    assert np.mean(noisy) > 0.8 and np.mean(sure) < 0.15


def test_service_names_map_stably():
    names = service_names(12)
    assert service_index(names[3], 12) == 3
    assert service_index("payments", 12) == service_index("payments", 12)
    assert 0 <= service_index("payments", 12) < 12


# ---------------------------------------------------------------------- live
def test_live_session_sees_alerts_stored_while_it_runs(tmp_path):
    with AlertStore(tmp_path / "live.db") as store:
        store.add([AlertEvent("native", "native:old", "firing", "edge", "NETWORK", 0.7)], "native")
        store.add([AlertEvent("native", "native:gone", "resolved", "edge", "CPU", 0.7)], "native")
        env = AdaptiveAlertTriageEnv("hard", live_source=LiveFeed(store))
        obs = env.reset(seed=2, options={"live_alerts": True})
        ids = {a.id for a in obs.alerts}
        assert env.team.feed.ids["native:old"] in ids  # what is firing at reset
        assert "native:gone" not in env.team.feed.ids
        store.add([AlertEvent("native", "native:new", "firing", "db", "DISK", 0.9, 0.9)], "native")
        obs, _, _, info = env.step([])
        new_id = env.team.feed.ids["native:new"]
        assert info["external_alerts"]["queued"][new_id] == "native:new"
        assert new_id in {a.id for a in obs.alerts} or new_id in {
            r["id"] for r in env.sim.queue_records(0)
        }
        store.add([AlertEvent("native", "native:new", "resolved", "db", "DISK", 0.9)], "native")
        _, _, _, info = env.step([])
        assert "native:new" not in info["external_alerts"]["queued"].values()
        # Without the option, the same env is a plain episode.
        env.reset(seed=2)
        assert env.team.feed is None
        assert "external_alerts" not in env.step([])[3]


def test_live_option_needs_a_source_and_a_bool():
    env = AdaptiveAlertTriageEnv("easy")
    with pytest.raises(ValueError, match="live_source"):
        env.reset(options={"live_alerts": True})
    with pytest.raises(TypeError, match="live_alerts"):
        env.reset(options={"live_alerts": "yes"})
    with pytest.raises(ValueError, match="live_alerts"):
        env.reset(options={"other": 1})
    with pytest.raises(TypeError, match="live_source"):
        AdaptiveAlertTriageEnv("easy", live_source=object())


def test_pettingzoo_env_replays_a_trace():
    trace = storm()
    outs = []
    for _ in range(2):
        env = parallel_env("hard", scenario={"trace": trace})
        obs, _ = env.reset(seed=4)
        steps = [obs]
        while env.agents:
            obs, rewards, *_ = env.step(dict.fromkeys(env.agents, 0))
            steps.append((obs, rewards))
        outs.append(steps)
    flat = [json.dumps(s, default=lambda a: a.tolist()) for s in outs]
    assert flat[0] == flat[1]


# ---------------------------------------------------------------------- commands
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "adaptive_alert_triage.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_replay_and_ingest_stats_commands(tmp_path):
    db = tmp_path / "storm.db"
    with AlertStore(db) as store:
        for i, record in enumerate(storm(20)):
            event = AlertEvent(
                "native",
                f"native:{record['id']}",
                record.get("status", "firing"),
                record["service"],
                record["alert_type"],
                record["severity"],
                record["confidence"],
                record["starts_at"],
                record.get("ends_at"),
            )
            store.add([event], "native", received_at=T0 + i)
    first = _cli(
        "replay",
        "--db",
        str(db),
        "--task",
        "hard",
        "--agents",
        "rule,oracle",
        "--json",
        str(tmp_path / "r.json"),
    )
    second = _cli("replay", "--db", str(db), "--task", "hard", "--agents", "rule,oracle")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:3] == second.stdout.splitlines()[:3]  # deterministic
    assert "score" in first.stdout
    payload = json.loads((tmp_path / "r.json").read_text())
    assert 0.0 <= payload["agents"]["rule"]["episodes"][0]["score"] <= 1.0
    stats = _cli("ingest-stats", "--db", str(db), "--json")
    assert stats.returncode == 0, stats.stderr
    summary = json.loads(stats.stdout)
    assert summary["alerts"] == 20 and summary["events"] == len(storm(20))
    assert summary["resolved"] == 4
    text = _cli("ingest-stats", "--db", str(db))
    assert "20 alerts" in text.stdout
    missing = _cli("replay", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    empty = tmp_path / "empty.db"
    AlertStore(empty).close()
    nothing = _cli("replay", "--db", str(empty))
    assert nothing.returncode == 2 and "no alerts" in nothing.stderr


def test_an_acknowledgement_changes_nothing_and_needs_a_known_key():
    trigger = {"id": "k", "service": "edge", "alert_type": "NETWORK", "severity": 0.9, "time": T0}
    ack = AlertEvent(
        "native", "native:k", "firing", "unknown", "APPLICATION", 0.5, None, T0, status_only=True
    )
    stranger = AlertEvent(
        "native", "native:z", "firing", "unknown", "APPLICATION", 0.5, None, T0, status_only=True
    )
    env = AdaptiveAlertTriageEnv("hard", scenario={"trace": [trigger]})
    env.reset(seed=0)
    feed = env.team.feed
    before = {r["id"]: r["visible_severity"] for r in env.sim.queue_records(0)}
    feed.apply([ack, stranger])
    after = {r["id"]: r["visible_severity"] for r in env.sim.queue_records(0)}
    assert before == after
    assert feed.stats["renotified"] == 1 and feed.stats["unknown_key"] == 1


def test_a_status_only_notification_keeps_the_stored_alert(tmp_path):
    with AlertStore(tmp_path / "a.db") as store:
        store.add(
            [AlertEvent("pagerduty", "pagerduty:k", "firing", "edge", "NETWORK", 0.9)], "pagerduty"
        )
        store.add(
            [
                AlertEvent(
                    "pagerduty",
                    "pagerduty:k",
                    "resolved",
                    "unknown",
                    "APPLICATION",
                    0.5,
                    status_only=True,
                )
            ],
            "pagerduty",
        )
        (row,) = store.alerts()
        assert (row["status"], row["service"], row["alert_type"], row["severity"]) == (
            "resolved",
            "edge",
            "NETWORK",
            0.9,
        )
        assert row["notifications"] == 2
        assert [e.event.status_only for e in store.events()] == [False, True]


def test_faces_without_a_feed_refuse_a_trace_clearly():
    from adaptive_alert_triage.gym_env import AlertTriageGymEnv

    with pytest.raises(TypeError, match="trace scenario is played by"):
        AlertTriageGymEnv("hard", scenario={"trace": storm(2)})


def _status_only(key: str, status: str) -> AlertEvent:
    return AlertEvent(
        "pagerduty", key, status, "unknown", "APPLICATION", 0.5, None, status_only=True
    )


def test_a_status_only_notification_never_creates_or_reopens_a_stored_alert(tmp_path):
    with AlertStore(tmp_path / "a.db") as store:
        assert store.record([_status_only("pagerduty:ghost", "firing")], "pagerduty").unknown == [
            "pagerduty:ghost"
        ]
        trigger = AlertEvent("pagerduty", "pagerduty:k9", "firing", "edge", "NETWORK", 0.9)
        done = store.record(
            [
                trigger,
                _status_only("pagerduty:k9", "firing"),  # acknowledged while firing: known
                _status_only("pagerduty:k9", "resolved"),  # resolved: closes it
                _status_only("pagerduty:k9", "firing"),  # acknowledged after: reopens nothing
                _status_only("pagerduty:k9", "resolved"),  # resolved again: nothing to close
            ],
            "pagerduty",
        )
        assert done.seqs == [2, 3, 4, 5, 6]
        assert done.unknown == ["pagerduty:k9", "pagerduty:k9"]
        (row,) = store.alerts()
        assert (row["dedup_key"], row["status"], row["notifications"]) == (
            "pagerduty:k9",
            "resolved",
            3,
        )
        assert store.open_events() == []
        stats = store.stats()
        assert (stats["alerts"], stats["firing"], stats["unknown"], stats["events"]) == (1, 0, 3, 6)
        # A full notification fires it again, as a new alert would.
        store.add([trigger], "pagerduty")
        assert [e.dedup_key for e in store.open_events()] == ["pagerduty:k9"]


def test_open_events_ignore_rows_an_older_store_made_from_status_only_notifications(tmp_path):
    path = tmp_path / "old.db"
    with AlertStore(path) as store:
        store.add([AlertEvent("native", "native:real", "firing", "edge", "CPU", 0.7)], "native")
        store.add([AlertEvent("native", "native:k", "firing", "edge", "CPU", 0.7)], "native")
        store.add([AlertEvent("native", "native:k", "resolved", "edge", "CPU", 0.7)], "native")
        store.add([_status_only("pagerduty:ghost", "firing")], "pagerduty")
        store.add([_status_only("native:k", "firing")], "native")
    # What the store wrote before it refused them: a phantom row, a reopened one.
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO alerts SELECT dedup_key, source, format, 'firing', service, alert_type, "
            "severity, confidence, starts_at, ends_at, summary, labels, 0, 0, 1 FROM events "
            "WHERE dedup_key = 'pagerduty:ghost'"
        )
        db.execute("UPDATE alerts SET status = 'firing' WHERE dedup_key = 'native:k'")
    with AlertStore(path) as store:
        assert len(store.alerts(status="firing")) == 3
        assert [e.dedup_key for e in store.open_events()] == ["native:real"]
        env = AdaptiveAlertTriageEnv("easy", live_source=LiveFeed(store))
        env.reset(seed=0, options={"live_alerts": True})
        assert set(env.team.feed.queued) == {"native:real"}


def test_an_alert_dropped_on_a_full_queue_is_queued_when_re_sent_with_room(tmp_path):
    def firing(i: int) -> AlertEvent:
        return AlertEvent("native", f"native:k{i}", "firing", "edge", "CPU", 0.5, 0.9)

    with AlertStore(tmp_path / "flood.db") as store:
        env = AdaptiveAlertTriageEnv("easy", live_source=LiveFeed(store))
        env.reset(seed=0, options={"live_alerts": True})
        feed, sim = env.team.feed, env.sim
        capacity = sim.config.queue_capacity
        store.add([firing(i) for i in range(100)], "native")
        env.step([])
        stats = feed.stats
        assert (stats["queued"], stats["dropped"]) == (61, 39)  # the queue is full
        assert int(sim.queue_length[0]) == capacity
        dropped = [i for i in range(100) if f"native:k{i}" not in feed.queued]

        # The team clears the queue: the sender resolves every queued alert.
        queued = [i for i in range(100) if f"native:k{i}" in feed.queued]
        store.add([dataclasses.replace(firing(i), status="resolved") for i in queued], "native")
        env.step([])
        assert feed.queued == {} and int(sim.queue_length[0]) < capacity - 30

        # The dropped alerts are still firing: re-sent, they are queued now.
        store.add([firing(i) for i in dropped[:30]], "native")
        _, _, _, info = env.step([])
        assert set(feed.queued) == {f"native:k{i}" for i in dropped[:30]}
        assert set(info["external_alerts"]["queued"].values()) == set(feed.queued)
        assert (stats["queued"], stats["dropped"], stats["renotified"]) == (91, 39, 0)

        # With no room, a re-sent dropped alert is counted as dropped again: new
        # alerts fill the queue first, whatever room the step left.
        rest = dropped[30:]
        before = dict(stats)
        store.add([firing(1000 + i) for i in range(capacity)] + [firing(i) for i in rest], "native")
        env.step([])
        assert int(sim.queue_length[0]) == capacity
        assert not any(f"native:k{i}" in feed.queued for i in rest)
        new_queued = stats["queued"] - before["queued"]
        assert stats["dropped"] - before["dropped"] == capacity - new_queued + len(rest)
        assert stats["renotified"] == 0
        # A dropped alert is known to the episode until its sender resolves it.
        ack = dataclasses.replace(firing(rest[1]), status_only=True)
        store.add([dataclasses.replace(firing(rest[0]), status="resolved"), ack], "native")
        env.step([])
        assert (stats["unknown_key"], stats["renotified"]) == (0, 1)
        store.add([dataclasses.replace(firing(rest[0]), status_only=True)], "native")
        env.step([])
        assert (stats["unknown_key"], stats["renotified"]) == (1, 1)
