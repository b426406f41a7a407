"""The server's fast paths change nothing a client can see: a closed session's
env serves a later one only when it plays exactly as a new env would (and never
under a request still in flight), the OpenEnv steps run on the event loop (live
ones in a thread), the hot HTTP route reads its session id itself, the body
limit skips counting declared lengths, and `wire` parses and writes JSON as the
standard library does."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openenv.core.env_server.serialization import serialize_observation
from websockets.sync.client import connect

from adaptive_alert_triage.agents import RuleBasedAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.models import Observation
from adaptive_alert_triage.server import create_server_app, wire
from adaptive_alert_triage.server.legacy import ApiError, LegacyApi, observation_dict
from adaptive_alert_triage.server.metrics import ServerMetrics
from adaptive_alert_triage.server.openenv_env import AlertTriageAction, AlertTriageEnvironment
from adaptive_alert_triage.server.sessions import SessionLimitError, SessionStore

from .server_utils import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "alerts.db"
    live = LiveServer(create_server_app(max_sessions=16, db_path=str(db), results_path=None))
    yield live
    live.stop()


def ws_call(ws, message: dict) -> dict:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=20))


def reference(task: str, seed: int, steps: int | None = None) -> list:
    """A fresh Python env's observations and rewards under the rule agent."""
    env, agent = AdaptiveAlertTriageEnv(task), RuleBasedAgent()
    agent.bind(env)
    observation = env.reset(seed=seed)
    out: list = [observation.model_dump()]
    done, n = False, 0
    while not done and (steps is None or n < steps):
        observation, reward, done, info = env.step(agent.act(observation))
        out += [observation.model_dump(), {"reward": reward.value, "score": info["task_score"]}]
        n += 1
    return json.loads(json.dumps(out))


# --------------------------------------------------------------------------- /ws/train
def play_train(ws, task: str, seed: int | None, steps: int | None = None) -> tuple[str, list]:
    """One episode over /ws/train (or ``steps`` of it) under the rule agent."""
    agent = RuleBasedAgent()
    agent.bind(AdaptiveAlertTriageEnv(task))
    message: dict = {"type": "reset", "task_id": task}
    if seed is not None:
        message["seed"] = seed
    reply = ws_call(ws, message)
    assert reply["type"] == "reset", reply
    out: list = [reply["observation"]]
    n = 0
    while not reply["done"] and (steps is None or n < steps):
        actions = agent.act(Observation.model_validate(reply["observation"]))
        action = [a.model_dump(exclude={"metadata"}) for a in actions]
        reply = ws_call(ws, {"type": "step", "action": action})
        assert reply["type"] == "step", reply
        out += [reply["observation"], {"reward": reply["reward"], "score": reply["score"]}]
        n += 1
    return reply["session_id"], out


def test_ws_train_episodes_on_one_socket_equal_fresh_envs(server):
    with connect(f"{server.ws_url}/ws/train") as ws:
        sessions = []
        for task, seed, steps in (
            ("medium", 3, None),
            ("medium", 5, 4),  # abandoned half way
            ("medium", 3, None),  # the env of a used socket plays seed 3 again
            ("hard", 2, 6),  # another task: a new env
            ("easy", None, 2),  # no seed: a new env, fresh entropy
            ("easy", 7, None),
        ):
            sid, trajectory = play_train(ws, task, seed, steps)
            sessions.append(sid)
            if seed is not None:
                assert trajectory == reference(task, seed, steps), (task, seed)
        assert len(set(sessions)) == len(sessions)  # every reset is a new session


def test_ws_train_reads_binary_frames_and_ends_the_session_of_a_client_that_leaves(server):
    """A UTF-8 binary frame is read as its text; bytes that are not UTF-8 JSON get
    the malformed-JSON error; a socket closed mid-episode closes its session."""
    store = server.app.state.sessions
    before = len(store)
    with connect(f"{server.ws_url}/ws/train") as ws:
        ws.send(json.dumps({"type": "reset", "task_id": "easy", "seed": 4}).encode())
        reply = json.loads(ws.recv(timeout=20))
        assert reply["type"] == "reset"
        assert reply["observation"] == reference("easy", 4, 0)[0]
        ws.send(b"\xff\xfe{")
        error = json.loads(ws.recv(timeout=20))
        assert error["type"] == "error" and error["detail"].startswith("malformed JSON")
        alert = reply["observation"]["alerts"][0]["id"]
        step = {"alert_id": alert, "action_type": "IGNORE"}
        ws.send(json.dumps({"type": "step", "action": step}))
        assert json.loads(ws.recv(timeout=20))["type"] == "step"
        assert len(store) == before + 1
    deadline = time.monotonic() + 10
    while len(store) != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(store) == before


@given(task=st.sampled_from(["easy", "medium", "hard"]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=15, deadline=None)
def test_observation_dict_is_model_dump(task, seed):
    """The replies' observation dicts are exactly ``model_dump()``, keys in order."""
    env, agent = AdaptiveAlertTriageEnv(task), RuleBasedAgent()
    agent.bind(env)
    observation, done = env.reset(seed=seed), False
    while True:
        fast, dumped = observation_dict(observation), observation.model_dump()
        assert fast == dumped and list(fast) == list(dumped)
        assert [list(a) for a in fast["alerts"]] == [list(a) for a in dumped["alerts"]]
        if done:
            break
        observation, _, done, _ = env.step(agent.act(observation))


# --------------------------------------------------------------------------- OpenEnv /ws
def play_openenv(ws, task: str, seed: int | None, steps: int | None = None) -> list:
    agent = RuleBasedAgent()
    agent.bind(AdaptiveAlertTriageEnv(task))
    data: dict = {"task_id": task, "episode_id": "fixed"}
    if seed is not None:
        data["seed"] = seed
    reply = ws_call(ws, {"type": "reset", "data": data})
    assert reply["type"] == "observation", reply
    out: list = [reply["data"]]
    n = 0
    while not reply["data"]["done"] and (steps is None or n < steps):
        observation = Observation.model_validate(
            {k: v for k, v in reply["data"]["observation"].items() if k in Observation.model_fields}
        )
        decisions = [a.model_dump(exclude={"metadata"}) for a in agent.act(observation)]
        reply = ws_call(ws, {"type": "step", "data": {"decisions": decisions}})
        assert reply["type"] == "observation", reply
        out.append(reply["data"])
        n += 1
    return out


def openenv_reference(task: str, seed: int, steps: int | None = None) -> list:
    """What a fresh `AlertTriageEnvironment` answers, in the /ws wire format."""
    env, agent = AlertTriageEnvironment(), RuleBasedAgent()
    agent.bind(AdaptiveAlertTriageEnv(task))
    observation = env.reset(seed=seed, episode_id="fixed", task_id=task)
    out = [serialize_observation(observation)]
    n = 0
    while not observation.done and (steps is None or n < steps):
        visible = Observation.model_validate(
            {k: v for k, v in observation.model_dump().items() if k in Observation.model_fields}
        )
        decisions = [a.model_dump(exclude={"metadata"}) for a in agent.act(visible)]
        observation = env.step(AlertTriageAction(decisions=decisions))
        out.append(serialize_observation(observation))
        n += 1
    return json.loads(json.dumps(out))


def test_openenv_ws_episodes_on_one_socket_equal_fresh_envs(server):
    with connect(f"{server.ws_url}/ws") as ws:
        for task, seed, steps in (
            ("hard", 4, None),
            ("hard", 9, 3),
            ("hard", 4, None),
            ("medium", 1, 5),
            ("medium", None, 2),
            ("easy", 6, None),
        ):
            trajectory = play_openenv(ws, task, seed, steps)
            if seed is not None:
                assert trajectory == openenv_reference(task, seed, steps), (task, seed)
        state = ws_call(ws, {"type": "state"})["data"]
        assert state["task_id"] == "easy" and state["seed"] == 6 and state["done"] is True


# --------------------------------------------------------------------------- live episodes
def ingest(client: httpx.Client, alert_id: str) -> None:
    alert = {
        "id": alert_id,
        "service": "payments",
        "alert_type": "SECURITY",
        "severity": 0.9,
        "confidence": 0.95,
    }
    r = client.post("/ingest/alerts", content=json.dumps(alert).encode())
    assert r.status_code == 200, r.text


def test_live_and_plain_episodes_share_a_socket(server, client):
    """A live episode after a plain one (and the reverse) on one socket: the
    live one sees ingested alerts, the plain one is the fresh env's episode."""
    with connect(f"{server.ws_url}/ws/train") as train, connect(f"{server.ws_url}/ws") as oe:
        play_train(train, "hard", 1, 2)
        play_openenv(oe, "hard", 1, 2)
        live = ws_call(
            train, {"type": "reset", "task_id": "hard", "seed": 1, "options": {"live_alerts": True}}
        )
        assert live["type"] == "reset", live
        live_oe = ws_call(
            oe,
            {
                "type": "reset",
                "data": {"task_id": "hard", "seed": 1, "options": {"live_alerts": 1}},
            },
        )
        assert live_oe["type"] == "error"  # a bad option is refused, nothing changed
        live_oe = ws_call(
            oe,
            {
                "type": "reset",
                "data": {"task_id": "hard", "seed": 1, "options": {"live_alerts": True}},
            },
        )
        assert live_oe["type"] == "observation", live_oe
        ingest(client, "fast-path-live")
        step = ws_call(train, {"type": "step", "action": []})
        assert list(step["info"]["external_alerts"]["queued"].values()) == ["native:fast-path-live"]
        step = ws_call(oe, {"type": "step", "data": {"decisions": []}})
        external = step["data"]["observation"]["metadata"]["external_alerts"]
        assert "native:fast-path-live" in external["queued"].values()
        # Back to plain episodes: exactly the fresh env's, nothing external.
        _, trajectory = play_train(train, "hard", 1)
        assert trajectory == reference("hard", 1)
        assert play_openenv(oe, "hard", 1) == openenv_reference("hard", 1)


# --------------------------------------------------------------------------- HTTP
def test_env_step_reads_the_session_id_from_header_or_query(client):
    body = client.post("/env/reset/easy", json={"seed": 2}).json()
    session = body["session_id"]
    by_query = client.post("/env/step", params={"session_id": session}, json=[])
    assert by_query.status_code == 200 and by_query.json()["session_id"] == session
    # The header wins over the query, as before.
    other = client.post("/env/reset/easy", json={"seed": 2}).json()["session_id"]
    both = client.post(
        "/env/step", params={"session_id": other}, headers={"X-Session-Id": session}, json=[]
    )
    assert both.json()["observation"]["episode_step"] == 2
    assert both.headers["content-type"] == "application/json"
    missing = client.post("/env/step", json=[], headers={"X-Session-Id": ""})
    assert missing.status_code == 400 and "missing session id" in missing.json()["detail"]
    for sid in (session, other):
        client.delete("/env/session", headers={"X-Session-Id": sid})


def test_env_step_documents_its_session_parameters(client):
    operation = client.get("/openapi.json").json()["paths"]["/env/step"]["post"]
    where = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert where == {("session_id", "query"), ("x-session-id", "header")}
    assert {"200", "422"} <= set(operation["responses"])


def test_a_streamed_body_over_the_limit_is_still_a_413(server):
    app = create_server_app(max_sessions=2, max_body_bytes=1000, results_path=None)
    live = LiveServer(app)
    try:
        with httpx.Client(base_url=live.url, timeout=20) as c:
            session = c.post("/env/reset/easy", json={"seed": 0}).json()["session_id"]
            headers = {"X-Session-Id": session, "content-type": "application/json"}

            def chunks():
                yield b"["
                for _ in range(50):
                    yield b" " * 100
                yield b"]"

            r = c.post("/env/step", content=chunks(), headers=headers)
            assert r.status_code == 413 and "over the limit" in r.json()["detail"]
            small = c.post("/env/step", content=iter([b"[", b"]"]), headers=headers)
            assert small.status_code == 200, small.text
            declared = c.post("/env/step", content=b"[" + b" " * 2000 + b"]", headers=headers)
            assert declared.status_code == 413
            assert c.get("/env/state", headers=headers).json()["episode_step"] == 1
    finally:
        live.stop()


# --------------------------------------------------------------------------- SessionStore
class SilentFeed:
    """A live alert source with nothing to say."""

    def start(self) -> list:
        return []

    def poll(self) -> list:
        return []


def test_the_store_reuses_an_env_only_for_an_exact_replay():
    store = SessionStore(max_sessions=2, spares_per_task=1)
    first = store.create("hard", 1)
    env = first.env
    assert store.close(first.id, reuse=True) and first.recycled and len(store) == 0
    followed = env.sim.stream_key.copy()  # seed 1's stream, which a seedless reset would go on with
    seedless = store.create("hard", None)
    assert seedless.env is env  # renewed: its seedless episode comes from fresh entropy
    seedless.env.reset()
    assert env.sim.episode.tolist() == [0] and env.sim.stream_key[0] != followed[0]
    store.close(seedless.id, reuse=True)
    for task, seed, live in (("easy", 3, None), ("hard", 4, SilentFeed())):
        other = store.create(task, seed, live_source=live)
        assert other.env is not env  # another task, live alerts: a new env
        store.close(other.id, reuse=True)
        assert other.recycled == (live is None)  # a live env is never kept
    again = store.create("hard", 2)
    assert again.env is env  # same task, a seed, nothing live
    store.close(again.id)  # not for reuse
    assert not again.recycled and store.create("hard", 5).env is not env
    assert store.close("nobody") is False
    full = store.create("hard", 6)  # the store is full now
    with pytest.raises(SessionLimitError):
        store.create("easy", 7)
    store.close(full.id, reuse=True)
    assert len(store) == 1 and store.create("hard", 8).env is full.env


def test_a_step_never_touches_an_env_recycled_under_it():
    """An HTTP step reads its body after finding its session; if the session is
    closed meanwhile and its env starts another session, the step is a 404."""
    api = LegacyApi(SessionStore(max_sessions=4), ServerMetrics())
    old, _ = api.reset("easy", seed=1)
    found = api.session(old.id)
    api.store.close(old.id, reuse=True)
    new, first = api.reset("easy", seed=2)
    assert new.env is old.env
    with pytest.raises(ApiError) as error:
        api.step(found, [])
    assert error.value.status == 404 and "unknown session" in error.value.detail
    assert new.env.state().episode_step == 0
    assert first == AdaptiveAlertTriageEnv("easy").reset(seed=2).model_dump()


def test_http_episodes_after_closed_sessions_equal_fresh_envs(client, server):
    """Reset, play, close, again (the store hands the closed sessions' envs on),
    and a /ws/train session closed over HTTP keeps its env to itself."""

    def play_http(task: str, seed: int, steps: int | None = None) -> tuple[str, list]:
        agent = RuleBasedAgent()
        agent.bind(AdaptiveAlertTriageEnv(task))
        body = client.post(f"/env/reset/{task}", json={"seed": seed}).json()
        headers = {"X-Session-Id": body["session_id"]}
        out, reply, n = [body["observation"]], {"done": False, **body}, 0
        while not reply["done"] and (steps is None or n < steps):
            observation = Observation.model_validate(reply["observation"])
            action = [a.model_dump(exclude={"metadata"}) for a in agent.act(observation)]
            reply = client.post("/env/step", json=action, headers=headers).json()
            out += [reply["observation"], {"reward": reply["reward"], "score": reply["score"]}]
            n += 1
        return body["session_id"], out

    for task, seed, steps in (("hard", 3, 5), ("hard", 8, None), ("hard", 3, None)):
        sid, trajectory = play_http(task, seed, steps)
        assert trajectory == reference(task, seed, steps)
        assert client.delete("/env/session", headers={"X-Session-Id": sid}).status_code == 200
    with connect(f"{server.ws_url}/ws/train") as ws:
        sid, trajectory = play_train(ws, "medium", 4, 3)
        assert client.delete("/env/session", headers={"X-Session-Id": sid}).status_code == 200
        _, other = play_http("medium", 4)  # a new env, not the socket's
        assert other == reference("medium", 4)
        agent = RuleBasedAgent()
        agent.bind(AdaptiveAlertTriageEnv("medium"))
        for _ in range(2):  # the socket plays on, undisturbed
            observation = Observation.model_validate(trajectory[-2])
            action = [a.model_dump(exclude={"metadata"}) for a in agent.act(observation)]
            reply = ws_call(ws, {"type": "step", "action": action})
            trajectory += [
                reply["observation"],
                {"reward": reply["reward"], "score": reply["score"]},
            ]
        assert trajectory == reference("medium", 4, 5)


def test_openenv_sessions_reuse_their_env_only_for_an_exact_replay():
    env = AlertTriageEnvironment()
    env.reset(seed=1, task_id="medium")
    first = env._episode.env
    env.reset(seed=2, task_id="medium")
    assert env._episode.env is first
    stream = first.sim.stream_key.copy()
    env.reset(seed=None, task_id="medium")
    assert env._episode.env is first  # renewed: a fresh stream, not seed 2's next episode
    assert first.sim.episode.tolist() == [0] and first.sim.stream_key[0] != stream[0]
    env.reset(seed=3, task_id="hard")
    assert env._episode.env is not first


# --------------------------------------------------------------------------- wire
@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2.5, -3e-7, "x\\u00e9", null, true, false, {}]}',
        "[" + "1" * 40 + "]",  # beyond 64 bits: an int, not orjson's float
        "[-9223372036854775809, 18446744073709551616, 9223372036854775807]",
        '{"id": "0000000000000000", "x": 0.30000000000000004}',
        "[NaN, Infinity, -Infinity]",
        '"\\ud800"',  # a lone surrogate
        '{"a": 1, "a": 2}',
        "  [1]\n",
    ],
)
def test_wire_loads_reads_what_json_reads(text):
    expected = json.loads(text)
    got = wire.loads(text)
    assert json.dumps(got) == json.dumps(expected)
    assert json.dumps(wire.loads(text.encode())) == json.dumps(expected)


@pytest.mark.parametrize(
    "text",
    [
        "{nope",
        "",
        "[1,]",
        "1" * 5000,  # too many digits for an int
        "[1e400, -1e999]",  # json reads these (as infinities)
        "[" * 1000 + "]" * 1000,  # json's nesting limit
        "[" * 200_000 + "]" * 200_000,  # would overflow the stack of an orjson without a limit
    ],
)
def test_wire_loads_fails_or_reads_as_json_does(text):
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError) as exc:
        with pytest.raises(type(exc)) as got:
            wire.loads(text)
        assert str(got.value) == str(exc)
    else:
        assert repr(wire.loads(text)) == repr(expected)


def test_wire_dumps_round_trips_and_falls_back():
    value = {"reward": -0.25, "ids": ["a\u00e9", "\ud800"], "n": 10**30, "ok": True, "x": None}
    assert json.loads(wire.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(wire.dumps_bytes({"v": np.float64(0.5)})) == {"v": 0.5}
    assert wire.dumps({"a": [1, 2.0]}) == '{"a":[1,2.0]}'  # compact
    with pytest.raises(TypeError):
        wire.dumps({"array": object()})
