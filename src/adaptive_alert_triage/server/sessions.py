"""Isolated episodes for the server's clients: one env per session.

Nothing is shared between sessions and nothing steps an episode on its own. The
store caps the number of live sessions; a session idle for longer than
``idle_seconds`` is closed to make room for a new one.

Building an env costs several times a reset, so the store keeps the envs of
closed sessions (a few per task) and hands one to a new session whenever it
will play exactly the episode a new env would: same task and no live alerts on
either. For a seedless episode the kept env is renewed first (`renew`), so that
it draws a fresh stream from OS entropy, as a new env does, rather than
continuing the stream of the session before. An env is kept only when its session
is closed with ``reuse=True``, by whoever is its only user: the ``/ws/train``
socket that holds it, or an HTTP request for an HTTP session (used only inside
requests; a step checks `Session.recycled` right before stepping, so a step in
flight while its session is closed never touches the env's next session).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..env import AdaptiveAlertTriageEnv


class SessionLimitError(RuntimeError):
    """No room for another session."""


@dataclass
class Session:
    id: str
    task_id: str
    env: AdaptiveAlertTriageEnv
    seed: int | None
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    steps: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    live: bool = False  # its env was given a live alert source
    api: str = "http"  # the API that made it: "http" or "ws_train"
    recycled: bool = False  # closed, and its env kept for another session


class SessionStore:
    """Thread-safe map of session id -> Session, with a cap, and up to
    ``spares_per_task`` envs of closed sessions kept for reuse."""

    def __init__(
        self, max_sessions: int = 256, idle_seconds: float = 3600.0, spares_per_task: int = 4
    ) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.spares_per_task = spares_per_task
        self._sessions: dict[str, Session] = {}
        self._spares: dict[str, list[AdaptiveAlertTriageEnv]] = {}
        self._lock = threading.Lock()

    def create(
        self, task_id: str, seed: int | None, live_source: Any = None, api: str = "http"
    ) -> Session:
        """A new session for ``task_id`` (already validated), with a kept env if
        one can play the episode exactly as a new env would, else a new env;
        ``live_source`` feeds it ingested alerts if it opts in at reset."""
        env = self._spare(task_id) if live_source is None else None
        if env is None:
            env = AdaptiveAlertTriageEnv(task_id=task_id, live_source=live_source)
        elif seed is None:
            env.renew()  # a seedless episode from fresh entropy, as a new env's
        session = Session(
            id=secrets.token_urlsafe(12),
            task_id=task_id,
            env=env,
            seed=seed,
            live=live_source is not None,
            api=api,
        )
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._evict_idle()
            if len(self._sessions) < self.max_sessions:
                self._sessions[session.id] = session
                return session
        if session.live:
            env.close()
        else:
            self._keep(env)
        raise SessionLimitError(
            f"session limit reached: {self.max_sessions} sessions are live; "
            "close one (DELETE /env/session) or wait for an idle one to expire"
        )

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def close(self, session_id: str, reuse: bool = False) -> bool:
        """Close a session. ``reuse``: nothing but the caller uses it, so its env
        may serve a later session."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        if reuse and not session.live:
            session.recycled = True
            self._keep(session.env)
        else:
            session.env.close()
        return True

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def _spare(self, task_id: str) -> AdaptiveAlertTriageEnv | None:
        with self._lock:
            spares = self._spares.get(task_id)
            return spares.pop() if spares else None

    def _keep(self, env: AdaptiveAlertTriageEnv) -> None:
        with self._lock:
            spares = self._spares.setdefault(env.task_id, [])
            if len(spares) < self.spares_per_task:
                spares.append(env)
                return
        env.close()

    def _evict_idle(self) -> None:
        now = time.monotonic()
        for sid, s in list(self._sessions.items()):
            if now - s.last_used > self.idle_seconds:
                self._sessions.pop(sid).env.close()  # its holder may still use it: not kept
