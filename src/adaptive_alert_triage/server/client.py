"""A typed OpenEnv client for the alert triage server.

`AlertTriageClient` is an ``openenv.core.EnvClient``: it holds one ``/ws``
session (its own isolated episode on the server) and returns typed
`AlertTriageObservation` / `AlertTriageState` objects. In OpenEnv 0.10 the same
client works synchronously and asynchronously::

    with AlertTriageClient(base_url="http://127.0.0.1:8000") as client:
        result = client.reset(task_id="hard", seed=0)
        while not result.done:
            alert = result.observation.alerts[0]
            result = client.step(AlertTriageAction(alert_id=alert.id, action_type="INVESTIGATE"))
        print(result.observation.task_score, client.state().step_count)

    async with AlertTriageClient(base_url="http://127.0.0.1:8000") as client:
        result = await client.reset(task_id="easy", seed=1)

``step`` also takes a `TriageDecision`, a list of them, or the equivalent dicts.
A request the server refuses (an invalid action, a step after the end, a full
server) raises ``RuntimeError("Server error: ... (code: ...)")``; the session
stays usable, except after ``CAPACITY_REACHED``.
"""

from __future__ import annotations

from typing import Any

from openenv.core import EnvClient
from openenv.core.client_types import StepResult

from .openenv_env import (
    AlertTriageAction,
    AlertTriageObservation,
    AlertTriageState,
    TriageDecision,
)


class AlertTriageClient(EnvClient[AlertTriageAction, AlertTriageObservation, AlertTriageState]):
    """Client of one alert triage session over OpenEnv's ``/ws`` socket."""

    def _step_payload(self, action: Any) -> dict[str, Any]:
        if not isinstance(action, AlertTriageAction):
            if isinstance(action, TriageDecision):
                action = action.model_dump()
            elif isinstance(action, (list, tuple)):
                action = [a.model_dump() if isinstance(a, TriageDecision) else a for a in action]
            action = AlertTriageAction.model_validate(action)
        return action.model_dump(mode="json")

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[AlertTriageObservation]:
        observation = AlertTriageObservation.model_validate(
            {
                **payload.get("observation", {}),
                "reward": payload.get("reward"),
                "done": payload.get("done", False),
            }
        )
        return StepResult(
            observation=observation,
            reward=payload.get("reward"),
            done=bool(payload.get("done", False)),
            metadata=payload.get("metadata"),
        )

    def _parse_state(self, payload: dict[str, Any]) -> AlertTriageState:
        return AlertTriageState.model_validate(payload)


__all__ = ["AlertTriageAction", "AlertTriageClient", "TriageDecision"]
