"""The OpenEnv protocol face against a real uvicorn server on a loopback port:
HTTP, the ``/ws`` session socket, the typed client, the session cap, bad input,
and the ``openenv validate`` CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from adaptive_alert_triage.server.client import AlertTriageClient
from adaptive_alert_triage.server.openenv_env import (
    AlertTriageAction,
    AlertTriageEnvironment,
    AlertTriageObservation,
    AlertTriageState,
    EpisodeDoneError,
    InvalidActionError,
    NoEpisodeError,
    build_openenv_app,
)
from adaptive_alert_triage.tasks import GRADERS

from .server_utils import LiveServer

REPO = Path(__file__).resolve().parents[1]
HIDDEN = ("true_severity", "is_false_positive", "incident", "correlation_group", "incidents")


@pytest.fixture(scope="module")
def events():
    return []


@pytest.fixture(scope="module")
def server(events):
    app = build_openenv_app(max_concurrent_envs=8, on_event=lambda k, d: events.append((k, d)))
    live = LiveServer(app)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def small_server():
    live = LiveServer(build_openenv_app(max_concurrent_envs=2))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def rule_decisions(observation: dict) -> list[dict]:
    """Investigate the two most alarming alerts (within K), ignore the mildest."""
    alerts = sorted(
        observation["alerts"], key=lambda a: a["visible_severity"] * a["confidence"], reverse=True
    )
    n_investigate = min(observation["resource_budget"], 2)
    chosen = [
        {"alert_id": a["id"], "action_type": "INVESTIGATE"}
        for a in alerts[:n_investigate]
        if a["visible_severity"] >= 0.3
    ]
    rest = alerts[len(chosen) :]
    if rest and rest[-1]["visible_severity"] < 0.3:
        chosen.append({"alert_id": rest[-1]["id"], "action_type": "IGNORE"})
    return chosen


def ws_call(ws, message) -> dict:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.recv(timeout=10))


def without_id(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "episode_id"}


# --------------------------------------------------------------------------- in-process
def test_environment_in_process_contract():
    def broken_hook(kind, data):
        raise RuntimeError("metrics are down")

    env = AlertTriageEnvironment(on_event=broken_hook)  # a failing hook is only logged
    assert env.state.episode_id is None and env.state.step_count == 0
    with pytest.raises(NoEpisodeError):
        env.step(AlertTriageAction())
    first = env.reset(seed=4, task_id="medium")
    assert isinstance(first, AlertTriageObservation) and first.reward is None and not first.done
    episode_id = env.state.episode_id
    assert episode_id and env.state.task_id == "medium" and env.state.seed == 4
    alert = first.alerts[0]
    # A single decision is accepted as well as a list.
    single = AlertTriageAction(alert_id=alert.id, action_type="DELAY")
    assert AlertTriageAction.model_validate([single.decisions[0].model_dump()]) == single
    with pytest.raises(InvalidActionError):
        env.step(AlertTriageAction(alert_id="0" * 16, action_type="IGNORE"))
    assert env.state.step_count == 0
    obs = env.step(single)
    assert env.state.step_count == 1 and obs.episode_step == 1
    assert [p.alert_id for p in obs.processed] == [alert.id]
    while not obs.done:
        obs = env.step(AlertTriageAction())
    with pytest.raises(EpisodeDoneError):
        env.step(AlertTriageAction())
    assert env.state.done and env.state.episode_id == episode_id


# --------------------------------------------------------------------------- HTTP
def test_health_metadata_schema(http):
    assert http.get("/health").json()["status"] == "healthy"
    meta = http.get("/metadata").json()
    assert meta["name"] == "adaptive-alert-triage"
    for task, grader in GRADERS.items():
        assert task in meta["description"] and f"{grader.threshold:.2f}" in meta["description"]
        assert f"`{task}`" in meta["readme_content"]
    schema = http.get("/schema").json()
    assert "decisions" in schema["action"]["properties"]
    for field in ("alerts", "task_score", "processed", "system_load", "reward", "done"):
        assert field in schema["observation"]["properties"]
    for field in ("episode_id", "step_count", "task_id", "seed", "task_score", "done"):
        assert field in schema["state"]["properties"]
    text = json.dumps(schema)
    assert not any(f'"{name}"' in text for name in HIDDEN)
    tasks = http.post("/adaptive-alert-triage/tasks", json={"split": "test"}).json()["tasks"]
    assert {t["id"]: t["threshold"] for t in tasks} == {t: g.threshold for t, g in GRADERS.items()}


def test_http_state_echoes_episode_and_counts_steps(http):
    r = http.post("/reset", json={"task_id": "medium", "seed": 3, "episode_id": "http-ep-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["done"] is False and body["reward"] is None
    obs = body["observation"]
    assert obs["episode_id"] == "http-ep-1" and obs["task_id"] == "medium"
    assert not any(name in alert for alert in obs["alerts"] for name in HIDDEN)
    # The same seed gives the same episode.
    again = http.post("/reset", json={"task_id": "medium", "seed": 3, "episode_id": "http-ep-1"})
    assert again.json()["observation"] == obs
    state = http.get("/state").json()
    assert state["episode_id"] == "http-ep-1" and state["step_count"] == 0
    assert state["task_id"] == "medium" and state["seed"] == 3 and state["done"] is False
    assert state["task_score"] == 0.0 and state["max_steps"] == 30
    for i in range(1, 4):
        r = http.post("/step", json={"action": {"decisions": rule_decisions(obs)}})
        assert r.status_code == 200, r.text
        body = r.json()
        obs = body["observation"]
        assert isinstance(body["reward"], float) and obs["episode_step"] == i
        assert body["reward"] == pytest.approx(sum(obs["reward_components"].values()))
        assert not any(name in p for p in obs["processed"] for name in HIDDEN)
        state = http.get("/state").json()
        assert state["episode_id"] == "http-ep-1" and state["step_count"] == i
        assert state["task_score"] == obs["task_score"]
        assert state["cumulative_reward"] == pytest.approx(obs["cumulative_reward"])


def test_http_bad_input_is_4xx_and_changes_nothing(http):
    obs = http.post("/reset", json={"task_id": "hard", "seed": 11}).json()["observation"]
    before = http.get("/state").json()
    alert_id = obs["alerts"][0]["id"]
    bad_bodies = [
        {"action": {"alert_id": "ffffffffffffffff", "action_type": "INVESTIGATE"}},
        {"action": {"alert_id": alert_id, "action_type": "investigate"}},
        {"action": {"alert_id": alert_id, "action_type": "REBOOT"}},
        {"action": {"decisions": [{"alert_id": alert_id}]}},
        {"action": {"decisions": [{"alert_id": alert_id, "action_type": "IGNORE", "x": 1}]}},
        {"action": {"decisions": [{"alert_id": alert_id, "action_type": "IGNORE"}] * 2}},
        {"action": {"decisions": "all"}},
        {"action": [1, 2]},
        {"action": {"decisions": []}, "bogus_option": 1},
        {"nothing": True},
    ]
    for body in bad_bodies:
        r = http.post("/step", json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert r.json()["detail"], body
    for raw in (b"{not json", b"", b"[]", b'"step"'):
        r = http.post("/step", content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500 and r.json()["detail"], raw
    for body in ({"task_id": "impossible"}, {"task": "hard"}, {"seed": -1}, {"seed": "x"}):
        r = http.post("/reset", json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    unknown = http.post("/step", json={"action": {}, "episode_id": "never-started"})
    assert unknown.status_code == 404 and "never-started" in unknown.json()["detail"]
    assert http.get("/state").json() == before
    # Still playable, and the rejected requests did not advance it.
    r = http.post("/step", json={"action": {"alert_id": alert_id, "action_type": "INVESTIGATE"}})
    assert r.status_code == 200 and r.json()["observation"]["episode_step"] == 1
    assert http.get("/state").json()["step_count"] == 1


def test_http_refuses_unhashable_task_ids_lax_seeds_and_non_finite_actions(http):
    """The OpenEnv app on its own answers these as the whole server does: a 422
    whose body is strict JSON (no NaN echoed back), and nothing changes."""
    http.post("/reset", json={"task_id": "medium", "seed": 6, "episode_id": "keep"})
    before = http.get("/state").json()
    for task_id in (["easy"], {"a": 1}):
        r = http.post("/reset", json={"task_id": task_id})
        assert r.status_code == 422, r.text
        assert repr(task_id) in r.json()["detail"] and "'hard'" in r.json()["detail"]
    for seed in (True, "1", 1.0):
        r = http.post("/reset", json={"seed": seed})
        assert r.status_code == 422 and "seed must be" in r.text, (seed, r.text)
    for raw in (
        '{"action": {"alert_id": NaN, "action_type": "IGNORE"}}',
        '{"action": {"decisions": [Infinity]}}',
        '{"seed": NaN}',
    ):
        path = "/reset" if raw.startswith('{"seed"') else "/step"
        r = http.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.status_code, r.text)
        assert "NaN" not in r.text and "Infinity" not in r.text
        assert json.loads(r.text)["detail"]
    assert http.get("/state").json() == before


def test_http_step_after_done_is_409(http, events):
    http.post("/reset", json={"task_id": "easy", "seed": 2, "episode_id": "to-the-end"})
    steps, done = 0, False
    while not done:
        r = http.post("/step", json={"action": {"decisions": []}})
        assert r.status_code == 200
        done = r.json()["done"]
        steps += 1
    assert steps == 20
    after = http.post("/step", json={"action": {"decisions": []}})
    assert after.status_code == 409 and "reset" in after.json()["detail"]
    state = http.get("/state").json()
    assert state["done"] is True and state["step_count"] == 20
    assert ("episode_end", {"task_id": "easy", "score": state["task_score"]}) in events
    kinds = {kind for kind, _ in events}
    assert {"reset", "step", "episode_end", "invalid"} <= kinds


def test_http_episodes_by_id(http):
    http.post("/reset", json={"task_id": "easy", "seed": 1, "episode_id": "A"})
    http.post("/reset", json={"task_id": "hard", "seed": 1, "episode_id": "B"})
    r = http.post("/step", json={"action": {"decisions": []}, "episode_id": "A"})
    assert r.status_code == 200
    assert r.json()["observation"]["episode_id"] == "A"
    assert r.json()["observation"]["episode_step"] == 1
    state = http.get("/state").json()  # the current episode: the last reset
    assert state["episode_id"] == "B" and state["step_count"] == 0


# --------------------------------------------------------------------------- /ws
def test_ws_state_fields_and_errors(server):
    with connect(server.ws_url + "/ws") as ws:
        blank = ws_call(ws, {"type": "state"})
        assert blank["type"] == "state" and blank["data"]["episode_id"] is None  # no HTTP leak
        early = ws_call(ws, {"type": "step", "data": {"decisions": []}})
        assert early["type"] == "error" and "reset" in early["data"]["message"]
        reset = ws_call(
            ws, {"type": "reset", "data": {"task_id": "hard", "seed": 7, "episode_id": "ws-1"}}
        )
        assert reset["type"] == "observation"
        obs = reset["data"]["observation"]
        state = ws_call(ws, {"type": "state"})["data"]
        assert state["episode_id"] == "ws-1" and state["step_count"] == 0
        assert state["task_id"] == "hard" and state["seed"] == 7 and state["max_steps"] == 50
        assert "task_score" in state and "cumulative_reward" in state
        invalid = ws_call(
            ws, {"type": "step", "data": {"alert_id": "0000000000000000", "action_type": "IGNORE"}}
        )
        assert invalid["type"] == "error" and "unknown alert_id" in invalid["data"]["message"]
        assert invalid["data"]["code"] == "EXECUTION_ERROR"
        schema_error = ws_call(
            ws, {"type": "step", "data": {"alert_id": obs["alerts"][0]["id"], "action_type": "X"}}
        )
        assert schema_error["type"] == "error"
        assert schema_error["data"]["code"] == "VALIDATION_ERROR"
        malformed = ws_call(ws, "{nope")
        assert malformed["type"] == "error" and malformed["data"]["code"] == "INVALID_JSON"
        bad_reset = ws_call(ws, {"type": "reset", "data": {"task_id": "nope"}})
        assert bad_reset["type"] == "error" and "unknown task_id" in bad_reset["data"]["message"]
        assert ws_call(ws, {"type": "state"})["data"] == state  # nothing changed
        step = ws_call(ws, {"type": "step", "data": {"decisions": rule_decisions(obs)}})
        assert step["type"] == "observation" and step["data"]["observation"]["episode_step"] == 1
        assert ws_call(ws, {"type": "state"})["data"]["step_count"] == 1


def test_ws_sessions_are_isolated_and_deterministic(server):
    url = server.ws_url + "/ws"
    with connect(url) as a, connect(url) as b, connect(url) as c:
        ra = ws_call(a, {"type": "reset", "data": {"task_id": "medium", "seed": 21}})
        rb = ws_call(b, {"type": "reset", "data": {"task_id": "medium", "seed": 21}})
        rc = ws_call(c, {"type": "reset", "data": {"task_id": "medium", "seed": 22}})
        oa, ob, oc = (r["data"]["observation"] for r in (ra, rb, rc))
        assert without_id(oa) == without_id(ob) and without_id(oa) != without_id(oc)
        assert oa["episode_id"] != ob["episode_id"]
        done = c_done = False
        steps = 0
        while not done:
            # Interleave the three sessions; c plays something else entirely.
            sa = ws_call(a, {"type": "step", "data": {"decisions": rule_decisions(oa)}})
            if not c_done:
                if oc["alerts"] and steps % 2 == 0:
                    c_action = {"alert_id": oc["alerts"][0]["id"], "action_type": "ESCALATE"}
                else:
                    c_action = {"decisions": []}
                sc = ws_call(c, {"type": "step", "data": c_action})
                assert sc["type"] == "observation", sc
                oc, c_done = sc["data"]["observation"], sc["data"]["done"]
            sb = ws_call(b, {"type": "step", "data": {"decisions": rule_decisions(ob)}})
            assert sa["type"] == sb["type"] == "observation"
            assert without_id(sa["data"]["observation"]) == without_id(sb["data"]["observation"])
            assert sa["data"]["reward"] == sb["data"]["reward"]
            oa, ob = sa["data"]["observation"], sb["data"]["observation"]
            done = sa["data"]["done"]
            steps += 1
        sta, stb = (ws_call(s, {"type": "state"})["data"] for s in (a, b))
        assert sta["step_count"] == stb["step_count"] == steps
        assert without_id(sta) == without_id(stb)


# --------------------------------------------------------------------------- client
@pytest.mark.parametrize("task_id", ["easy", "medium", "hard"])
def test_client_plays_full_episodes(server, task_id):
    with AlertTriageClient(base_url=server.url) as client:
        result = client.reset(task_id=task_id, seed=5, episode_id=f"client-{task_id}")
        assert isinstance(result.observation, AlertTriageObservation) and not result.done
        steps = 0
        while not result.done:
            decisions = rule_decisions(result.observation.model_dump())
            result = client.step(AlertTriageAction(decisions=decisions))
            steps += 1
            assert isinstance(result.reward, float)
        state = client.state()
        assert isinstance(state, AlertTriageState)
        assert state.episode_id == f"client-{task_id}" and state.step_count == steps
        assert state.done and state.task_id == task_id
        assert 0.0 <= result.observation.task_score <= 1.0
        assert state.task_score == result.observation.task_score
        with pytest.raises(RuntimeError, match="done"):
            client.step(AlertTriageAction())


def test_client_async(server):
    async def play() -> tuple[int, int]:
        async with AlertTriageClient(base_url=server.url) as client:
            result = await client.reset(task_id="easy", seed=0)
            result = await client.step(
                {"alert_id": result.observation.alerts[0].id, "action_type": "INVESTIGATE"}
            )
            state = await client.state()
            return result.observation.episode_step, state.step_count

    assert asyncio.run(play()) == (1, 1)


# --------------------------------------------------------------------------- capacity
def test_session_cap_gives_a_clear_error(small_server):
    with (
        AlertTriageClient(base_url=small_server.url) as first,
        AlertTriageClient(base_url=small_server.url) as second,
    ):
        first.reset(task_id="easy", seed=1)
        second.reset(task_id="easy", seed=1)
        with connect(small_server.ws_url + "/ws") as third:
            refusal = json.loads(third.recv(timeout=10))
        assert refusal["type"] == "error" and refusal["data"]["code"] == "CAPACITY_REACHED"
        assert "capacity" in refusal["data"]["message"].lower()
        with (
            AlertTriageClient(base_url=small_server.url, message_timeout_s=10) as fourth,
            pytest.raises(RuntimeError, match="CAPACITY_REACHED"),
        ):
            fourth.reset(task_id="easy")
        # Plain HTTP does not hold a session, so it still works at capacity.
        with httpx.Client(base_url=small_server.url, timeout=10) as http:
            assert http.post("/reset", json={"task_id": "easy"}).status_code == 200
    # Closed sessions free their slots.
    deadline = time.monotonic() + 10
    while True:
        try:
            with AlertTriageClient(base_url=small_server.url) as again:
                assert again.reset(task_id="hard", seed=0).observation.task_id == "hard"
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --------------------------------------------------------------------------- openenv validate
def _package_snapshot(target: Path) -> Path:
    """The repository's tracked package files, without virtual environments or
    caches: `openenv validate` digests the whole tree and refuses symlinks (a
    venv inside the checkout, as CI makes, has them)."""
    for name in ("openenv.yaml", "pyproject.toml", "README.md", "Dockerfile"):
        shutil.copy2(REPO / name, target / name)
    shutil.copytree(
        REPO / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return target


def test_openenv_validate_cli(server, tmp_path):
    # The `openenv` CLI, run by this interpreter (python -m openenv.cli == the console script).
    openenv = [sys.executable, "-m", "openenv.cli", "validate"]
    package = _package_snapshot(tmp_path)
    commands = {
        "local": [*openenv, str(package)],
        "static": [*openenv, str(package), "--level", "static"],
        "url": [*openenv, "--url", server.url, "--json"],
    }
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for name, cmd in commands.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate(timeout=120)
        out[name] = (proc.returncode, stdout.decode())
    for name, (code, text) in out.items():
        assert code == 0, f"openenv validate ({name}) exited {code}:\n{text}"
    for name in ("local", "static"):
        text = out[name][1]
        assert "PASS  static.manifest" in text
        assert not any(line.strip().startswith(("FAIL", "ERROR")) for line in text.splitlines())
    assert "Verdict: PASS" in out["static"][1]
    # The runtime level needs a Docker build (validation.execution, a Dockerfile and a
    # runtime plan); without them it is skipped, so the default level's verdict is WARN.
    assert "Verdict: WARN" in out["local"][1] or "Verdict: PASS" in out["local"][1]
    report = json.loads(out["url"][1])
    assert report["passed"] is True
    assert all(c["passed"] for c in report["criteria"]), report["criteria"]
    assert report["mode"] == "simulation"
