"""Scenario and task parameters as plain data.

A task is a `TaskConfig`: every number that shapes an episode lives here, so a
user can write a JSON or YAML scenario and run it without touching code. The
core reads only this object; it never looks up a task by name itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ALERT_TYPES: tuple[str, ...] = ("CPU", "MEMORY", "DISK", "NETWORK", "APPLICATION", "SECURITY")
ACTION_TYPES: tuple[str, ...] = ("INVESTIGATE", "IGNORE", "ESCALATE", "DELAY")

#: Reward components and their default values (the project's documented table).
DEFAULT_REWARDS: dict[str, float] = {
    "critical_investigated": 10.0,
    "cascade_prevented": 5.0,
    "false_positive_ignored": 3.0,
    "unnecessary_investigation": -2.0,
    "missed_critical": -8.0,
    "system_failure": -10.0,
}
REWARD_COMPONENTS: tuple[str, ...] = tuple(DEFAULT_REWARDS)


#: The allowed range of each integer parameter. The core keeps times and
#: incident numbers in int32 (`engine.AlertSim`), which these bounds keep in range.
INT_RANGES: dict[str, tuple[int, int]] = {
    "max_steps": (1, 10_000),
    "n_investigators": (1, 64),
    "investigation_budget": (0, 1_000),
    "n_services": (1, 256),
    "graph_depth": (1, 64),
    "max_dependencies": (1, 16),
    "n_slots": (1, 256),
    "queue_capacity": (1, 4096),
    "failure_threshold": (0, 100_000),
    "recovery_steps": (1, 1_000),
    "cascade_delay_min": (0, 1_000),
    "cascade_delay_max": (0, 1_000),
    "escalation_delay": (1, 1_000),
    "max_noise_per_step": (0, 256),
}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Everything that defines a task. Validated on construction.

    Rates are per time step. Probabilities are in [0, 1].
    """

    task_id: str = "custom"
    description: str = ""
    max_steps: int = 30
    # --- the team and its budget
    n_investigators: int = 3
    investigation_budget: int = 2  # K: INVESTIGATE + ESCALATE claims granted per step
    # --- the estate
    n_services: int = 12
    graph_depth: int = 2  # layers of the hidden dependency DAG; 1 means no edges
    max_dependencies: int = 2  # upstream services a service may depend on
    topology: dict[str, Any] | None = None  # fixed graph: {"edges": [[u, v], ...]}
    # --- the visible queue
    n_slots: int = 10
    queue_capacity: int = 64
    # --- incident process (self-exciting, so storms happen)
    base_incident_rate: float = 0.8
    storm_jump: float = 0.35
    storm_decay: float = 0.6
    critical_share: float = 0.45
    emit_prob: float = 0.5
    primary_type_prob: float = 0.75
    # --- damage and failure
    damage_rate: float = 0.2
    minor_damage_factor: float = 0.25
    minor_resolve_prob: float = 0.15
    failure_threshold: int = 4  # the episode terminates once failures exceed this
    recovery_steps: int = 3
    cascade_prob: float = 0.4
    cascade_delay_min: int = 1
    cascade_delay_max: int = 2
    escalation_delay: int = 2
    # --- false positives and observation noise
    noise_rate: float = 1.5
    max_noise_per_step: int = 8
    noise_clear_prob: float = 0.05
    severity_noise: float = 0.15
    ensure_nonempty_queue: bool = True
    # --- rewards
    rewards: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_REWARDS))

    def __post_init__(self) -> None:
        for name, (lo, hi) in INT_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
            _check(lo <= value <= hi, f"{name}={value} is out of range; allowed [{lo}, {hi}]")
        probs = (
            "storm_decay",
            "critical_share",
            "emit_prob",
            "primary_type_prob",
            "minor_damage_factor",
            "minor_resolve_prob",
            "cascade_prob",
            "noise_clear_prob",
        )
        for name in probs:
            self._check_float(name, 0.0, 1.0)
        for name in ("base_incident_rate", "storm_jump", "noise_rate"):
            self._check_float(name, 0.0, 100.0)
        self._check_float("damage_rate", 0.0, 10.0)
        self._check_float("severity_noise", 0.0, 5.0)
        _check(
            self.cascade_delay_min <= self.cascade_delay_max,
            f"cascade_delay_min={self.cascade_delay_min} exceeds "
            f"cascade_delay_max={self.cascade_delay_max}",
        )
        _check(
            self.graph_depth <= self.n_services,
            f"graph_depth={self.graph_depth} exceeds n_services={self.n_services}",
        )
        _check(
            self.n_slots <= self.queue_capacity,
            f"n_slots={self.n_slots} exceeds queue_capacity={self.queue_capacity}",
        )
        if not isinstance(self.ensure_nonempty_queue, bool):
            raise TypeError(
                f"ensure_nonempty_queue must be a bool, got {self.ensure_nonempty_queue!r}"
            )
        if not isinstance(self.rewards, Mapping):
            raise TypeError(f"rewards must be a mapping, got {type(self.rewards).__name__}")
        unknown = set(self.rewards) - set(REWARD_COMPONENTS)
        _check(
            not unknown,
            f"unknown reward components {sorted(unknown)}; allowed {list(REWARD_COMPONENTS)}",
        )
        merged = dict(DEFAULT_REWARDS)
        for name, value in self.rewards.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"reward {name!r} must be a number, got {value!r}")
            _check(math.isfinite(value), f"reward {name!r} must be finite, got {value!r}")
            merged[name] = float(value)
        object.__setattr__(self, "rewards", merged)
        if self.topology is not None:
            from .topology import validate_topology  # local: topology imports config

            validate_topology(self.topology, self.n_services)

    def _check_float(self, name: str, lo: float, hi: float) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
        _check(
            math.isfinite(value) and lo <= value <= hi,
            f"{name}={value} is out of range; allowed [{lo}, {hi}]",
        )
        object.__setattr__(self, name, float(value))

    # ------------------------------------------------------------------ derived
    @property
    def n_agents(self) -> int:
        """Investigators plus the escalation desk."""
        return self.n_investigators + 1

    @property
    def reward_vector(self) -> tuple[float, ...]:
        return tuple(self.rewards[name] for name in REWARD_COMPONENTS)

    # ------------------------------------------------------------------ loading
    def replace(self, **overrides: Any) -> TaskConfig:
        """A copy with some fields changed; unknown names are an error."""
        check_field_names(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskConfig:
        """Build from a mapping. A `base` key names a built-in task to start from."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a scenario must be a mapping, got {type(data).__name__}")
        data = dict(data)
        base = data.pop("base", None)
        if base is None:
            check_field_names(data)
            return cls(**data)
        return get_task(base).replace(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> TaskConfig:
        """Load a scenario from a .json, .yaml or .yml file."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"scenario file {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ImportError(
                    "YAML scenarios need PyYAML: pip install 'adaptive-alert-triage[yaml]'"
                ) from exc
            data = yaml.safe_load(text)
        else:
            raise ValueError(f"scenario file {str(path)!r} must end in .json, .yaml or .yml")
        return cls.from_dict(data)


FIELD_NAMES: frozenset[str] = frozenset(f.name for f in dataclasses.fields(TaskConfig))


def check_field_names(overrides: Mapping[str, Any]) -> None:
    unknown = sorted(set(overrides) - FIELD_NAMES)
    if set(unknown) & {"trace", "trace_step_seconds", "trace_synthetic"}:
        raise TypeError(
            "a trace scenario is played by the PettingZoo env and the single-agent env "
            "(they apply it between steps); this face takes TaskConfig fields only"
        )
    if unknown:
        raise TypeError(f"unknown task parameter(s) {unknown}; allowed: {sorted(FIELD_NAMES)}")


TASKS: dict[str, TaskConfig] = {
    "easy": TaskConfig(
        task_id="easy",
        description="Basic prioritisation: a small flat estate, no cascades, K not binding.",
        max_steps=20,
        n_investigators=2,
        investigation_budget=3,
        n_services=6,
        graph_depth=1,
        n_slots=8,
        base_incident_rate=0.45,
        storm_jump=0.2,
        critical_share=0.5,
        damage_rate=0.2,
        failure_threshold=5,
        cascade_prob=0.0,
        noise_rate=0.8,
        severity_noise=0.1,
    ),
    "medium": TaskConfig(
        task_id="medium",
        description="Resource-constrained triage: K binds, shallow dependencies.",
        max_steps=30,
        n_investigators=3,
        investigation_budget=2,
        n_services=12,
        graph_depth=2,
        n_slots=10,
        base_incident_rate=0.7,
        storm_jump=0.35,
        critical_share=0.45,
        damage_rate=0.2,
        failure_threshold=4,
        cascade_prob=0.35,
        noise_rate=1.6,
        severity_noise=0.15,
    ),
    "hard": TaskConfig(
        task_id="hard",
        description="Cascading-failure prevention: a deep dependency graph, K binds, "
        "a strict failure threshold.",
        max_steps=50,
        n_investigators=4,
        investigation_budget=2,
        n_services=20,
        graph_depth=4,
        n_slots=12,
        base_incident_rate=0.6,
        storm_jump=0.45,
        critical_share=0.45,
        damage_rate=0.22,
        failure_threshold=3,
        cascade_prob=0.75,
        noise_rate=1.8,
        severity_noise=0.2,
    ),
}


def get_task(task_id: str) -> TaskConfig:
    if not isinstance(task_id, str):
        raise TypeError(f"task_id must be a str, got {type(task_id).__name__}")
    if task_id not in TASKS:
        raise ValueError(f"unknown task_id {task_id!r}; allowed: {sorted(TASKS)}")
    return TASKS[task_id]


def resolve_config(
    task_id: str | None = "medium",
    scenario: TaskConfig | Mapping[str, Any] | str | Path | None = None,
    **overrides: Any,
) -> TaskConfig:
    """The one way every face turns (task, scenario, overrides) into a config."""
    if scenario is None:
        config = get_task(task_id if task_id is not None else "medium")
    elif isinstance(scenario, TaskConfig):
        config = scenario
    elif isinstance(scenario, Mapping):
        config = TaskConfig.from_dict(scenario)
    elif isinstance(scenario, (str, Path)):
        config = TaskConfig.from_file(scenario)
    else:
        raise TypeError(
            "scenario must be a TaskConfig, a mapping or a file path, "
            f"got {type(scenario).__name__}"
        )
    return config.replace(**overrides) if overrides else config
