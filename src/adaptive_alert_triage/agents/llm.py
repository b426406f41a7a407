"""An agent that asks a chat model what the team should do each step.

`LLMAgent` speaks to any OpenAI-compatible chat-completions endpoint through the
``openai`` package (the optional ``[llm]`` extra). Each step it sends a compact
text view of the observation, reads JSON decisions back, and checks them against
the observation and the team before the env sees them, so a model's mistake
never becomes an env error. A reply that cannot be used is retried once with the
reason; if that fails too, the step falls back to `RuleBasedAgent`. Whatever
the endpoint sends back (content that is not text, JSON nested past Python's
recursion limit) is counted as an unusable reply, never raised. Every
episode is logged as ``[START]`` / ``[STEP]`` / ``[END]`` lines on the
``adaptive_alert_triage.llm`` logger.

Configuration comes from the environment, overridable by keyword:
``API_BASE_URL`` (the endpoint; unset means the ``openai`` default),
``MODEL_NAME`` and ``OPENAI_API_KEY`` (or ``HF_TOKEN`` when that is unset).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
from collections import Counter
from typing import Any

from pydantic import ValidationError

from ..models import Action, Observation
from .single import Agent, RuleBasedAgent, TeamAwareAgent

logger = logging.getLogger("adaptive_alert_triage.llm")

ACTION_NAMES = ("INVESTIGATE", "IGNORE", "ESCALATE", "DELAY")

# Every counter `stats` and `episode_stats` carry. Each failed model attempt
# increments exactly one of the error counters.
STAT_KEYS = (
    "steps",  # act() calls
    "calls",  # requests sent to the model (first tries and retries)
    "retries",  # second requests after an unusable first one
    "llm_steps",  # steps decided by the first reply
    "retry_steps",  # steps decided by the retry reply
    "fallbacks",  # steps decided by RuleBasedAgent
    "parse_errors",  # no JSON decisions could be read from the reply
    "empty_replies",  # the reply had no content
    "illegal_replies",  # decisions that fail the Action schema or the step's rules
    "timeouts",  # the request timed out
    "api_errors",  # HTTP status and connection errors (and any other client error)
    "prompt_tokens",
    "completion_tokens",
)
# Short names of the error kinds for the [STEP] line's ``error=`` field.
_ERROR_NAMES = {
    "parse_errors": "parse",
    "empty_replies": "empty",
    "illegal_replies": "illegal",
    "timeouts": "timeout",
    "api_errors": "api",
}

SYSTEM_PROMPT = """\
You lead an IT on-call team triaging monitoring alerts. Each step you see the \
visible alert queue and decide what the team does with it.

Actions, one per alert at most:
- INVESTIGATE: an investigator works the alert; if it is real this resolves its \
incident and closes all of that incident's alerts. On a false positive it wastes \
the investigator.
- ESCALATE: the escalation desk hands the incident to specialists, who resolve it a \
few steps later while damage continues. At most one per step.
- IGNORE: drop the alert. Right for false positives; ignoring a real critical \
alert is heavily penalised.
- DELAY: leave the alert queued for later.

INVESTIGATE and ESCALATE are claims on the per-step budget K; claims beyond K are \
denied. Unhandled critical incidents grow until their service fails, and failures \
cascade to dependent services. Visible severity and confidence are noisy; several \
alerts on one service at once often belong to one incident, so one claim covers \
them. You may leave alerts undecided, or return no decisions at all.

Reply with JSON only, no prose:
{"decisions": [{"alert_id": "<id from the list>", "action_type": "INVESTIGATE"}]}"""

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_MAX_CANDIDATES = 200  # JSON start positions tried in one reply
_MAX_ECHO_CHARS = 2000  # of a bad reply, repeated back to the model on retry
_MAX_DEPTH = 32  # JSON nesting a reply may use; deeper values are not decisions
_MAX_TEMPERATURE = 2.0  # the OpenAI API's temperature range is 0..2


class ReplyError(Exception):
    """A model reply that cannot be used; ``kind`` names the stats counter."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------------- prompt
def format_observation(observation: Observation, team_size: int, investigators: int) -> str:
    """The observation as a few short lines of text: one per visible alert, plus
    the step, budget, outages and team limits the decisions must respect."""
    down = ", ".join(observation.services_down) or "none"
    lines = [
        f"step {observation.episode_step}, {observation.time_remaining} steps remaining",
        f"budget K={observation.resource_budget} claims (INVESTIGATE + ESCALATE) this step",
        f"team limits: at most {team_size} decisions, at most {investigators} INVESTIGATE, "
        f"at most 1 ESCALATE",
        f"system load {observation.system_load:.2f}; queue {observation.queue_length} alerts "
        f"({len(observation.alerts)} visible)",
        f"services down: {down}; failures so far: {observation.failures_count}",
        "alerts (oldest first): id type service severity confidence age",
    ]
    lines += [
        f"{a.id} {a.alert_type} {a.service} sev={a.visible_severity:.2f} "
        f"conf={a.confidence:.2f} age={a.age}"
        for a in observation.alerts
    ]
    return "\n".join(lines)


def _retry_prompt(problem: str, team_size: int, investigators: int) -> str:
    return (
        f"Your reply could not be used: {problem}. Reply again with only a JSON object "
        f'{{"decisions": [{{"alert_id": ..., "action_type": ...}}]}}, using alert ids from '
        f"the list, at most one decision per alert, at most {team_size} decisions, at most "
        f"{investigators} INVESTIGATE and at most 1 ESCALATE."
    )


# ---------------------------------------------------------------------- reply
def _reply_text(content: Any) -> str | None:
    """The text of a reply's ``content``, else `ReplyError` ("parse_errors").

    The ``openai`` client does not validate responses, so ``content`` is
    whatever the server sent. A string or None is used as is; a list of
    ``{"type": "text", "text": ...}`` parts (the content-part form of the
    chat API, which some compatible servers answer with) is their joined text.
    Anything else (a number, an object, a refusal part) is not a reply to read.
    """
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ReplyError(
                    "parse_errors",
                    f'content part {i} is {kind!r}, not a {{"type": "text", "text": ...}} part',
                )
            if not isinstance(part.get("text"), str):
                raise ReplyError(
                    "parse_errors",
                    f'content part {i} has "text" of type {type(part.get("text")).__name__}, '
                    "not a string",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise ReplyError("parse_errors", f"the reply content is {type(content).__name__}, not text")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects, counted without recursion
    (a model's JSON may be as deep as the decoder allows)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= _MAX_DEPTH:  # deeper is already too deep
                stack.extend((child, level + 1) for child in item)
    return deepest


def _json_candidates(text: str):
    """JSON values in ``text``: fenced blocks first, then every value that starts
    at a ``{`` or ``[`` (so prose around the JSON does not matter).

    JSON nested deeper than `_MAX_DEPTH` (or than the decoder's recursion
    limit) ends the search with a parse error: no decision list is that deep,
    and code that walks such a value later (pydantic, copies, logging) could
    raise RecursionError, which no caller expects."""
    decoder = json.JSONDecoder()
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for source in sources:
        tried = 0
        for i, ch in enumerate(source):
            if ch not in "{[":
                continue
            tried += 1
            if tried > _MAX_CANDIDATES:
                break
            try:
                value, _ = decoder.raw_decode(source, i)
                too_deep = _depth(value) > _MAX_DEPTH
            except ValueError:
                continue
            except RecursionError:
                too_deep = True
            if too_deep:
                raise ReplyError(
                    "parse_errors", f"the reply's JSON nests deeper than {_MAX_DEPTH} levels"
                )
            yield value


def _decision_list(value: Any) -> list | None:
    """The decision list a JSON value holds, or None if it holds none."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in ("decisions", "actions"):
            if isinstance(value.get(key), list):
                return value[key]
        if "alert_id" in value:  # one bare decision
            return [value]
    return None


def _to_action(item: Any, index: int) -> Action:
    if not isinstance(item, dict):
        raise ReplyError(
            "illegal_replies", f"decision {index} is {type(item).__name__}, not an object"
        )
    fields = dict(item)
    if isinstance(fields.get("action_type"), str):
        fields["action_type"] = fields["action_type"].strip().upper()
    # Keep a model's extra keys (a "reason", say) as metadata rather than failing.
    extra = {k: fields.pop(k) for k in list(fields) if k not in Action.model_fields}
    if extra:
        metadata = fields.get("metadata")
        fields["metadata"] = {**metadata, **extra} if isinstance(metadata, dict) else extra
    try:
        return Action.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "decision"
        raise ReplyError(
            "illegal_replies", f"decision {index} is invalid: {where}: {first['msg']}"
        ) from None


def check_legal(
    actions: list[Action], observation: Observation, team_size: int, investigators: int
) -> str | None:
    """Why these decisions cannot be one env step, or None if they can. The same
    rules the env enforces, checked first so an illegal reply is retried instead
    of raising there."""
    visible = {a.id for a in observation.alerts}
    seen: set[str] = set()
    for a in actions:
        if a.alert_id not in visible:
            return f"unknown alert_id {a.alert_id!r} (not in the visible alerts)"
        if a.alert_id in seen:
            return f"more than one decision for alert {a.alert_id!r}"
        seen.add(a.alert_id)
    if len(actions) > team_size:
        return f"{len(actions)} decisions, but the team has only {team_size} members"
    verbs = Counter(a.action_type for a in actions)
    if verbs["ESCALATE"] > 1:
        return f"{verbs['ESCALATE']} ESCALATE decisions; at most 1 per step"
    if verbs["INVESTIGATE"] > investigators:
        return (
            f"{verbs['INVESTIGATE']} INVESTIGATE decisions; the team has only "
            f"{investigators} investigators"
        )
    return None


def parse_decisions(
    text: Any, observation: Observation, team_size: int, investigators: int
) -> list[Action]:
    """The legal decisions in a model reply, or `ReplyError` saying what is wrong.

    Tolerant of form (code fences, surrounding prose, a bare list, lower-case
    verbs, extra keys, a list of text content parts), strict on substance:
    every decision must be a valid `Action` and together they must be one legal
    step. An empty list is legal.
    """
    text = _reply_text(text)
    if text is None or not text.strip():
        raise ReplyError("empty_replies", "the reply was empty")
    items = None
    for value in _json_candidates(text):
        items = _decision_list(value)
        if items is not None:
            break
    if items is None:
        raise ReplyError(
            "parse_errors", 'no JSON object with a "decisions" list was found in the reply'
        )
    actions = [_to_action(item, i) for i, item in enumerate(items)]
    problem = check_legal(actions, observation, team_size, investigators)
    if problem is not None:
        raise ReplyError("illegal_replies", problem)
    return actions


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# ---------------------------------------------------------------------- agent
def _temperature(value: Any) -> float:
    """``value`` as a sampling temperature in [0, 2]; a NaN or out-of-range one
    would make every request fail and the whole episode run on the fallback."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"temperature must be a number in [0, 2], got {value!r}")
    if not 0.0 <= value <= _MAX_TEMPERATURE:  # also rejects NaN and inf
        raise ValueError(
            f"temperature must be a finite number in [0, 2] (the OpenAI API's range), got {value!r}"
        )
    return float(value)


def _is_agent(value: Any) -> bool:
    """Whether ``value`` can stand in for `RuleBasedAgent` as the fallback: an
    instance (not a class) with callable ``act`` and ``reset``."""
    return not isinstance(value, type) and all(
        callable(getattr(value, name, None)) for name in ("act", "reset")
    )


class LLMAgent(TeamAwareAgent):
    """A chat model as the single decision maker, with a rule-based safety net.

    Arguments override the environment variables: ``base_url`` (``API_BASE_URL``),
    ``model`` (``MODEL_NAME``), ``api_key`` (``OPENAI_API_KEY``, else ``HF_TOKEN``).
    ``timeout`` is seconds per request; the client does not retry on its own
    (``max_retries=0``) because the agent's one retry also covers bad replies.
    ``echo=True`` also prints the log lines to stdout. ``temperature`` is a
    number in [0, 2] (the OpenAI API's range), ``max_tokens`` None or an int
    >= 1, ``fallback`` None (a `RuleBasedAgent`) or an agent instance. They are
    checked here because a bad one would otherwise show only as every request
    failing (the episode quietly played by the fallback) or as a later crash.

    Use: ``bind(env)`` so the team limits follow the env, then per episode
    ``reset(seed)`` (logs ``[START]``), per step ``act(observation)`` and, after
    ``env.step``, ``observe_result(reward, done, info)`` (logs ``[STEP]``; when
    ``done`` it also logs ``[END]``). Call ``end_episode(info)`` to end an
    episode early. `play_episode` does all of that. Without ``observe_result``,
    a step is logged with ``reward=null`` at the next ``act`` or ``reset``.

    ``stats`` counts everything since construction (keys: `STAT_KEYS`);
    ``episode_stats`` the same for the current episode.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        echo: bool = False,
        fallback: Agent | None = None,
        team_size: int = 4,
        investigators: int = 3,
    ) -> None:
        super().__init__(team_size, investigators)
        for name, value in (("model", model), ("base_url", base_url), ("api_key", api_key)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, got {value!r}")
        temperature = _temperature(temperature)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
                raise TypeError(f"max_tokens must be an int >= 1 or None, got {max_tokens!r}")
            if max_tokens < 1:
                raise ValueError(f"max_tokens must be an int >= 1 or None, got {max_tokens!r}")
            max_tokens = int(max_tokens)
        if not isinstance(echo, bool):
            raise TypeError(f"echo must be True or False, got {echo!r}")
        if fallback is not None and not _is_agent(fallback):
            raise TypeError(
                "fallback must be an agent instance (with act(observation) and reset(seed), "
                f"e.g. RuleBasedAgent()) or None, got {fallback!r}"
            )
        try:
            import openai
        except ImportError as exc:  # the optional [llm] extra
            raise ImportError(
                'LLMAgent needs the openai package: pip install "adaptive-alert-triage[llm]"'
            ) from exc
        self.model = model or os.environ.get("MODEL_NAME") or None
        if not self.model:
            raise ValueError("no model name: set MODEL_NAME or pass model=...")
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or os.environ.get("HF_TOKEN")
        if not api_key:
            raise ValueError("no API key: set OPENAI_API_KEY (or HF_TOKEN) or pass api_key=...")
        self.base_url = base_url or os.environ.get("API_BASE_URL") or None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:  # `nan <= 0` is False: test finiteness
            raise ValueError(
                f"timeout must be a positive, finite number of seconds, got {timeout!r}"
            )
        self.timeout = float(timeout)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.echo = echo
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=self.timeout, max_retries=0
        )
        self.fallback = (
            fallback
            if fallback is not None
            else RuleBasedAgent(team_size=team_size, investigators=investigators)
        )
        self.task_id: str | None = None
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.episode_stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.last_source: str | None = None  # "llm", "retry" or "fallback"
        self.last_errors: list[str] = []  # the failed attempts of the last step, by kind
        self._seed: int | None = None
        self._episode_open = False
        self._step = 0
        self._return = 0.0
        self._score: float | None = None
        self._pending: dict[str, Any] | None = None  # a step awaiting its reward

    # ------------------------------------------------------------ agent API
    def bind(self, env) -> None:
        """Size decisions to the env's team (and the fallback's too)."""
        super().bind(env)
        if hasattr(self.fallback, "bind"):
            self.fallback.bind(env)
        self.task_id = getattr(env, "task_id", None)

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: log ``[START]`` (closing any episode left open)."""
        if self._episode_open:
            self.end_episode()
        self.fallback.reset(seed)
        self._seed = seed
        self._step = 0
        self._return = 0.0
        self._score = None
        self.episode_stats = dict.fromkeys(STAT_KEYS, 0)
        self._episode_open = True
        self._emit(f"[START] task={_fmt(self.task_id)} model={self.model} seed={_fmt(seed)}")

    def act(self, observation: Observation) -> list[Action]:
        """This step's decisions: the model's if it gives legal ones within two
        tries, else the fallback's. Never raises because of the model."""
        self._flush_pending()
        self._step += 1
        self._count("steps")
        errors: list[str] = []
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": format_observation(observation, self.team_size, self.investigators),
            },
        ]
        actions: list[Action] | None = None
        source = "fallback"
        for attempt in range(2):
            if attempt:
                self._count("retries")
            reply, kind, problem = self._ask(messages)
            if kind is None:
                try:
                    actions = parse_decisions(
                        reply, observation, self.team_size, self.investigators
                    )
                except ReplyError as exc:
                    kind, problem = exc.kind, exc.message
            if kind is None:
                source = "retry" if attempt else "llm"
                break
            errors.append(kind)
            self._count(kind)
            logger.debug("step %d attempt %d: %s: %s", self._step, attempt + 1, kind, problem)
            if reply and reply.strip():
                messages = [*messages, {"role": "assistant", "content": reply[:_MAX_ECHO_CHARS]}]
            if kind not in ("timeouts", "api_errors"):  # tell the model what was wrong
                messages = [
                    *messages,
                    {
                        "role": "user",
                        "content": _retry_prompt(problem, self.team_size, self.investigators),
                    },
                ]
        if actions is None:
            self._count("fallbacks")
            actions = self._fallback(observation)
        else:
            self._count("retry_steps" if source == "retry" else "llm_steps")
        self.last_source, self.last_errors = source, errors
        self._pending = {"step": self._step, "decisions": len(actions), "source": source}
        self._pending["error"] = ",".join(_ERROR_NAMES[k] for k in errors) or None
        return actions

    def observe_result(self, reward: Any, done: bool, info: dict | None = None) -> None:
        """Report what env.step returned for the last ``act``: logs ``[STEP]``
        with the reward, and ``[END]`` when ``done``. ``reward`` is a `Reward`
        or a number."""
        value = getattr(reward, "value", reward)
        value = float(value) if value is not None else None
        if value is not None:
            self._return += value
        if info and "task_score" in info:
            self._score = float(info["task_score"])
        self._flush_pending(value, done)
        if done:
            self.end_episode(info)

    def end_episode(self, info: dict | None = None) -> None:
        """Log ``[END]`` with the score (``info["task_score"]`` if given, else the
        last one seen) and the episode's retries, fallbacks and return. Logs
        once per episode; a second call does nothing."""
        if not self._episode_open:
            return
        self._flush_pending()
        if info and "task_score" in info:
            self._score = float(info["task_score"])
        s = self.episode_stats
        self._emit(
            f"[END] steps={self._step} score={_fmt(self._score)} retries={s['retries']} "
            f"fallbacks={s['fallbacks']} return={_fmt(self._return)} calls={s['calls']}"
        )
        self._episode_open = False

    def play_episode(self, env, seed: int | None = None) -> dict[str, Any]:
        """Play one whole episode on ``env`` with logging; returns its ``score``,
        ``return``, ``steps`` and ``stats`` (this episode's counters)."""
        self.bind(env)
        observation = env.reset(seed=seed)
        self.reset(seed)
        done, info = False, {}
        while not done:
            actions = self.act(observation)
            observation, reward, done, info = env.step(actions)
            self.observe_result(reward, done, info)
        self.end_episode(info)
        return {
            "score": float(info["task_score"]),
            "return": self._return,
            "steps": self._step,
            "stats": dict(self.episode_stats),
        }

    # ------------------------------------------------------------ helpers
    def _ask(self, messages: list[dict]) -> tuple[str | None, str | None, str]:
        """One request: ``(reply text, error kind or None, problem)``; the text
        is a str (or None), whatever type of content the server sent."""
        self._count("calls")
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        openai = self._openai
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            return None, "timeouts", f"no reply within {self.timeout:g} s"
        except openai.APIStatusError as exc:
            return None, "api_errors", f"HTTP {exc.status_code} from the endpoint"
        except openai.APIError as exc:
            return None, "api_errors", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # never let the client take the episode down
            return None, "api_errors", f"{type(exc).__name__}: {exc}"
        try:
            usage = response.usage
            if usage is not None:
                self._count("prompt_tokens", usage.prompt_tokens or 0)
                self._count("completion_tokens", usage.completion_tokens or 0)
            content = response.choices[0].message.content if response.choices else None
        except (AttributeError, IndexError, TypeError) as exc:
            return None, "api_errors", f"malformed response: {exc}"
        try:
            return _reply_text(content), None, ""
        except ReplyError as exc:  # content that is not text: the model's error
            return None, exc.kind, exc.message

    def _fallback(self, observation: Observation) -> list[Action]:
        result = self.fallback.act(observation)
        actions = [result] if isinstance(result, Action) else list(result)
        if check_legal(actions, observation, self.team_size, self.investigators) is not None:
            return []  # the team waits rather than send an illegal step
        return actions

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] += n
        self.episode_stats[key] += n

    def _flush_pending(self, reward: float | None = None, done: bool = False) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._emit(
            f"[STEP] step={pending['step']} decisions={pending['decisions']} "
            f"source={pending['source']} reward={_fmt(reward)} done={_fmt(done)} "
            f"error={_fmt(pending['error'])}"
        )

    def _emit(self, line: str) -> None:
        logger.info(line)
        if self.echo:
            print(line, flush=True)
