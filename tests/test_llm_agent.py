"""LLMAgent against a real OpenAI-compatible HTTP server on loopback.

The server is scripted with a queue of replies, each built from the alert ids
in the prompt the agent actually sent, so the real ``openai`` client, the
agent's parsing, retry and fallback all run as they would against a model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adaptive_alert_triage.agents.llm import LLMAgent, ReplyError, parse_decisions
from adaptive_alert_triage.agents.single import RuleBasedAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.models import Action

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 0.5  # the agent's per-request timeout in these tests
SLOW = 1.0  # how long a "slow" reply takes: past the timeout


@dataclass
class Reply:
    content: Any = None  # sent as the message's "content", whatever its JSON type
    status: int = 200
    delay: float = 0.0


Script = Callable[[list[str]], Reply]


def decisions(*pairs: tuple[str, str]) -> str:
    return json.dumps({"decisions": [{"alert_id": i, "action_type": t} for i, t in pairs]})


def valid(ids: list[str]) -> Reply:
    """The canned good reply: investigate the oldest alert, ignore the next."""
    pairs = [(ids[0], "INVESTIGATE")] + [(i, "IGNORE") for i in ids[1:2]]
    return Reply(decisions(*pairs))


def expected_valid(observation) -> list[tuple[str, str]]:
    ids = [a.id for a in observation.alerts]
    return [(ids[0], "INVESTIGATE")] + [(i, "IGNORE") for i in ids[1:2]]


def garbage(ids: list[str]) -> Reply:
    return Reply("I think you should look at the CPU alert first, then maybe the disk one.")


def empty(ids: list[str]) -> Reply:
    return Reply("")


def unknown_id(ids: list[str]) -> Reply:
    return Reply(decisions(("ffffffffffffffff", "INVESTIGATE")))


def two_escalates(ids: list[str]) -> Reply:
    return Reply(decisions((ids[0], "ESCALATE"), (ids[1], "ESCALATE")))


def three_investigates(ids: list[str]) -> Reply:  # easy has two investigators
    return Reply(decisions(*[(i, "INVESTIGATE") for i in ids[:3]]))


def server_error(ids: list[str]) -> Reply:
    return Reply(status=500)


def slow(ids: list[str]) -> Reply:
    return Reply(decisions((ids[0], "INVESTIGATE")), delay=SLOW)


class FakeChatServer:
    """``POST /v1/chat/completions`` on 127.0.0.1, answering from ``script``
    (then with `valid` once it runs out) and recording every request body."""

    def __init__(self) -> None:
        self.script: deque[Script] = deque()
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found", "type": "not_found"}})
                    return
                prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
                ids = re.findall(r"^([0-9a-f]{16}) ", prompt, re.MULTILINE)
                reply = (fake.script.popleft() if fake.script else valid)(ids)
                time.sleep(reply.delay)
                if reply.status != 200:
                    error = {"message": "scripted failure", "type": "server_error"}
                    self._send(reply.status, {"error": error})
                    return
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": 100,
                            "completion_tokens": 10,
                            "total_tokens": 110,
                        },
                    },
                )

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    fake = FakeChatServer()
    yield fake
    fake.close()


@pytest.fixture
def chat(server, monkeypatch) -> FakeChatServer:
    """The server, emptied, with the agent's environment variables pointing at it."""
    server.script.clear()
    server.requests.clear()
    monkeypatch.setenv("API_BASE_URL", server.base_url)
    monkeypatch.setenv("MODEL_NAME", "fake-model")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return server


@pytest.fixture
def env() -> AdaptiveAlertTriageEnv:
    return AdaptiveAlertTriageEnv("easy")


@pytest.fixture
def agent(chat, env) -> LLMAgent:
    agent = LLMAgent(timeout=TIMEOUT)
    agent.bind(env)
    agent.reset(seed=3)
    return agent


@pytest.fixture
def observation(env):
    """An observation with at least three visible alerts (the team waits until then)."""
    obs = env.reset(seed=3)
    while len(obs.alerts) < 3:
        obs, _, _, _ = env.step([])
    return obs


def pairs(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.alert_id, a.action_type) for a in actions]


# ---------------------------------------------------------------------- replies
def test_a_valid_reply_is_used(agent, chat, observation):
    actions = agent.act(observation)
    assert pairs(actions) == expected_valid(observation)
    assert agent.last_source == "llm"
    assert agent.stats["calls"] == 1 and agent.stats["llm_steps"] == 1
    assert agent.stats["retries"] == agent.stats["fallbacks"] == 0
    assert agent.stats["prompt_tokens"] == 100
    (request,) = chat.requests
    assert request["model"] == "fake-model"
    assert request["temperature"] == 0
    prompt = request["messages"][1]["content"]
    for a in observation.alerts:
        assert a.id in prompt and a.service in prompt
    assert "at most 3 decisions, at most 2 INVESTIGATE" in prompt  # easy's team, from bind


@pytest.mark.parametrize(
    "content",
    [
        'Here you go:\n```json\n{"decisions": [{"alert_id": "ID0", "action_type": "DELAY"}]}\n```',
        'Sure! {"decisions": [{"alert_id": "ID0", "action_type": "DELAY"}]} Hope that helps.',
        '[{"alert_id": "ID0", "action_type": "DELAY"}]',
        '{"decisions": [{"alert_id": "ID0", "action_type": "delay", "reason": "looks minor"}]}',
    ],
    ids=["fenced", "prose", "bare-list", "lowercase-with-reason"],
)
def test_tolerant_forms_of_a_reply(agent, chat, observation, content):
    chat.script.append(lambda ids: Reply(content.replace("ID0", ids[0])))
    actions = agent.act(observation)
    assert pairs(actions) == [(observation.alerts[0].id, "DELAY")]
    assert agent.last_source == "llm"


def test_an_empty_decision_list_is_legal(agent, chat, observation):
    chat.script.append(lambda ids: Reply('{"decisions": []}'))
    assert agent.act(observation) == []
    assert agent.last_source == "llm"


def test_a_malformed_reply_is_retried_and_the_retry_used(agent, chat, observation):
    ids = [a.id for a in observation.alerts]
    chat.script.extend([garbage, lambda ids: Reply(decisions((ids[2], "ESCALATE")))])
    actions = agent.act(observation)
    assert pairs(actions) == [(ids[2], "ESCALATE")]
    assert agent.last_source == "retry"
    assert agent.stats["retries"] == 1 and agent.stats["parse_errors"] == 1
    assert agent.stats["calls"] == 2 and agent.stats["fallbacks"] == 0
    retry = chat.requests[1]["messages"]
    assert retry[-2]["role"] == "assistant" and "CPU alert" in retry[-2]["content"]
    assert retry[-1]["role"] == "user" and "could not be used" in retry[-1]["content"]


def test_two_malformed_replies_fall_back_to_the_rule_based_agent(agent, chat, env, observation):
    chat.script.extend([garbage, garbage])
    actions = agent.act(observation)
    rules = RuleBasedAgent()
    rules.bind(env)
    assert pairs(actions) == pairs(rules.act(observation))
    assert agent.last_source == "fallback"
    assert agent.last_errors == ["parse_errors", "parse_errors"]
    assert agent.stats["fallbacks"] == 1 and agent.stats["parse_errors"] == 2
    assert agent.episode_stats["fallbacks"] == 1


@pytest.mark.parametrize(
    ("first", "counter", "told"),
    [
        (empty, "empty_replies", "empty"),
        (unknown_id, "illegal_replies", "unknown alert_id"),
        (two_escalates, "illegal_replies", "ESCALATE"),
        (three_investigates, "illegal_replies", "only 2 investigators"),
        (server_error, "api_errors", None),
        (slow, "timeouts", None),
    ],
    ids=["empty", "unknown-id", "two-escalates", "too-many-investigates", "http-500", "timeout"],
)
def test_a_bad_first_reply_is_survived_and_counted(agent, chat, observation, first, counter, told):
    chat.script.extend([first, valid])
    actions = agent.act(observation)
    assert pairs(actions) == expected_valid(observation)
    assert agent.last_source == "retry"
    assert agent.stats[counter] == 1 and agent.stats["retries"] == 1
    last = chat.requests[-1]["messages"][-1]["content"]
    if told is None:  # nothing for the model to learn: the same request again
        assert chat.requests[-1]["messages"] == chat.requests[0]["messages"]
    else:
        assert told in last


def test_an_error_and_a_timeout_fall_back(agent, chat, env, observation, caplog):
    caplog.set_level(logging.INFO, logger="adaptive_alert_triage.llm")
    chat.script.extend([server_error, slow])
    started = time.monotonic()
    actions = agent.act(observation)
    assert time.monotonic() - started < TIMEOUT + 0.4  # no hidden client retries
    rules = RuleBasedAgent()
    rules.bind(env)
    assert pairs(actions) == pairs(rules.act(observation))
    assert agent.stats["api_errors"] == 1 and agent.stats["timeouts"] == 1
    assert agent.stats["fallbacks"] == 1
    agent.observe_result(0.0, False, {})
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[STEP]")]
    assert "source=fallback" in line and "error=api,timeout" in line


def test_a_list_of_text_parts_is_read_as_its_joined_text(agent, chat, observation):
    """The chat API's content-part form, ``[{"type": "text", "text": ...}]``,
    which some OpenAI-compatible servers answer with."""

    def parts(ids: list[str]) -> Reply:
        text = valid(ids).content
        half = len(text) // 2
        return Reply([{"type": "text", "text": text[:half]}, {"type": "text", "text": text[half:]}])

    chat.script.append(parts)
    actions = agent.act(observation)
    assert pairs(actions) == expected_valid(observation)
    assert agent.last_source == "llm" and agent.stats["parse_errors"] == 0


@pytest.mark.parametrize(
    ("content", "counter"),
    [
        (123, "parse_errors"),
        (1.5, "parse_errors"),
        (True, "parse_errors"),
        ({"decisions": []}, "parse_errors"),
        ([{"type": "refusal", "refusal": "I cannot help with that."}], "parse_errors"),
        (["a bare string part"], "parse_errors"),
        ([{"type": "text", "text": 42}], "parse_errors"),
        ([], "empty_replies"),
        ([{"type": "text", "text": "  "}], "empty_replies"),
    ],
    ids=["int", "float", "bool", "object", "refusal", "str-part", "int-text", "no-parts", "blank"],
)
def test_content_that_is_not_text_is_counted_retried_and_falls_back(
    agent, chat, env, observation, content, counter
):
    chat.script.extend([lambda ids: Reply(content)] * 2)
    actions = agent.act(observation)
    rules = RuleBasedAgent()
    rules.bind(env)
    assert pairs(actions) == pairs(rules.act(observation))
    assert agent.last_source == "fallback" and agent.last_errors == [counter, counter]
    assert agent.stats[counter] == 2 and agent.stats["retries"] == 1
    assert "could not be used" in chat.requests[1]["messages"][-1]["content"]
    env.step(actions)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000,
        '{"decisions": ' + "[" * 100_000,
        # decodable, but deep enough to trouble whatever walks the metadata later
        '{"decisions": [{"alert_id": "ID0", "action_type": "DELAY", "reason": '
        + "[" * 500
        + "]" * 500
        + "}]}",
    ],
    ids=["open-brackets", "very-deep", "deep-extra-key"],
)
def test_deeply_nested_json_is_a_parse_error(agent, chat, env, observation, text):
    chat.script.extend([lambda ids: Reply(text.replace("ID0", ids[0]))] * 2)
    actions = agent.act(observation)
    assert agent.last_source == "fallback"
    assert agent.last_errors == ["parse_errors", "parse_errors"]
    assert "nests deeper than" in chat.requests[1]["messages"][-1]["content"]
    env.step(actions)
    with pytest.raises(ReplyError) as info:
        parse_decisions(text.replace("ID0", observation.alerts[0].id), observation, 3, 2)
    assert info.value.kind == "parse_errors"


def test_illegal_replies_never_reach_the_env(agent, chat, env, observation):
    chat.script.extend([two_escalates, unknown_id])
    actions = agent.act(observation)
    assert agent.last_source == "fallback" and agent.stats["illegal_replies"] == 2
    env.step(actions)  # legal: no ValueError


# ---------------------------------------------------------------------- episodes
def test_a_full_episode_is_played_and_logged(chat, env, caplog):
    """Seed 2 opens with three alerts, so the first valid reply decides two."""
    caplog.set_level(logging.INFO, logger="adaptive_alert_triage.llm")
    chat.script.extend([garbage, valid, server_error, garbage])
    agent = LLMAgent(timeout=TIMEOUT)
    result = agent.play_episode(env, seed=2)
    assert 0.0 <= result["score"] <= 1.0
    assert result["steps"] == env.state().episode_step
    assert result["stats"]["retries"] == 2 and result["stats"]["fallbacks"] == 1
    assert result["stats"]["llm_steps"] == result["steps"] - 2
    lines = [r.getMessage() for r in caplog.records if r.name == "adaptive_alert_triage.llm"]
    assert lines[0] == "[START] task=easy model=fake-model seed=2"
    steps = [line for line in lines if line.startswith("[STEP]")]
    assert len(steps) == result["steps"]
    assert steps[0].startswith("[STEP] step=1 decisions=2 source=retry reward=")
    assert steps[0].endswith("done=false error=parse")
    assert "source=fallback" in steps[1] and steps[1].endswith("error=api,parse")
    assert steps[-1].split()[5] == "done=true"
    assert lines[-1] == (
        f"[END] steps={result['steps']} score={result['score']:.3f} retries=2 fallbacks=1 "
        f"return={result['return']:.3f} calls={result['stats']['calls']}"
    )
    assert sum(line.startswith("[END]") for line in lines) == 1


def test_echo_prints_the_log_lines(chat, env, capsys):
    agent = LLMAgent(timeout=TIMEOUT, echo=True)
    agent.bind(env)
    obs = env.reset(seed=1)
    agent.reset(seed=1)
    obs, reward, done, info = env.step(agent.act(obs))
    agent.observe_result(reward, done, info)
    agent.end_episode(info)
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["[START]", "[STEP]", "[END]"]
    assert "steps=1 " in out[2] and "source=llm" in out[1]


def test_bind_follows_the_env_team(chat):
    agent = LLMAgent(timeout=TIMEOUT)
    hard = AdaptiveAlertTriageEnv("hard")
    agent.bind(hard)
    assert (agent.team_size, agent.investigators) == (5, 4)
    assert (agent.fallback.team_size, agent.fallback.investigators) == (5, 4)


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (float("nan"), ValueError),  # `nan <= 0` is False, so a sign test alone lets it in
        (float("inf"), ValueError),
        (0, ValueError),
        (-1.5, ValueError),
        ("30", TypeError),
        (True, TypeError),
    ],
)
def test_timeout_must_be_a_positive_finite_number(timeout, error):
    with pytest.raises(error, match="timeout must be a positive") as raised:
        LLMAgent(model="m", api_key="k", timeout=timeout)
    assert repr(timeout) in str(raised.value)
    assert LLMAgent(model="m", api_key="k", timeout=2).timeout == 2.0


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("temperature", float("nan"), ValueError),  # every request would fail
        ("temperature", float("inf"), ValueError),
        ("temperature", -1, ValueError),
        ("temperature", 2.5, ValueError),  # the OpenAI API allows 0..2
        ("temperature", "0.5", TypeError),
        ("temperature", True, TypeError),
        ("temperature", None, TypeError),
        ("max_tokens", -5, ValueError),
        ("max_tokens", 0, ValueError),
        ("max_tokens", "many", TypeError),
        ("max_tokens", 1.5, TypeError),
        ("max_tokens", True, TypeError),
        ("model", 5, TypeError),
        ("base_url", 5, TypeError),
        ("api_key", 5, TypeError),
        ("echo", "no", TypeError),
        ("echo", 1, TypeError),
        ("fallback", "rule", TypeError),
        ("fallback", 5, TypeError),
        ("fallback", RuleBasedAgent, TypeError),  # the class, not an agent
    ],
)
def test_bad_settings_are_rejected_at_construction(name, value, error):
    kwargs = {"model": "m", "api_key": "k", name: value}
    with pytest.raises(error, match=name) as raised:
        LLMAgent(**kwargs)
    assert repr(value) in str(raised.value)


def test_good_settings_are_kept():
    fallback = RuleBasedAgent()
    agent = LLMAgent(model="m", api_key="k", temperature=2, max_tokens=1, fallback=fallback)
    assert agent.temperature == 2.0 and isinstance(agent.temperature, float)
    assert agent.max_tokens == 1 and agent.fallback is fallback
    assert LLMAgent(model="m", api_key="k", temperature=0, max_tokens=None).temperature == 0.0


def test_missing_model_or_key_is_a_clear_error(chat, monkeypatch):
    monkeypatch.delenv("MODEL_NAME")
    with pytest.raises(ValueError, match="MODEL_NAME"):
        LLMAgent()
    monkeypatch.setenv("MODEL_NAME", "fake-model")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        LLMAgent()


def test_hf_token_is_the_key_when_openai_api_key_is_unset(chat, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("HF_TOKEN", "hf-secret")
    assert LLMAgent().client.api_key == "hf-secret"


def test_keyword_arguments_override_the_environment(chat, monkeypatch, env, observation):
    monkeypatch.setenv("API_BASE_URL", "http://127.0.0.1:9/nowhere")
    agent = LLMAgent(
        model="other-model",
        base_url=chat.base_url,
        timeout=TIMEOUT,
        temperature=0.7,
        max_tokens=64,
    )
    agent.bind(env)
    agent.act(observation)
    assert agent.last_source == "llm"
    assert chat.requests[0]["model"] == "other-model"
    assert chat.requests[0]["temperature"] == 0.7
    assert chat.requests[0]["max_tokens"] == 64


def test_without_openai_the_error_says_what_to_install(chat, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"adaptive-alert-triage\[llm\]"):
        LLMAgent()


# ---------------------------------------------------------------------- parsing
def test_parse_decisions_keeps_extra_keys_as_metadata(observation):
    alert = observation.alerts[0].id
    text = json.dumps([{"alert_id": alert, "action_type": "Ignore", "reason": "noise"}])
    (action,) = parse_decisions(text, observation, team_size=3, investigators=2)
    assert action == Action(alert_id=alert, action_type="IGNORE", metadata={"reason": "noise"})


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("   ", "empty_replies"),
        ("no json here", "parse_errors"),
        ('{"answer": 42}', "parse_errors"),
        ('{"decisions": [{"alert_id": "ID0", "action_type": "REBOOT"}]}', "illegal_replies"),
        ('{"decisions": ["ID0"]}', "illegal_replies"),
        (
            '{"decisions": [{"alert_id": "ID0", "action_type": "DELAY"},'
            ' {"alert_id": "ID0", "action_type": "IGNORE"}]}',
            "illegal_replies",
        ),
    ],
    ids=["blank", "prose", "no-decisions", "unknown-verb", "not-an-object", "duplicate"],
)
def test_parse_decisions_rejects(observation, text, kind):
    with pytest.raises(ReplyError) as info:
        parse_decisions(text.replace("ID0", observation.alerts[0].id), observation, 3, 2)
    assert info.value.kind == kind


def test_the_example_plays_against_the_server(chat):
    """`examples/llm_agent.py` as a user runs it, in its own process."""
    chat.script.extend([garbage, garbage])  # the first step falls back
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "llm_agent.py"), "--task", "easy", "--seed", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[START] task=easy model=fake-model seed=2"
    assert "source=fallback" in lines[1]
    assert any(line.startswith("[END] steps=20 ") for line in lines)
    assert lines[-2].startswith("easy: mean score ")


def _example():
    """`examples/llm_agent.py` as a module, to call its main() in-process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("llm_agent", ROOT / "examples" / "llm_agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "told"),
    [
        (["--seed", "-5"], "--seed: must be a non-negative integer"),
        (["--seed", "x"], "--seed: must be a non-negative integer"),
        (["--timeout", "nan"], "--timeout: must be a positive, finite number"),
        (["--timeout", "0"], "--timeout: must be a positive, finite number"),
    ],
)
def test_the_example_rejects_bad_arguments_with_a_usage_error(chat, capsys, argv, told):
    with pytest.raises(SystemExit) as exited:
        _example().main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert told in err and "usage:" in err
    assert "MODEL_NAME" not in err  # the configuration is fine: no hint about it
    assert chat.requests == []


def test_the_example_hints_at_the_variables_only_when_they_are_missing(chat, monkeypatch, capsys):
    monkeypatch.delenv("MODEL_NAME")
    assert _example().main([]) == 2
    err = capsys.readouterr().err
    assert "no model name" in err and "Set MODEL_NAME and OPENAI_API_KEY" in err


def test_evaluate_runs_the_llm_agent(chat, tmp_path):
    from adaptive_alert_triage.evaluation import evaluate

    results = evaluate(["llm", "rule"], ["easy"], episodes=2, seed=0)
    rows = {r["agent"]: r for r in results["summary"]}
    assert rows["llm"]["episodes"] == 2 and 0.0 <= rows["llm"]["mean_score"] <= 1.0
    assert len(chat.requests) == 2 * 20  # one call per step, no retries needed
