"""The OpenEnv protocol face: ``/reset``, ``/step``, ``/state``, ``/schema``,
``/metadata``, ``/health`` and the ``/ws`` session socket, built with
``openenv.core.create_app`` around `AdaptiveAlertTriageEnv`.

Types
    `AlertTriageAction` (a list of ``{alert_id, action_type}`` decisions, or one
    decision), `AlertTriageObservation` (the visible alerts and system status,
    ``reward``, ``done``, the running ``task_score`` and the public part of the
    step's info) and `AlertTriageState` (``episode_id``, ``step_count``,
    ``task_id``, ``seed``, ``task_score``, ...). None of them carries hidden truth:
    no true severities, false-positive flags, incidents or correlation groups. A
    decision's ``outcome`` and ``correct`` are reported after the fact, as the
    Python API's info does; the reward reveals as much.

Sessions
    Every ``/ws`` socket gets its own `AlertTriageEnvironment`, up to
    ``max_concurrent_envs`` at once (OpenEnv's session cap: a socket beyond it is
    answered with an error frame of code ``CAPACITY_REACHED`` and closed). Sessions
    share nothing.

    OpenEnv 0.10 builds a fresh environment for every plain HTTP request, which
    would make ``/step`` and ``/state`` useless over HTTP. Instances built while
    serving an HTTP request therefore act on the app's *HTTP episodes* instead:
    ``POST /reset`` starts one (under the given ``episode_id``, or a new uuid) and
    makes it current; ``POST /step`` steps the current one, or the one named by an
    ``episode_id`` field in the request body; ``GET /state`` reports the current
    one. The app keeps the ``max_concurrent_envs`` most recently used HTTP
    episodes. Use ``/ws`` (or `AlertTriageClient`) when several agents play at once.

Errors
    Bad requests raise an `AlertTriageError` and change nothing: the episode does
    not advance and ``step_count`` does not move. The app maps them to a 4xx JSON
    ``{"detail": ...}`` over HTTP; over ``/ws`` OpenEnv answers with its error
    envelope ``{"type": "error", "data": {"message": ..., "code":
    "EXECUTION_ERROR"}}`` and keeps the session open. Actions that fail the
    `AlertTriageAction` schema (a bad ``action_type``, a missing field) are
    rejected by OpenEnv before the environment sees them: 422 over HTTP,
    ``VALIDATION_ERROR`` over ``/ws``.

    * 422 `InvalidActionError`: an alert id not in the current observation, two
      decisions for one alert, more decisions than the team can make.
    * 422 `InvalidRequestError`: an unknown task (any ``task_id`` that is not
      one of the task names, a list or an object too), a bad seed, an unknown
      reset option. Over HTTP a ``seed`` that is not an int (``true``, ``"1"``,
      ``1.0``) is refused by the body model (`StrictResetRequest`) instead, with
      FastAPI's list of errors as the detail.
    * 409 `NoEpisodeError`: a step before any reset.
    * 409 `EpisodeDoneError`: a step after the episode ended (reset to play again).
    * 404 `UnknownEpisodeError`: a step naming an HTTP episode the app does not hold.
    * 404 `UnknownSplitError`: a task-API request for a split other than ``test``.

    An error's detail never echoes the request's values as JSON (a NaN in an
    action would make it unencodable): validation errors keep ``loc``, ``msg``
    and ``type`` only (`wire.validation_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from importlib import metadata as importlib_metadata
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from openenv.core import Action, Environment, Observation, State, create_app
from openenv.core.env_server.types import EnvironmentMetadata, ResetRequest
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..env import AdaptiveAlertTriageEnv, live_alerts_option
from ..models import Action as TriageAction
from ..models import ActionTypeName, Alert
from ..sim.config import get_task
from ..tasks import GRADERS
from . import wire

logger = logging.getLogger(__name__)

ENV_NAME = "adaptive-alert-triage"
TASK_IDS: tuple[str, ...] = tuple(GRADERS)
TASK_SPLIT = "test"
TASK_NAMES = {
    "easy": "Basic Alert Prioritisation",
    "medium": "Resource-Constrained Triage",
    "hard": "Cascading Failures Prevention",
}
TASK_SCORING = {
    "easy": "correct decisions / (graded decisions + critical incidents seen and never "
    "decided + failures of incidents seen)",
    "medium": "weighted resolved alerts x resource efficiency",
    "hard": "(prevented failures - system instability penalty) / max possible; "
    "an episode ended by the failure threshold does not pass",
}
# Fields of the info's per-decision records that an agent may see.
PUBLIC_DECISION_FIELDS = ("alert_id", "action_type", "status", "reason", "outcome", "correct")
RESET_OPTIONS = ("seed", "episode_id", "task_id", "split", "index", "options")
STEP_OPTIONS = ("timeout_s", "request_id", "episode_id")

EventHook = Callable[[str, dict[str, Any]], None]


def _package_version() -> str:
    try:
        return importlib_metadata.version("adaptive-alert-triage")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0.0.0"


# --------------------------------------------------------------------------- errors
class AlertTriageError(Exception):
    """A request the environment refuses; nothing changed. ``status_code`` is the
    HTTP status the app answers with."""

    status_code = 400

    @property
    def detail(self) -> str:
        return str(self)


class InvalidActionError(AlertTriageError, ValueError):
    status_code = 422


class InvalidRequestError(AlertTriageError, ValueError):
    status_code = 422


class NoEpisodeError(AlertTriageError, RuntimeError):
    status_code = 409


class EpisodeDoneError(AlertTriageError, RuntimeError):
    status_code = 409


class UnknownEpisodeError(AlertTriageError, LookupError):
    status_code = 404


class UnknownSplitError(AlertTriageError, LookupError):
    status_code = 404


# --------------------------------------------------------------------------- types
class TriageDecision(BaseModel):
    """One decision on one visible alert."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str = Field(min_length=1, max_length=64, description="an id from observation.alerts")
    action_type: ActionTypeName


class AlertTriageAction(Action):
    """One time step of decisions, at most one per alert. An empty list lets the
    step pass with no decision. A single decision may be given directly:
    ``{"alert_id": ..., "action_type": ...}``."""

    decisions: list[TriageDecision] = Field(default_factory=list, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _one_decision(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            return {"decisions": list(data)}
        if isinstance(data, dict) and "decisions" not in data and "alert_id" in data:
            decision = {k: v for k, v in data.items() if k != "metadata"}
            wrapped: dict[str, Any] = {"decisions": [decision]}
            if "metadata" in data:
                wrapped["metadata"] = data["metadata"]
            return wrapped
        return data


class ProcessedDecision(BaseModel):
    """A decision of the last step and its fate (no hidden truth)."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    action_type: ActionTypeName
    status: str = Field(description="granted, denied or masked")
    reason: str | None = Field(default=None, description="why it was denied, if it was")
    outcome: str
    correct: bool | None = Field(default=None, description="by the easy grader's table")


class Denial(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_id: str
    action_type: ActionTypeName
    reason: str | None = None


class AlertTriageObservation(Observation):
    """What the decision maker sees after a reset or a step."""

    episode_id: str | None = None
    task_id: str
    alerts: list[Alert] = Field(description="the visible queue slots, oldest first")
    system_load: float = Field(ge=0.0, le=1.0)
    queue_length: int = Field(ge=0, description="every queued alert, visible or not")
    time_remaining: int = Field(ge=0)
    episode_step: int = Field(ge=0)
    resource_budget: int = Field(ge=0, description="K: INVESTIGATE + ESCALATE claims per step")
    services_down: list[str] = Field(default_factory=list)
    failures_count: int = Field(ge=0, default=0)
    task_score: float = Field(ge=0.0, le=1.0, default=0.0, description="the grader's score so far")
    task_passed: bool = False
    cumulative_reward: float = 0.0
    reward_components: dict[str, float] = Field(default_factory=dict)
    processed: list[ProcessedDecision] = Field(default_factory=list)
    denials: list[Denial] = Field(default_factory=list)
    failures_this_step: int = Field(ge=0, default=0)
    cascades_this_step: int = Field(ge=0, default=0)


class AlertTriageState(State):
    """The episode's public bookkeeping. No hidden truth."""

    task_id: str | None = None
    seed: int | None = None
    max_steps: int | None = None
    task_score: float = 0.0
    task_passed: bool = False
    cumulative_reward: float = 0.0
    failures_count: int = 0
    done: bool = False


# --------------------------------------------------------------------------- episodes
class _Episode:
    """One running episode: the wrapped env, a lock, and a snapshot of its state
    (replaced whole, so it can be read without the lock). ``live``: it reads
    ingested alerts from the server's store."""

    def __init__(
        self, env: AdaptiveAlertTriageEnv, state: AlertTriageState, live: bool = False
    ) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.state = state
        self.live = live


class HttpEpisodes:
    """The HTTP episodes of one app: the ``capacity`` most recently used, by
    ``episode_id``, and the current one (the latest started by ``/reset``)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._episodes: OrderedDict[str, _Episode] = OrderedDict()
        self._current: str | None = None
        self._lock = threading.Lock()

    def put(self, episode_id: str, episode: _Episode) -> None:
        """Hold ``episode`` as the current one, replacing any of the same id and
        dropping the least recently used beyond ``capacity``."""
        with self._lock:
            self._episodes.pop(episode_id, None)
            self._episodes[episode_id] = episode
            self._current = episode_id
            while len(self._episodes) > self.capacity:
                self._episodes.popitem(last=False)

    def get(self, episode_id: str | None) -> _Episode | None:
        with self._lock:
            key = self._current if episode_id is None else episode_id
            episode = self._episodes.get(key) if key is not None else None
            if episode is not None:
                self._episodes.move_to_end(key)
            return episode

    def peek(self, episode_id: Any) -> _Episode | None:
        """What `get` would return, without marking it used (None for a bad id)."""
        if episode_id is not None and not isinstance(episode_id, str):
            return None
        with self._lock:
            key = self._current if episode_id is None else episode_id
            return self._episodes.get(key) if key is not None else None

    def __len__(self) -> int:
        return len(self._episodes)


# --------------------------------------------------------------------------- environment
class AlertTriageEnvironment(
    Environment[AlertTriageAction, AlertTriageObservation, AlertTriageState]
):
    """OpenEnv `Environment` around `AdaptiveAlertTriageEnv`.

    ``on_event(kind, data)`` is called on ``"reset"`` and ``"step"`` (data:
    ``task_id``), ``"episode_end"`` (``task_id``, ``score``) and ``"invalid"``
    (``task_id``, ``detail``); its exceptions are logged, never raised.
    ``http_episodes`` makes the instance act on an app's `HttpEpisodes` instead
    of an episode of its own (what `build_openenv_app` does for HTTP requests).
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self,
        on_event: EventHook | None = None,
        http_episodes: HttpEpisodes | None = None,
        live_feed: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self._on_event = on_event
        self._http = http_episodes
        self._live_feed = live_feed  # makes a LiveFeed for an episode that opts in
        self._episode: _Episode | None = None

    # ------------------------------------------------------------------ OpenEnv API
    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        **kwargs: Any,
    ) -> AlertTriageObservation:
        """Start an episode of ``task_id`` (default ``"easy"``; or the task-API
        ``split`` and ``index``) with ``seed`` (None: a random episode)."""
        task_id = self._check_reset(seed, episode_id, task_id, kwargs)
        live = self._live_option(kwargs.get("options"))
        if episode_id is None:
            episode_id = str(uuid.uuid4())
        env = self._spare_env(task_id, seed, live)
        recycled = env is not None
        if env is None:
            env = AdaptiveAlertTriageEnv(
                task_id=task_id, live_source=self._live_feed() if live else None
            )
        try:
            first = env.reset(seed=seed, options={"live_alerts": True} if live else None)
        except BaseException:
            if recycled:  # the previous episode's env is half reset: drop that episode
                self._episode = None
                env.close()
            raise
        state = AlertTriageState(
            episode_id=episode_id,
            step_count=0,
            task_id=task_id,
            seed=seed,
            max_steps=env.config.max_steps,
            task_score=env.grader.score,
            task_passed=False,
            cumulative_reward=0.0,
            failures_count=first.failures_count,
            done=False,
        )
        episode = _Episode(env, state, live=live)
        if self._http is not None:
            self._http.put(episode_id, episode)
        else:
            if self._episode is not None and self._episode.env is not env:
                self._episode.env.close()
            self._episode = episode
        self._emit("reset", {"task_id": task_id})
        return self._observation(episode, first, reward=None, info=None)

    # OpenEnv calls these when they are overridden, and otherwise sends every
    # reset and step to a worker thread. A step takes tens of microseconds, less
    # than the thread hand-off around it, so it runs on the event loop. An
    # episode with live alerts reads the SQLite store, which may wait on a
    # writer's lock: that one still goes to a thread.
    async def reset_async(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        **kwargs: Any,
    ) -> AlertTriageObservation:
        """`reset`, on the event loop unless the episode asks for live alerts."""
        try:
            live = live_alerts_option(kwargs.get("options"))
        except (TypeError, ValueError):
            live = False  # reset() raises the proper error, at once
        if live:
            return await asyncio.to_thread(
                self.reset, seed=seed, episode_id=episode_id, task_id=task_id, **kwargs
            )
        return self.reset(seed=seed, episode_id=episode_id, task_id=task_id, **kwargs)

    async def step_async(
        self,
        action: AlertTriageAction,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> AlertTriageObservation:
        """`step`, on the event loop unless the episode has live alerts."""
        if self._http is not None:
            episode = self._http.peek(kwargs.get("episode_id"))
        else:
            episode = self._episode
        if episode is not None and episode.live:
            return await asyncio.to_thread(self.step, action, timeout_s=timeout_s, **kwargs)
        return self.step(action, timeout_s=timeout_s, **kwargs)

    def step(
        self,
        action: AlertTriageAction,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> AlertTriageObservation:
        """Apply one time step of decisions. Raises an `AlertTriageError` (and
        changes nothing) if the action or the request is invalid."""
        unknown = sorted(set(kwargs) - set(STEP_OPTIONS))
        if unknown:
            raise InvalidRequestError(
                f"unknown step options {unknown}; allowed: {list(STEP_OPTIONS)}"
            )
        episode = self._find(kwargs.get("episode_id"))
        decisions = self._decisions(action)
        with episode.lock:
            state = episode.state
            if state.done:
                raise EpisodeDoneError(
                    f"episode {state.episode_id} is done after {state.step_count} steps; "
                    "call reset() to start another"
                )
            try:
                observation, reward, done, info = episode.env.step(decisions)
            except (ValueError, TypeError) as exc:
                self._emit("invalid", {"task_id": state.task_id, "detail": str(exc)})
                raise InvalidActionError(f"invalid action: {exc}") from exc
            except RuntimeError as exc:  # the wrapped env's own done / not-started guard
                raise EpisodeDoneError(str(exc)) from exc
            episode.state = state.model_copy(
                update={
                    "step_count": state.step_count + 1,
                    "task_score": float(info["task_score"]),
                    "task_passed": bool(info["task_passed"]),
                    "cumulative_reward": float(info["cumulative_reward"]),
                    "failures_count": int(info["failures_count"]),
                    "done": bool(done),
                }
            )
            result = self._observation(episode, observation, reward=reward, info=info)
        self._emit("step", {"task_id": state.task_id})
        if done:
            self._emit("episode_end", {"task_id": state.task_id, "score": result.task_score})
        return result

    @property
    def state(self) -> AlertTriageState:
        """The current episode's state (a copy); a blank state before any reset."""
        episode = self._http.get(None) if self._http is not None else self._episode
        if episode is None:
            return AlertTriageState()
        return episode.state.model_copy()

    def get_metadata(self) -> EnvironmentMetadata:
        thresholds = ", ".join(f"{t} >= {GRADERS[t].threshold:.2f}" for t in TASK_IDS)
        return EnvironmentMetadata(
            name=ENV_NAME,
            description=(
                "IT alert triage under a claim budget: each step, decide INVESTIGATE, "
                "IGNORE, ESCALATE or DELAY for visible alerts of a noisy queue while "
                "hidden incidents grow and cascade along a hidden dependency graph. "
                f"Tasks easy / medium / hard, graded in [0, 1]; pass thresholds: {thresholds}."
            ),
            readme_content=_readme(),
            version=_package_version(),
        )

    def close(self) -> None:
        if self._episode is not None:
            self._episode.env.close()
            self._episode = None

    # ------------------------------------------------------------------ task API
    def list_splits(self) -> list[dict[str, str]]:
        return [{"name": TASK_SPLIT, "type": "test"}]

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        _check_split(split)
        return [task_spec(t) for t in TASK_IDS]

    def num_tasks(self, split: str) -> int:
        _check_split(split)
        return len(TASK_IDS)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        _check_split(split)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(TASK_IDS):
            raise IndexError(index)
        return task_spec(TASK_IDS[index])

    def get_task_range(
        self, split: str, start: int | None = None, stop: int | None = None
    ) -> list[dict[str, Any]]:
        _check_split(split)
        return [task_spec(t) for t in TASK_IDS[start:stop]]

    # ------------------------------------------------------------------ helpers
    def _spare_env(self, task_id: str, seed: Any, live: bool) -> AdaptiveAlertTriageEnv | None:
        """The env of this session's previous episode, to play the next one if
        it will play it exactly as a new env would (building one costs several
        times a reset): same task and no live alerts on either; for a seedless
        episode it is renewed, so that it draws a fresh stream from OS entropy
        as a new env does. Never for HTTP episodes: each stays playable under
        its own id."""
        old = self._episode
        if (
            self._http is None
            and old is not None
            and not live
            and not old.live
            and old.env.task_id == task_id
        ):
            if seed is None:
                old.env.renew()
            return old.env
        return None

    def _live_option(self, options: Any) -> bool:
        """``options={"live_alerts": true}``: mix ingested alerts into the queue."""
        try:
            live = live_alerts_option(options)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(str(exc)) from None
        if live and self._live_feed is None:
            raise InvalidRequestError(
                "live_alerts needs the server's alert store: start it with --db PATH"
            )
        return live

    def _check_reset(self, seed: Any, episode_id: Any, task_id: Any, extra: dict[str, Any]) -> str:
        unknown = sorted(set(extra) - set(RESET_OPTIONS))
        if unknown:
            raise InvalidRequestError(
                f"unknown reset options {unknown}; allowed: {list(RESET_OPTIONS)}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InvalidRequestError(f"seed must be an int >= 0 or null, got {seed!r}")
        if episode_id is not None and (
            not isinstance(episode_id, str) or not 1 <= len(episode_id) <= 255
        ):
            raise InvalidRequestError("episode_id must be a string of 1 to 255 characters")
        if "split" in extra or "index" in extra:
            split, index = extra.get("split", TASK_SPLIT), extra.get("index")
            try:
                by_index = self.get_task(split, index)["id"]
            except IndexError:
                raise InvalidRequestError(
                    f"index must be an int in [0, {len(TASK_IDS)}), got {index!r}"
                ) from None
            except UnknownSplitError as exc:
                raise InvalidRequestError(str(exc)) from None
            if task_id is not None and task_id != by_index:
                raise InvalidRequestError(
                    f"task_id {task_id!r} disagrees with split/index ({by_index!r})"
                )
            task_id = by_index
        if task_id is None:
            task_id = "easy"
        if not isinstance(task_id, str) or task_id not in GRADERS:  # a list is not hashable
            raise InvalidRequestError(f"unknown task_id {task_id!r}; allowed: {list(TASK_IDS)}")
        return task_id

    def _find(self, episode_id: Any) -> _Episode:
        if episode_id is not None and not isinstance(episode_id, str):
            raise InvalidRequestError("episode_id must be a string")
        if self._http is not None:
            episode = self._http.get(episode_id)
            if episode is None:
                if episode_id is not None:
                    raise UnknownEpisodeError(
                        f"no HTTP episode {episode_id!r}: it was never started or was evicted"
                    )
                raise NoEpisodeError("no episode: call reset first")
            return episode
        episode = self._episode
        if episode is None:
            raise NoEpisodeError("no episode: call reset first")
        if episode_id is not None and episode_id != episode.state.episode_id:
            raise UnknownEpisodeError(
                f"episode {episode_id!r} is not this session's episode "
                f"({episode.state.episode_id!r})"
            )
        return episode

    @staticmethod
    def _decisions(action: Any) -> list[TriageAction]:
        if not isinstance(action, AlertTriageAction):
            try:
                action = AlertTriageAction.model_validate(action)
            except ValueError as exc:
                raise InvalidActionError(f"invalid action: {exc}") from None
        return [
            TriageAction(alert_id=d.alert_id, action_type=d.action_type) for d in action.decisions
        ]

    def _observation(
        self,
        episode: _Episode,
        observation: Any,
        reward: Any,
        info: dict[str, Any] | None,
    ) -> AlertTriageObservation:
        state = episode.state
        fields: dict[str, Any] = {
            "episode_id": state.episode_id,
            "task_id": state.task_id,
            "alerts": observation.alerts,
            "system_load": observation.system_load,
            "queue_length": observation.queue_length,
            "time_remaining": observation.time_remaining,
            "episode_step": observation.episode_step,
            "resource_budget": observation.resource_budget,
            "services_down": list(observation.services_down),
            "failures_count": observation.failures_count,
            "task_score": state.task_score,
            "task_passed": state.task_passed,
            "cumulative_reward": state.cumulative_reward,
            "done": state.done,
            "reward": None if reward is None else float(reward.value),
        }
        if info is not None:
            fields.update(
                reward_components={k: v + 0.0 for k, v in reward.components.items()},  # no -0.0
                processed=[
                    {k: record[k] for k in PUBLIC_DECISION_FIELDS}
                    for record in info["processed_alerts"]
                ],
                denials=info["denials"],
                failures_this_step=int(info["failures_this_step"]),
                cascades_this_step=int(info["cascades_this_step"]),
            )
            if "external_alerts" in info:
                fields["metadata"] = {"external_alerts": info["external_alerts"]}
        return AlertTriageObservation(**fields)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, data)
        except Exception:
            logger.warning("on_event(%r) failed", kind, exc_info=True)


def _check_split(split: Any) -> None:
    if split != TASK_SPLIT:
        raise UnknownSplitError(f"unknown split {split!r}; the only split is {TASK_SPLIT!r}")


def task_spec(task_id: str) -> dict[str, Any]:
    """A task's public description: name, steps, team, grader and pass threshold."""
    config = get_task(task_id)
    grader = GRADERS[task_id]
    return {
        "id": task_id,
        "index": TASK_IDS.index(task_id),
        "name": TASK_NAMES.get(task_id, task_id),
        "description": config.description,
        "max_steps": config.max_steps,
        "investigators": config.n_investigators,
        "resource_budget": config.investigation_budget,
        "failure_threshold": config.failure_threshold,
        "grader": f"{grader.__module__}.{grader.__name__}",
        "scoring": TASK_SCORING.get(task_id, ""),
        "score_range": [0.0, 1.0],
        "threshold": grader.threshold,
        "reset": {"task_id": task_id},
    }


def _readme() -> str:
    rows = "\n".join(
        f"| `{s['id']}` | {s['name']} | {s['max_steps']} | {s['investigators']} + 1 desk "
        f"| {s['resource_budget']} | {s['threshold']:.2f} | {s['scoring']} |"
        for s in (task_spec(t) for t in TASK_IDS)
    )
    return f"""# Adaptive Alert Triage

An on-call team faces a noisy alert queue. Each step, for some visible alerts, decide
`INVESTIGATE`, `IGNORE`, `ESCALATE` or `DELAY`. Hidden incidents behind the alerts grow,
fail their service and cascade along a hidden dependency graph; false positives flap.
At most K investigations and escalations are granted per step (the rest are denied).

| task | name | steps | team | K | pass threshold | score |
|---|---|---|---|---|---|---|
{rows}

* **reset**: `{{"task_id": "easy" | "medium" | "hard", "seed": 0, "episode_id": "..."}}`
* **step**: `{{"action": {{"decisions": [{{"alert_id": "...", "action_type": "INVESTIGATE"}}]}}}}`
  (one decision per alert at most; no more INVESTIGATE than investigators, one ESCALATE).
* **observation**: the visible alerts (id, visible_severity, confidence, alert_type, age,
  service), system_load, queue_length, time_remaining, episode_step, resource_budget,
  services_down, failures_count, the step reward and its components, the running
  `task_score` in [0, 1], and each decision's status and outcome.
* `/ws` sessions are isolated; over HTTP, `/reset` starts the current episode and
  `/step` may name another with an `episode_id` field.
"""


# --------------------------------------------------------------------------- app
# The ASGI scope type ("http" / "websocket") of the request being served.
_TRANSPORT: ContextVar[str | None] = ContextVar("alert_triage_transport", default=None)


class _MarkTransport:
    """ASGI middleware: record the scope type, so the environment factory can
    tell a per-request HTTP instance from a ``/ws`` session's own."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        token = _TRANSPORT.set(scope["type"])
        try:
            await self.app(scope, receive, send)
        finally:
            _TRANSPORT.reset(token)


async def _alert_triage_error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 400)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """OpenEnv's ``HTTPException(422, detail=e.errors())`` echoes the input,
    which may be a NaN that no JSON encoder takes: the detail is made safe."""
    detail = wire.validation_errors(getattr(exc, "detail", str(exc)))
    status = getattr(exc, "status_code", 400)
    return JSONResponse(
        {"detail": detail}, status_code=status, headers=getattr(exc, "headers", None)
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else str(exc)
    return JSONResponse({"detail": wire.validation_errors(errors)}, status_code=422)


class StrictResetRequest(ResetRequest):
    """OpenEnv's ``/reset`` body with a strict ``seed``. OpenEnv's own model
    reads ``true``, ``"1"`` and ``1.0`` as seed 1 before the environment sees
    them; every other face (``/ws``, ``/env/reset``, ``/ws/train``) refuses them."""

    seed: int | None = Field(
        default=None, ge=0, description="Random seed for reproducible episodes"
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _an_int(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"seed must be an int >= 0 or null, got {value!r}")
        return value


def _strict_reset(app: FastAPI) -> None:
    """Serve ``POST /reset`` through OpenEnv's own handler, with
    `StrictResetRequest` as the body model (same path, same documentation)."""
    found = [
        i
        for i, r in enumerate(app.router.routes)
        if isinstance(r, APIRoute) and r.path == "/reset" and "POST" in r.methods
    ]
    if len(found) != 1:
        raise RuntimeError("OpenEnv's app does not have the one POST /reset route expected")
    index = found[0]
    original: APIRoute = app.router.routes.pop(index)
    openenv_reset = original.endpoint

    async def reset(
        request: Annotated[StrictResetRequest, Body(default_factory=StrictResetRequest)],
    ) -> Any:
        return await openenv_reset(request)

    app.add_api_route(
        "/reset",
        reset,
        methods=["POST"],
        response_model=original.response_model,
        tags=original.tags,
        summary=original.summary,
        description=original.description,
        responses=original.responses,
        name=original.name,
    )
    app.router.routes.insert(index, app.router.routes.pop())


def build_openenv_app(
    max_concurrent_envs: int = 64,
    on_event: EventHook | None = None,
    live_feed: Callable[[], Any] | None = None,
) -> FastAPI:
    """The OpenEnv app: ``/reset``, ``/step``, ``/state``, ``/schema``,
    ``/metadata``, ``/health``, ``/ws`` (plus OpenEnv's ``/mcp`` and task API
    ``/adaptive-alert-triage/...``). ``max_concurrent_envs`` caps the ``/ws``
    sessions and the HTTP episodes kept; ``on_event`` goes to every environment."""
    if (
        isinstance(max_concurrent_envs, bool)
        or not isinstance(max_concurrent_envs, int)
        or max_concurrent_envs < 1
    ):
        raise ValueError(f"max_concurrent_envs must be an int >= 1, got {max_concurrent_envs!r}")
    http_episodes = HttpEpisodes(capacity=max_concurrent_envs)

    def alert_triage_environment() -> AlertTriageEnvironment:
        shared = http_episodes if _TRANSPORT.get() == "http" else None
        return AlertTriageEnvironment(on_event=on_event, http_episodes=shared, live_feed=live_feed)

    app = create_app(
        alert_triage_environment,
        AlertTriageAction,
        AlertTriageObservation,
        env_name=ENV_NAME,
        max_concurrent_envs=max_concurrent_envs,
        state_cls=AlertTriageState,
    )
    app.title = "Adaptive Alert Triage (OpenEnv)"
    app.add_exception_handler(AlertTriageError, _alert_triage_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _strict_reset(app)
    app.add_middleware(_MarkTransport)
    app.state.openenv_http_episodes = http_episodes
    return app


__all__ = [
    "ENV_NAME",
    "AlertTriageAction",
    "AlertTriageEnvironment",
    "AlertTriageError",
    "AlertTriageObservation",
    "AlertTriageState",
    "Denial",
    "EpisodeDoneError",
    "HttpEpisodes",
    "InvalidActionError",
    "InvalidRequestError",
    "NoEpisodeError",
    "ProcessedDecision",
    "StrictResetRequest",
    "TriageDecision",
    "UnknownEpisodeError",
    "UnknownSplitError",
    "build_openenv_app",
    "task_spec",
]
