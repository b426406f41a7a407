"""Isolated episodes for the server's clients: one env per session.

Nothing is shared between sessions and nothing steps an episode on its own. The
store caps the number of live sessions; a session idle for longer than
``idle_seconds`` is closed to make room for a new one.
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


class SessionStore:
    """Thread-safe map of session id -> Session, with a cap."""

    def __init__(self, max_sessions: int = 256, idle_seconds: float = 3600.0) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(
        self,
        task_id: str,
        seed: int | None,
        live_source: Any = None,
        spare: AdaptiveAlertTriageEnv | None = None,
    ) -> Session:
        """A new session for ``task_id`` (already validated); ``live_source`` feeds
        it ingested alerts if it opts in at reset.

        ``spare`` is an env this store handed out with `release` (the previous
        episode of the same socket). It is reused instead of building a new env
        (which costs several times a reset) when the episode it will play is
        exactly the one a new env would play: same task, an explicit seed (a
        fresh env draws a seedless episode from new entropy; a used one would
        continue its stream) and no live alerts. Otherwise it is closed. The
        store owns ``spare`` from the call on, whatever happens."""
        reusable = (
            spare is not None
            and spare.task_id == task_id
            and seed is not None
            and live_source is None
        )
        if spare is not None and not reusable:
            spare.close()
        env = (
            spare if reusable else AdaptiveAlertTriageEnv(task_id=task_id, live_source=live_source)
        )
        session = Session(
            id=secrets.token_urlsafe(12),
            task_id=task_id,
            env=env,
            seed=seed,
            live=live_source is not None,
        )
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._evict_idle()
            if len(self._sessions) < self.max_sessions:
                self._sessions[session.id] = session
                return session
        env.close()
        raise SessionLimitError(
            f"session limit reached: {self.max_sessions} sessions are live; "
            "close one (DELETE /env/session) or wait for an idle one to expire"
        )

    def release(self, session_id: str) -> AdaptiveAlertTriageEnv | None:
        """Close a session but hand back its env for `create` to reuse (None if
        the session is unknown or its env had a live source, which is closed)."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        if session.live:
            session.env.close()
            return None
        return session.env

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.last_used = time.monotonic()
        return session

    def close(self, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.env.close()
        return session is not None

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def _evict_idle(self) -> None:
        now = time.monotonic()
        for sid, s in list(self._sessions.items()):
            if now - s.last_used > self.idle_seconds:
                self._sessions.pop(sid).env.close()
