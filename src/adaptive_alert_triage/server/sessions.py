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


class SessionStore:
    """Thread-safe map of session id -> Session, with a cap."""

    def __init__(self, max_sessions: int = 256, idle_seconds: float = 3600.0) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be an int >= 1, got {max_sessions!r}")
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, task_id: str, seed: int | None, live_source: Any = None) -> Session:
        """A new session with a fresh env for ``task_id`` (already validated);
        ``live_source`` feeds it ingested alerts if it opts in at reset."""
        env = AdaptiveAlertTriageEnv(task_id=task_id, live_source=live_source)
        session = Session(id=secrets.token_urlsafe(12), task_id=task_id, env=env, seed=seed)
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._evict_idle()
            if len(self._sessions) >= self.max_sessions:
                raise SessionLimitError(
                    f"session limit reached: {self.max_sessions} sessions are live; "
                    "close one (DELETE /env/session) or wait for an idle one to expire"
                )
            self._sessions[session.id] = session
        return session

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
