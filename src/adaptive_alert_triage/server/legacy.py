"""The earlier HTTP API, kept, with a session per client.

``POST /env/reset/{task_id}`` starts an episode and returns its ``session_id``;
``POST /env/step`` and ``GET /env/state`` name it in the ``X-Session-Id`` header
(or a ``session_id`` query parameter). ``WS /ws/train`` holds one episode per
socket. Errors are 4xx JSON with a ``detail``:

* 400 malformed JSON or a missing session id; 404 unknown task or session;
  409 a step after the episode ended; 413 an oversized body; 422 an invalid action
  (unknown alert id, bad verb, too many decisions); 429 no room for a session.
* Over HTTP an invalid action changes nothing (as in the Python API). Over
  ``/ws/train`` an invalid action is answered with ``{"type": "error", "detail":
  ...}`` and **costs the step**: the team makes no decision and time advances, so
  a client that keeps sending bad actions still reaches the end of the episode
  (the reply carries ``done``). The socket stays open.
* A ``/ws/train`` reset message has ``task_id``, ``seed`` and ``options`` and
  nothing else; a bad one (any other field, an unknown task, a bad seed) is
  answered with an error, takes no step, and leaves the socket with no episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from ..env import AdaptiveAlertTriageEnv, live_alerts_option
from ..models import Action, Observation
from ..sim.config import TASKS, get_task
from ..tasks import GRADERS
from . import wire
from .metrics import ServerMetrics
from .openenv_env import PUBLIC_DECISION_FIELDS  # one list of what a decision may show
from .sessions import Session, SessionLimitError, SessionStore

TASK_NAMES = {
    "easy": "Basic Alert Prioritisation",
    "medium": "Resource-Constrained Triage",
    "hard": "Cascading Failures Prevention",
}
PUBLIC_INFO_FIELDS = (
    "task_score",
    "task_passed",
    "denials",
    "failures_this_step",
    "cascades_this_step",
    "system_failure",
    "action_correct",
    "cumulative_reward",
    "step",
    "failures_count",
    "terminated",
    "truncated",
)

#: The fields of a /ws/train reset message.
WS_RESET_FIELDS = ("type", "task_id", "seed", "options")


class ApiError(Exception):
    """A client error: becomes a 4xx JSON response with ``detail``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def task_list() -> list[dict[str, Any]]:
    out = []
    for task_id in TASKS:
        config = get_task(task_id)
        out.append(
            {
                "id": task_id,
                "name": TASK_NAMES[task_id],
                "max_steps": config.max_steps,
                "team": {"investigators": config.n_investigators, "escalation_desk": 1},
                "investigation_budget": config.investigation_budget,
                "services": config.n_services,
                "failure_threshold": config.failure_threshold,
                "grader": GRADERS[task_id].__name__,
                "pass_threshold": GRADERS[task_id].threshold,
            }
        )
    return out


def parse_actions(payload: Any) -> list[Action]:
    """One decision, a list of them, or ``{"actions": [...]}``; validated against Action."""
    if isinstance(payload, dict) and "actions" in payload and "alert_id" not in payload:
        payload = payload["actions"]
    items = payload if isinstance(payload, list) else [payload]
    actions = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiError(
                422,
                f"decision {i} must be an object with alert_id and action_type, got "
                f"{type(item).__name__}",
            )
        try:
            actions.append(Action.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'decision'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ApiError(422, f"decision {i} is invalid: {problems}") from None
    return actions


def observation_dict(observation: Observation) -> dict[str, Any]:
    """``observation.model_dump()``, built from the models' field dicts: the
    same dict (a test holds them equal) in a seventh of the time. Its fields
    are plain values and the alerts its only nested models."""
    return {**observation.__dict__, "alerts": [dict(a.__dict__) for a in observation.alerts]}


def public_info(info: dict[str, Any]) -> dict[str, Any]:
    out = {k: info[k] for k in PUBLIC_INFO_FIELDS}
    out["processed_alerts"] = [
        {k: d[k] for k in PUBLIC_DECISION_FIELDS} for d in info["processed_alerts"]
    ]
    if "external_alerts" in info:  # a live session: which ids are real alerts
        out["external_alerts"] = info["external_alerts"]
    return out


def public_state(env: AdaptiveAlertTriageEnv, privileged: bool) -> dict[str, Any]:
    """The episode state; without the hidden truth unless the server is privileged."""
    state = env.state().model_dump(mode="json")
    if privileged:
        return {**state, "privileged": True}
    visible = ("id", "visible_severity", "confidence", "alert_type", "age", "service")
    state["queue"] = [{k: a[k] for k in visible} for a in state["queue"]]
    for hidden in ("incidents", "dependencies"):
        state.pop(hidden)
    state["config"].pop("topology", None)
    return {**state, "privileged": False}


class LegacyApi:
    """The earlier API's routes over a session store."""

    def __init__(
        self,
        store: SessionStore,
        metrics: ServerMetrics,
        privileged: bool = False,
        live_feed: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.privileged = privileged
        self.live_feed = live_feed  # makes a LiveFeed for a session that opts in

    # ------------------------------------------------------------ episode logic
    def reset(
        self,
        task_id: str,
        seed: Any = None,
        api: str = "http",
        options: Any = None,
    ) -> tuple[Session, dict]:
        """Start an episode in a new session (``api``: ``http`` or ``ws_train``)."""
        live = self._check_reset(task_id, seed, options)
        try:
            session = self.store.create(task_id, seed, self.live_feed() if live else None, api=api)
        except SessionLimitError as exc:
            raise ApiError(429, str(exc)) from None
        observation = session.env.reset(seed=seed, options={"live_alerts": live} if live else None)
        self.metrics.on_event("reset", {"task_id": task_id}, api)
        return session, observation_dict(observation)

    def _check_reset(self, task_id: str, seed: Any, options: Any) -> bool:
        """Validate a reset; returns whether it asks for live alerts."""
        if not isinstance(task_id, str) or task_id not in TASKS:  # /ws/train sends any JSON
            raise ApiError(404, f"unknown task_id {task_id!r}; allowed: {list(TASKS)}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ApiError(422, f"seed must be a non-negative integer or null, got {seed!r}")
        live = live_option(options)
        if live and self.live_feed is None:
            raise ApiError(
                422, "live_alerts needs the server's alert store: start it with --db PATH"
            )
        return live

    def step(self, session: Session, payload: Any, api: str = "http") -> dict[str, Any]:
        if session.recycled:  # closed while this request read its body: the env is not its own
            raise ApiError(404, _unknown_session(session.id))
        if session.done:
            raise ApiError(409, "the episode is done; reset to start a new one")
        try:
            actions = parse_actions(payload)
            observation, reward, done, info = session.env.step(actions)
        except ApiError:
            self.metrics.on_event("invalid", {}, api)
            raise
        except (ValueError, TypeError) as exc:
            self.metrics.on_event("invalid", {}, api)
            raise ApiError(422, str(exc)) from None
        return self._stepped(session, observation, reward, done, info, api)

    def wasted_step(self, session: Session, api: str) -> dict[str, Any]:
        """The step an invalid /ws/train action costs: no decisions, time advances."""
        observation, reward, done, info = session.env.step([])
        return self._stepped(session, observation, reward, done, info, api)

    def _stepped(self, session, observation, reward, done, info, api) -> dict[str, Any]:
        session.steps += 1
        session.done = done
        session.info = info
        self.metrics.on_event("step", {"task_id": session.task_id}, api)
        if done:
            self.metrics.on_event(
                "episode_end", {"task_id": session.task_id, "score": info["task_score"]}, api
            )
        return {
            "session_id": session.id,
            "observation": observation_dict(observation),
            "reward": reward.value,
            "reward_components": reward.components,
            "done": done,
            "info": public_info(info),
            "score": info["task_score"],
        }

    def session(self, session_id: str | None) -> Session:
        if not session_id:
            raise ApiError(
                400,
                "missing session id: send the session_id from POST /env/reset/{task_id} "
                "in the X-Session-Id header or the session_id query parameter",
            )
        session = self.store.get(session_id)
        if session is None:
            raise ApiError(404, _unknown_session(session_id))
        return session

    # ------------------------------------------------------------------ routes
    def router(self) -> APIRouter:
        router = APIRouter()
        api = self

        @router.get("/tasks")
        async def tasks() -> dict[str, Any]:
            return {"tasks": task_list()}

        @router.post("/env/reset/{task_id}", response_model=dict[str, Any])
        async def reset(task_id: str, request: Request) -> Response:
            body = await _json_body(request, allow_empty=True)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise ApiError(
                    422, f"the reset body must be a JSON object, got {type(body).__name__}"
                )
            unknown = sorted(set(body) - {"seed", "options"})
            if unknown:
                raise ApiError(
                    422, f"unknown reset field(s) {unknown}; allowed: ['seed', 'options']"
                )
            session, observation = api.reset(task_id, body.get("seed"), options=body.get("options"))
            return json_response(
                {
                    "session_id": session.id,
                    "task_id": task_id,
                    "seed": session.seed,
                    "observation": observation,
                    "done": False,
                }
            )

        # The hot route: the session id is read from the request directly rather
        # than through declared Header/Query parameters, whose per-request
        # dependency solving cost about as much as the step itself; the same two
        # parameters are documented in the OpenAPI schema by hand.
        @router.post("/env/step", response_model=dict[str, Any], openapi_extra=SESSION_ID_OPENAPI)
        async def step(request: Request) -> Response:
            session = api.session(
                request.headers.get("x-session-id") or request.query_params.get("session_id")
            )
            payload = await _json_body(request)
            return json_response(api.step(session, payload))

        @router.get("/env/state")
        async def state(
            x_session_id: str | None = Header(default=None),
            session_id: str | None = Query(default=None),
        ) -> dict[str, Any]:
            session = api.session(x_session_id or session_id)
            return {"session_id": session.id, **public_state(session.env, api.privileged)}

        @router.delete("/env/session")
        async def close(
            x_session_id: str | None = Header(default=None),
            session_id: str | None = Query(default=None),
        ) -> dict[str, Any]:
            session = api.session(x_session_id or session_id)
            # An HTTP session is used only inside requests, so its env may serve
            # another session; a /ws/train socket goes on holding its own.
            api.store.close(session.id, reuse=session.api == "http")
            return {"closed": session.id}

        return router  # WS /ws/train is `TrainSocket`, ahead of the routing

    async def serve_train_socket(self, receive: Any, send: Any) -> None:
        """One /ws/train connection on the raw ASGI ``receive``/``send``: accept,
        then answer every message (text, or UTF-8 bytes) until the client goes.
        The socket's session is closed, and its env kept for another, at the end."""
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        session: Session | None = None
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return  # websocket.disconnect
                text = message.get("text")
                reply, session = self.ws_message(
                    text if text is not None else message.get("bytes") or b"", session
                )
                try:
                    await send({"type": "websocket.send", "text": wire.dumps(reply)})
                except OSError:  # uvicorn's ClientDisconnected: it left while we answered
                    return
        finally:
            if session is not None:
                self.store.close(session.id, reuse=True)

    def ws_message(self, text: str | bytes, session: Session | None) -> tuple[dict, Session | None]:
        """One /ws/train message in, one reply out (never raises a client error)."""
        done = bool(session and session.done)
        try:
            message = wire.loads(text)
        except (ValueError, RecursionError) as exc:  # as over HTTP: digits, depth too
            return {"type": "error", "detail": f"malformed JSON: {exc}", "done": done}, session
        if not isinstance(message, dict) or message.get("type") not in ("reset", "step"):
            return {
                "type": "error",
                "detail": 'a message must be an object with "type": "reset" or "step"',
                "done": done,
            }, session
        try:
            if message["type"] == "reset":
                if session is not None:
                    self.store.close(session.id, reuse=True)  # this socket was its only user
                    session = None
                unknown = sorted(set(message) - set(WS_RESET_FIELDS))
                if unknown:  # as /env/reset does: a misspelt "seed" must not pass unseen
                    raise ApiError(
                        422, f"unknown reset field(s) {unknown}; allowed: {list(WS_RESET_FIELDS)}"
                    )
                session, observation = self.reset(
                    message.get("task_id", "easy"),
                    message.get("seed"),
                    api="ws_train",
                    options=message.get("options"),
                )
                reply = {
                    "type": "reset",
                    "session_id": session.id,
                    "task_id": session.task_id,
                    "observation": observation,
                    "reward": 0.0,
                    "done": False,
                }
                return reply, session
            if session is None:
                return {
                    "type": "error",
                    "detail": 'no episode yet: send {"type": "reset", "task_id": ...} first',
                    "done": False,
                }, session
            if "action" not in message:
                raise ApiError(422, 'a step message needs an "action"')
            return {
                "type": "step",
                **self.step(session, message["action"], api="ws_train"),
            }, session
        except ApiError as exc:
            if session is None or session.done or exc.status != 422:
                return {"type": "error", "detail": exc.detail, "done": done}, session
            result = self.wasted_step(session, "ws_train")
            return {
                "type": "error",
                "detail": f"{exc.detail} (the step passed with no decision)",
                **result,
            }, session


def _unknown_session(session_id: str) -> str:
    return f"unknown session {session_id!r} (closed, expired or never made)"


def live_option(options: Any) -> bool:
    try:
        return live_alerts_option(options)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, str(exc)) from None


async def _json_body(request: Request, allow_empty: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiError(400, "the request body is empty; send JSON")
    try:
        return wire.loads(raw)
    except (ValueError, RecursionError) as exc:  # also: too many digits, nested too deep
        raise ApiError(400, f"malformed JSON: {exc}") from None


def json_response(content: Any) -> Response:
    """A 200 JSON reply encoded once, by `wire` (a plain dict returned from a
    route would be validated against its response model and encoded again)."""
    return Response(wire.dumps_bytes(content), media_type="application/json")


def _optional_string(title: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string"}, {"type": "null"}], "title": title}


# What FastAPI writes for ``session_id: str | None = Query(None)`` and
# ``x_session_id: str | None = Header(None)``, for a route that reads them itself.
SESSION_ID_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "session_id",
            "in": "query",
            "required": False,
            "schema": _optional_string("Session Id"),
        },
        {
            "name": "x-session-id",
            "in": "header",
            "required": False,
            "schema": _optional_string("X-Session-Id"),
        },
    ],
    "responses": {
        "422": {
            "description": "Validation Error",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        }
    },
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": wire.json_safe(exc.detail)}, status_code=exc.status)


class TrainSocket:
    """ASGI middleware that serves ``WS /ws/train`` itself, ahead of FastAPI's
    routing, and passes every other scope on. A trainer sends thousands of
    messages down one socket; answering each on the raw ASGI ``receive`` and
    ``send`` skips Starlette's WebSocket wrapper and the exception middleware's
    send wrapper, about 8 us of a one-client round trip of ~200 us (measured)."""

    def __init__(self, app: Any, api: LegacyApi, path: str = "/ws/train") -> None:
        self.app = app
        self.api = api
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            return await self.api.serve_train_socket(receive, send)
        return await self.app(scope, receive, send)
