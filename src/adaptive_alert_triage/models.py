"""The public data contract of the single-agent face (pydantic v2).

Every model rejects unknown fields and out-of-range values with a clear
error; nothing is clamped silently. `Alert` and `Observation` carry only what
an on-call engineer can see; `EpisodeState` carries everything, hidden truth
included, for evaluation and replay.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AlertTypeName = Literal["CPU", "MEMORY", "DISK", "NETWORK", "APPLICATION", "SECURITY"]
ActionTypeName = Literal["INVESTIGATE", "IGNORE", "ESCALATE", "DELAY"]

ALERT_ID_PATTERN = r"^[0-9a-f]{16}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def trusted(cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    """Build a model from values the simulator produced, skipping validation.

    Only for output the environment makes itself from checked state (the tests
    re-validate it); anything that comes from a user goes through the model.
    ``fields`` must name every field, in the order the model declares them.
    """
    obj = _new(cls)
    _set_dict(obj, fields)
    _set_fields_set(obj, _FIELD_SETS[cls])
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def trusted_pieces(cls: type[BaseModel]) -> tuple[Any, Any, Any, Any, Any, frozenset[str]]:
    """What `trusted` does, as separate steps: ``(new, set_dict, set_fields_set,
    set_extra, set_private, fields_set)``, for a face that builds many models
    in a loop of its own (the alerts of each observation) and so saves a call
    per model. The same contract as `trusted`: every field, in declared order."""
    return _new, _set_dict, _set_fields_set, _set_extra, _set_private, _FIELD_SETS[cls]


def _slot_setter(name: str) -> Any:
    """A setter for one of BaseModel's own slots that bypasses its
    ``__setattr__`` (frozen models refuse it): the slot descriptor's ``__set__``,
    which costs less than ``object.__setattr__`` on every model built."""
    setter = getattr(BaseModel.__dict__.get(name), "__set__", None)
    if setter is None:  # not a slot in this pydantic version

        def setter(obj: BaseModel, value: Any) -> None:
            object.__setattr__(obj, name, value)

    return setter


_new = object.__new__
_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


class Alert(_Strict):
    """One queued alert, as the agent sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ALERT_ID_PATTERN, description="opaque, unique in the episode")
    visible_severity: float = Field(ge=0.0, le=1.0, description="a noisy view of the truth")
    confidence: float = Field(ge=0.0, le=1.0)
    alert_type: AlertTypeName
    age: int = Field(ge=0, description="steps since the alert arrived")
    service: str = Field(min_length=1, description="the service or host it fired on")


class Observation(_Strict):
    """What the decision maker sees at the start of a step.

    ``alerts`` are the visible queue slots in arrival order (oldest first);
    ``queue_length`` counts every queued alert, including those beyond them.
    """

    alerts: list[Alert]
    system_load: float = Field(ge=0.0, le=1.0)
    queue_length: int = Field(ge=0)
    time_remaining: int = Field(ge=0, description="steps left before truncation")
    episode_step: int = Field(ge=0)
    resource_budget: int = Field(ge=0, description="K: INVESTIGATE + ESCALATE claims per step")
    services_down: list[str] = Field(default_factory=list, description="visible outages")
    failures_count: int = Field(ge=0, default=0)


class Action(_Strict):
    """One decision on one alert. Strict: ``action_type`` must be one of the four
    names exactly, and unknown fields are rejected. Frozen: a validated action
    cannot be changed into an invalid one afterwards, nor rewrite the episode's
    history once stepped."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    alert_id: str = Field(min_length=1)
    action_type: ActionTypeName
    metadata: dict[str, Any] = Field(default_factory=dict)


class Reward(_Strict):
    """The step reward and the named components it is the exact sum of."""

    value: float
    components: dict[str, float]

    @model_validator(mode="after")
    def _value_is_the_sum(self) -> Reward:
        for name, part in self.components.items():
            if not math.isfinite(part):
                raise ValueError(f"reward component {name!r} is not finite: {part}")
        total = sum(self.components.values())
        if not math.isclose(self.value, total, rel_tol=1e-12, abs_tol=1e-9):
            raise ValueError(f"reward value {self.value} is not the sum of its components {total}")
        return self


class AlertTruth(_Strict):
    """A queued alert with its hidden truth."""

    id: str = Field(pattern=ALERT_ID_PATTERN)
    visible_severity: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    alert_type: AlertTypeName
    age: int = Field(ge=0)
    service: str
    true_severity: float = Field(ge=0.0, le=1.0)
    is_false_positive: bool
    incident: int = Field(ge=-1, description="-1 for a false positive")
    correlation_group: int = Field(ge=-1, description="-1 for a false positive")


class IncidentState(_Strict):
    """An open incident (hidden)."""

    incident: int = Field(ge=0)
    service: str
    true_severity: float = Field(ge=0.0, le=1.0)
    critical: bool
    cascade: bool
    damage: float = Field(ge=0.0)
    escalated: bool
    correlation_group: int = Field(ge=0)


class EpisodeState(_Strict):
    """Everything about the episode, hidden truth included."""

    task_id: str
    seed: int | None
    episode_step: int = Field(ge=0)
    max_steps: int = Field(ge=1)
    done: bool
    terminated: bool
    truncated: bool
    cumulative_reward: float
    reward_totals: dict[str, float]
    task_score: float = Field(ge=0.0, le=1.0)
    failures_count: int = Field(ge=0)
    resource_budget: int = Field(ge=0)
    team: list[str]
    services: list[str]
    services_down: list[str]
    dependencies: list[tuple[str, str]] = Field(description="(upstream, dependent) pairs")
    queue: list[AlertTruth]
    incidents: list[IncidentState]
    actions: list[list[Action]] = Field(description="every step's decisions, for replay")
    config: dict[str, Any]


_FIELD_SETS: dict[type[BaseModel], frozenset[str]] = {
    cls: frozenset(cls.model_fields) for cls in (Alert, Observation, Reward)
}
