"""Bad input to the whole server (`create_server_app` on a real uvicorn on
loopback): every face answers a 4xx JSON error with a ``detail``, or an error
message on a socket that stays open. Never a 5xx, a dropped socket, a crash at
startup, or garbage silently read as something else."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from adaptive_alert_triage.server import create_server_app
from adaptive_alert_triage.server.openenv_env import TASK_IDS

from .server_utils import LiveServer

LIMIT = 1 << 20  # the server's default body limit


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(create_server_app(max_sessions=8, results_path=None))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def strict_json(response: httpx.Response) -> Any:
    """The body as strict JSON: a NaN or Infinity literal in it is a failure."""

    def refuse(literal: str) -> Any:
        raise AssertionError(f"non-standard JSON literal {literal} in {response.text[:300]}")

    return json.loads(response.text, parse_constant=refuse)


def error_detail(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = strict_json(response)
    assert body["detail"], body
    return body["detail"]


def ws_call(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    ws.send(json.dumps(message))
    return json.loads(ws.recv(timeout=20))


def post_raw(client: httpx.Client, path: str, raw: str | bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


# --------------------------------------------------------------------------- task ids
@pytest.mark.parametrize("task_id", [["easy"], {"a": 1}, 3, True])
def test_a_task_id_that_is_not_a_string_is_a_clear_error_everywhere(http, server, task_id):
    assert http.post("/reset", json={"task_id": "hard", "seed": 3}).status_code == 200
    before = http.get("/state").json()

    detail = error_detail(http.post("/reset", json={"task_id": task_id, "seed": 0}), 422)
    assert repr(task_id) in detail and all(repr(t) in detail for t in TASK_IDS), detail
    assert http.get("/state").json() == before  # the current episode is untouched

    with connect(f"{server.ws_url}/ws") as ws:
        reply = ws_call(ws, {"type": "reset", "data": {"task_id": task_id}})
        assert reply["type"] == "error", reply
        message = reply["data"]["message"]
        assert "unknown task_id" in message and repr(task_id) in message, message
        assert ws_call(ws, {"type": "reset", "data": {"task_id": "easy"}})["type"] == "observation"

    with connect(f"{server.ws_url}/ws/train") as ws:
        reply = ws_call(ws, {"type": "reset", "task_id": task_id})
        assert reply["type"] == "error" and repr(task_id) in reply["detail"], reply
        assert all(repr(t) in reply["detail"] for t in TASK_IDS)
        assert ws_call(ws, {"type": "reset", "task_id": "easy", "seed": 1})["type"] == "reset"


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("seed", [True, "1", 1.0, -1])
def test_every_face_refuses_a_seed_that_is_not_a_non_negative_int(http, server, seed):
    assert "seed" in str(error_detail(http.post("/reset", json={"seed": seed}), 422))
    assert "seed" in error_detail(http.post("/env/reset/easy", json={"seed": seed}), 422)
    with connect(f"{server.ws_url}/ws") as ws:
        reply = ws_call(ws, {"type": "reset", "data": {"seed": seed}})
        assert reply["type"] == "error" and "seed" in reply["data"]["message"], reply
    with connect(f"{server.ws_url}/ws/train") as ws:
        reply = ws_call(ws, {"type": "reset", "seed": seed})
        assert reply["type"] == "error" and "seed" in reply["detail"], reply
    # The same seed as an int is fine on OpenEnv's /reset.
    r = http.post("/reset", json={"seed": 1})
    assert r.status_code == 200 and http.get("/state").json()["seed"] == 1


# --------------------------------------------------------------------------- /ws/train
def test_ws_train_answers_bad_reset_messages_and_keeps_the_socket(server):
    with connect(f"{server.ws_url}/ws/train") as ws:
        for message, fragment in (
            ({"type": "reset", "task_id": ["x"]}, "['x']"),
            ({"type": "reset", "task_id": {"a": 1}}, "{'a': 1}"),
            ({"type": "reset", "task_id": "easy", "extra": 1}, "extra"),
            ({"type": "reset", "task_id": "easy", "sed": 4}, "sed"),
        ):
            reply = ws_call(ws, message)
            assert reply["type"] == "error" and fragment in reply["detail"], reply
            assert "observation" not in reply  # a bad reset takes no step
        reply = ws_call(ws, {"type": "reset", "task_id": "easy", "seed": 4})
        assert reply["type"] == "reset" and reply["observation"]["episode_step"] == 0
        step = ws_call(ws, {"type": "step", "action": []})
        assert step["type"] == "step" and step["observation"]["episode_step"] == 1


# --------------------------------------------------------------------------- NaN, Infinity
@pytest.mark.parametrize(
    "raw",
    [
        '{"action": {"alert_id": NaN, "action_type": "IGNORE"}}',
        '{"action": {"decisions": [Infinity]}}',
        '{"action": {"decisions": [{"alert_id": "a", "action_type": -Infinity}]}}',
        '{"action": {"decisions": [{"alert_id": "a", "action_type": "IGNORE", "x": NaN}]}}',
        '{"action": {"decisions": NaN}}',
    ],
)
def test_a_non_finite_number_in_an_action_is_a_422(http, raw):
    assert http.post("/reset", json={"task_id": "easy", "seed": 2}).status_code == 200
    detail = error_detail(post_raw(http, "/step", raw), 422)
    assert isinstance(detail, list) and all("input" not in e for e in detail), detail
    assert http.get("/state").json()["step_count"] == 0  # nothing was stepped


_non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
_json_values = st.recursive(
    _non_finite
    | st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["IGNORE", "INVESTIGATE", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["alert_id", "action_type", "decisions", "k"]), inner)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["alert_id", "action_type", "decisions", "metadata"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(["/step", "/reset"]),
    field=st.sampled_from(["action", "seed", "task_id", "episode_id", "options"]),
    value=st.dictionaries(_keys, _json_values, min_size=1) | _json_values,
)
def test_a_non_finite_number_anywhere_never_gets_a_5xx(http, route, field, value):
    assume(any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(value)))
    raw = json.dumps({"action": {}, field: value} if route == "/step" else {field: value})
    r = post_raw(http, route, raw)
    assert r.status_code < 500, (raw, r.status_code, r.text)
    body = strict_json(r)  # no NaN or Infinity echoed back
    if r.status_code >= 400:
        assert body["detail"], body
    else:
        assert "observation" in body


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


# --------------------------------------------------------------------------- body limit
def _stream(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of a JSON object, sent chunked (no Content-Length)."""
    yield b'{"pad": "'
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield b"x" * n
        sent += n
    yield b'"}'


@pytest.mark.parametrize("path", ["/reset", "/step", "/env/reset/easy", "/ingest/alerts"])
def test_a_streamed_body_over_the_limit_is_a_413_on_every_route(http, path):
    r = http.post(path, content=_stream(LIMIT + 1000), headers={"content-type": "application/json"})
    assert "over the limit" in error_detail(r, 413)


def test_a_streamed_body_under_the_limit_still_reaches_the_route(http):
    def chunks(payload: dict[str, Any]) -> Iterator[bytes]:
        text = json.dumps(payload).encode()
        yield from (text[i : i + 7] for i in range(0, len(text), 7))

    headers = {"content-type": "application/json"}
    r = http.post("/reset", content=chunks({"task_id": "medium", "seed": 5}), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["observation"]["task_id"] == "medium"
    r = http.post("/step", content=chunks({"action": {"decisions": []}}), headers=headers)
    assert r.status_code == 200 and r.json()["observation"]["episode_step"] == 1, r.text


# --------------------------------------------------------------------------- startup
def test_serve_with_an_empty_db_path_exits_with_a_one_line_error():
    done = subprocess.run(
        [sys.executable, "-m", "adaptive_alert_triage.cli", "serve", "--db", "", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("alert-triage serve: error:") and "--db" in lines[0]
