"""The earlier HTTP API with sessions, /ws/train, /health and /metrics, on a
real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_alert_triage.agents import RuleBasedAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.models import Observation
from adaptive_alert_triage.server import create_server_app

from .server_utils import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    results = tmp_path_factory.mktemp("results") / "results.json"
    results.write_text(
        json.dumps(
            {
                "created": "2026-11-24T00:00:00+00:00",
                "summary": [
                    {
                        "agent": "rule",
                        "task": "hard",
                        "episodes": 3,
                        "mean_score": 0.8,
                        "ci_low": 0.7,
                        "ci_high": 0.9,
                        "success_rate": 0.66,
                    }
                ],
            }
        )
    )
    live = LiveServer(create_server_app(max_sessions=40, results_path=str(results)))
    yield live
    live.stop()


def _reset(client, task="easy", seed=0) -> tuple[str, dict]:
    r = client.post(f"/env/reset/{task}", json={"seed": seed})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["session_id"], body


def _error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert fragment in str(response.json()["detail"])


def test_health_and_tasks(client):
    health = client.get("/health").json()
    assert health["status"] == "healthy" and health["env_ready"] is True
    assert isinstance(health["queue_size"], int)
    tasks = client.get("/tasks").json()["tasks"]
    assert [t["id"] for t in tasks] == ["easy", "medium", "hard"]
    assert {t["pass_threshold"] for t in tasks} == {0.7, 0.65, 0.6}


def test_an_episode_over_http_matches_the_python_env(client):
    session, body = _reset(client, "medium", seed=11)
    env = AdaptiveAlertTriageEnv("medium")
    observation = env.reset(seed=11)
    assert body["observation"] == observation.model_dump()
    agent = RuleBasedAgent()
    agent.bind(env)
    done, steps = False, 0
    while not done:
        actions = agent.act(observation)
        payload = [a.model_dump(exclude={"metadata"}) for a in actions]
        r = client.post("/env/step", json=payload, headers={"X-Session-Id": session})
        assert r.status_code == 200, r.text
        result = r.json()
        observation, reward, done, info = env.step(actions)
        steps += 1
        assert result["observation"] == observation.model_dump()
        assert result["reward"] == reward.value and result["done"] == done
        assert result["score"] == info["task_score"]
    state = client.get("/env/state", params={"session_id": session}).json()
    assert state["done"] is True and state["episode_step"] == steps
    assert 0.0 <= state["task_score"] <= 1.0
    _error(client.post("/env/step", json=[], headers={"X-Session-Id": session}), 409, "done")


def test_state_hides_the_truth_unless_privileged(client):
    session, _ = _reset(client, "hard", seed=3)
    client.post("/env/step", json=[], headers={"X-Session-Id": session})
    text = client.get("/env/state", headers={"X-Session-Id": session}).text
    state = json.loads(text)
    assert state["privileged"] is False
    for hidden in ("true_severity", "is_false_positive", '"incident"', "correlation_group"):
        assert hidden not in text
    assert "incidents" not in state and "dependencies" not in state
    privileged = create_server_app(max_sessions=2, privileged=True)
    live = LiveServer(privileged)
    try:
        with httpx.Client(base_url=live.url) as other:
            sid = other.post("/env/reset/hard", json={"seed": 3}).json()["session_id"]
            full = other.get("/env/state", headers={"X-Session-Id": sid}).json()
        assert full["privileged"] is True and "incidents" in full
        assert all("true_severity" in a for a in full["queue"])
    finally:
        live.stop()


def test_errors_are_4xx_json_with_a_detail(client, server):
    session, body = _reset(client)
    alert = body["observation"]["alerts"][0]["id"]
    headers = {"X-Session-Id": session}
    _error(client.post("/env/reset/extreme", json={}), 404, "unknown task_id 'extreme'")
    _error(client.post("/env/reset/easy", json={"seed": -1}), 422, "seed must be")
    _error(client.post("/env/reset/easy", json={"sed": 1}), 422, "unknown reset field")
    _error(
        client.post("/env/step", json={"alert_id": "A1", "action_type": "INVESTIGATE"}),
        400,
        "missing session id",
    )
    _error(
        client.post("/env/step", json=[], headers={"X-Session-Id": "nope"}), 404, "unknown session"
    )
    _error(
        client.post(
            "/env/step", json={"alert_id": "A1", "action_type": "INVESTIGATE"}, headers=headers
        ),
        422,
        "A1",
    )
    _error(
        client.post("/env/step", json={"alert_id": alert, "action_type": "FIX"}, headers=headers),
        422,
        "action_type",
    )
    _error(client.post("/env/step", content=b"{not json", headers=headers), 400, "malformed JSON")
    _error(client.post("/env/step", content=b"", headers=headers), 400, "empty")
    _error(
        client.post("/env/step", content=b"[" + b" " * (2 << 20) + b"]", headers=headers),
        413,
        "over the limit",
    )
    # None of these took a step.
    assert client.get("/env/state", headers=headers).json()["episode_step"] == 0


def test_sessions_are_isolated_and_capped():
    app = create_server_app(max_sessions=2)
    live = LiveServer(app)
    try:
        with httpx.Client(base_url=live.url) as c:
            a, body_a = _reset(c, "hard", seed=5)
            b, body_b = _reset(c, "hard", seed=5)
            assert a != b and body_a["observation"] == body_b["observation"]
            c.post("/env/step", json=[], headers={"X-Session-Id": a})
            c.post("/env/step", json=[], headers={"X-Session-Id": a})
            step_b = c.post("/env/step", json=[], headers={"X-Session-Id": b}).json()
            assert step_b["observation"]["episode_step"] == 1
            _error(c.post("/env/reset/easy", json={}), 429, "session limit")
            assert c.delete("/env/session", headers={"X-Session-Id": a}).status_code == 200
            assert c.post("/env/reset/easy", json={}).status_code == 200
    finally:
        live.stop()


def test_the_earlier_websocket_snippet_runs_unchanged(server):
    """The snippet from the issue: "A1" is no alert, every reply is an error on an
    open socket, and the episode still ends when its steps run out."""
    replies: list[dict] = []

    async def snippet():
        async with websockets.connect(f"{server.ws_url}/ws/train") as ws:
            await ws.send(json.dumps({"type": "reset", "task_id": "hard"}))
            obs = await ws.recv()
            assert json.loads(obs)["type"] == "reset"
            while True:
                await ws.send(
                    json.dumps(
                        {"type": "step", "action": {"alert_id": "A1", "action_type": "INVESTIGATE"}}
                    )
                )
                result = await ws.recv()
                replies.append(json.loads(result))
                if json.loads(result)["done"]:
                    break

    asyncio.run(asyncio.wait_for(snippet(), 60))
    assert all(r["type"] == "error" and "A1" in r["detail"] for r in replies)
    assert replies[-1]["done"] is True
    last = replies[-1]["observation"]
    assert len(replies) == last["episode_step"] <= 50


def test_32_concurrent_websocket_sessions_are_isolated_and_deterministic(server):
    async def play(seed: int) -> list[dict]:
        agent = RuleBasedAgent()
        out = []
        async with websockets.connect(f"{server.ws_url}/ws/train") as ws:
            await ws.send(json.dumps({"type": "reset", "task_id": "medium", "seed": seed}))
            reply = json.loads(await ws.recv())
            out.append(reply["observation"])
            while not reply["done"]:
                observation = Observation.model_validate(reply["observation"])
                action = [a.model_dump(exclude={"metadata"}) for a in agent.act(observation)]
                await ws.send(json.dumps({"type": "step", "action": action}))
                reply = json.loads(await ws.recv())
                assert reply["type"] == "step", reply
                out.append(reply["observation"])
                out.append({"reward": reply["reward"], "score": reply["score"]})
        return out

    async def run_all():
        return await asyncio.gather(*(play(seed % 8) for seed in range(32)))

    runs = asyncio.run(asyncio.wait_for(run_all(), 120))
    for seed in range(32):  # the same seed gives the same trajectory, whatever ran beside it
        assert runs[seed] == runs[seed % 8]
    # ...and the trajectory of the Python env.
    env, agent = AdaptiveAlertTriageEnv("medium"), RuleBasedAgent()
    observation = env.reset(seed=3)
    expected = [observation.model_dump()]
    done = False
    while not done:
        observation, reward, done, info = env.step(agent.act(observation))
        expected += [
            observation.model_dump(),
            {"reward": reward.value, "score": info["task_score"]},
        ]
    assert runs[3] == expected


def test_websocket_errors_keep_the_socket_open(server):
    async def talk():
        async with websockets.connect(f"{server.ws_url}/ws/train") as ws:
            answers = []
            for message in (
                "{oops",
                json.dumps({"type": "dance"}),
                json.dumps({"type": "step", "action": {}}),
                json.dumps({"type": "reset", "task_id": "extreme"}),
                json.dumps({"type": "reset", "task_id": "easy", "seed": 1}),
                json.dumps({"type": "step", "action": {"alert_id": "x", "action_type": "NOPE"}}),
                json.dumps({"type": "step", "action": []}),
            ):
                await ws.send(message)
                answers.append(json.loads(await ws.recv()))
            return answers

    answers = asyncio.run(asyncio.wait_for(talk(), 30))
    kinds = [a["type"] for a in answers]
    assert kinds == ["error", "error", "error", "error", "reset", "error", "step"]
    assert "malformed JSON" in answers[0]["detail"]
    assert "reset" in answers[2]["detail"]
    assert "unknown task_id" in answers[3]["detail"]
    assert answers[5]["observation"]["episode_step"] == 1  # the invalid action cost the step
    assert answers[6]["observation"]["episode_step"] == 2


def test_metrics_count_sessions_steps_and_scores(client):
    session, _ = _reset(client, "easy", seed=2)
    for _ in range(20):
        client.post("/env/step", json=[], headers={"X-Session-Id": session})
    text = client.get("/metrics").text
    assert 'alert_triage_steps_total{api="http",task="easy"}' in text
    assert 'alert_triage_episodes_total{api="http",task="easy"}' in text
    assert 'alert_triage_task_score_count{task="easy"}' in text
    assert "alert_triage_sessions_live" in text
    summary = client.get("/metrics/summary").json()
    assert summary["available"] is True
    assert summary["tasks"]["hard"]["rule"]["mean_score"] == 0.8


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
step_like = st.fixed_dictionaries(
    {},
    optional={
        "alert_id": st.text(max_size=20),
        "action_type": st.sampled_from(["INVESTIGATE", "IGNORE", "ESCALATE", "DELAY", "x", ""]),
        "metadata": json_values,
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values | step_like | st.lists(step_like, max_size=6) | st.binary(max_size=40),
    task=st.sampled_from(["easy", "hard", "nope", "%20", "../x"]),
    session_header=st.sampled_from([None, "valid", "garbage"]),
)
def test_fuzzed_requests_never_get_a_5xx(client, body, task, session_header):
    session, _ = _reset(client, "easy", seed=1)
    headers = {}
    if session_header == "valid":
        headers["X-Session-Id"] = session
    elif session_header == "garbage":
        headers["X-Session-Id"] = "garbage"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    responses = [
        client.post("/env/step", content=content, headers=headers),
        client.post(f"/env/reset/{task}", content=content),
        client.get("/env/state", headers=headers),
    ]
    for response in responses:
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert "detail" in response.json()
    made = responses[1].json().get("session_id") if responses[1].status_code == 200 else None
    for sid in (session, made):
        if sid:
            client.delete("/env/session", headers={"X-Session-Id": sid})
