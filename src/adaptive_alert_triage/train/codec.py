"""Numpy-only translation between the env's faces and a learned policy.

Two things a trained policy needs in both places it runs (the SB3 adapter while
training, `PPOAgent` inside the single-agent env at evaluation), written once so
the two cannot drift apart:

* **The observation vector**: `observation_vector` rebuilds, from a pydantic
  `Observation` and the task config, exactly the flat float32 vector the gym
  faces produce (``AlertSim._base_features``); a test holds them equal.
* **The slot action codec**: the learned policy picks one choice per visible
  slot (0 = no decision, ``1 + verb`` = that verb), which is permutation
  friendly and cannot collide the way independent per-member picks do (two
  members on one alert is a wasted conflict). `slot_choices_to_members` turns
  the choices into the native per-member row with one fixed rule (claims
  oldest first, capped at K; the team's role limits), mirroring how the
  single-agent env hands decisions to members, so an agent's list of `Action`
  and the adapter's member row are the same decisions.

No torch and no SB3 here: importing this module is cheap and always works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import check_bool
from ..models import Observation
from ..sim.config import ACTION_TYPES, ALERT_TYPES, TaskConfig
from ..sim.engine import ESCALATE, GLOBAL_FEATURES, INVESTIGATE, N_VERBS, SLOT_FEATURES
from ..sim.topology import service_names

#: Saved with every policy; bumped when what its observations or actions mean changes.
POLICY_FORMAT = 1
#: Choices per slot: 0 is "no decision", ``1 + verb`` applies that verb.
N_CHOICES = 1 + N_VERBS
ACTION_MODES = ("slot", "member")
#: The most visible slots a task may have (``TaskConfig.n_slots`` is at most 256).
MAX_SLOTS = 256

_TYPE_INDEX = {name: i for i, name in enumerate(ALERT_TYPES)}
_VERB_INDEX = {name: i for i, name in enumerate(ACTION_TYPES)}


def base_dim(config: TaskConfig) -> int:
    """Length of the gym observation vector for ``config``."""
    return config.n_slots * SLOT_FEATURES + GLOBAL_FEATURES + config.n_services


def layout(config: TaskConfig) -> dict[str, int]:
    """What a network needs to parse the flat vector back into slots."""
    return {
        "n_slots": config.n_slots,
        "n_services": config.n_services,
        "slot_features": SLOT_FEATURES,
        "global_features": GLOBAL_FEATURES,
        "n_choices": N_CHOICES,
    }


def observation_vector(observation: Any, config: TaskConfig) -> np.ndarray:
    """The gym face's flat observation, rebuilt from a single-agent `Observation`.

    Why rebuild rather than read the simulator: an agent should act on what the
    env shows it, and this works for any source of `Observation` (a server
    client included), not only for an env object in the same process.
    """
    if not isinstance(observation, Observation):
        raise TypeError(f"observation must be an Observation, got {type(observation).__name__}")
    _check_config(config)
    n, s = config.n_slots, config.n_services
    q, k, a = config.queue_capacity, config.investigation_budget, config.n_agents
    index = _service_index(s)
    _check_fits(observation, config, index)
    out = np.zeros(base_dim(config), dtype=np.float32)
    alerts = observation.alerts[:n]
    slots = np.zeros((n, SLOT_FEATURES))
    services = np.full(n, -1, dtype=np.int64)
    for i, alert in enumerate(alerts):
        services[i] = index[alert.service]
        slots[i, 0] = 1.0
        slots[i, 1] = alert.visible_severity
        slots[i, 2] = alert.confidence
        slots[i, 3 + _TYPE_INDEX[alert.alert_type]] = 1.0
        slots[i, 3 + len(ALERT_TYPES)] = min(alert.age / config.max_steps, 1.0)
        slots[i, 4 + len(ALERT_TYPES)] = services[i] / max(s - 1, 1)
    present = services >= 0
    same = (services[:, None] == services[None, :]) & present[None, :]
    slots[:, 5 + len(ALERT_TYPES)] = (
        np.clip(same.sum(axis=1) - 1, 0, None) / max(n - 1, 1) * present
    )
    out[: n * SLOT_FEATURES] = slots.reshape(-1)
    g = out[n * SLOT_FEATURES : n * SLOT_FEATURES + GLOBAL_FEATURES]
    qlen = observation.queue_length
    t = observation.episode_step
    g[0] = observation.system_load
    g[1] = qlen / q
    g[2] = max(qlen - n, 0) / q
    g[3] = max(config.max_steps - t, 0) / config.max_steps
    g[4] = 1.0 if k > 0 else 0.0
    g[5] = min(k / a, 1.0)
    g[6] = min(observation.failures_count / (config.failure_threshold + 1), 1.0)
    down = out[n * SLOT_FEATURES + GLOBAL_FEATURES :]
    for name in observation.services_down:
        down[index[name]] = 1.0
    return out


def _service_index(n_services: int) -> dict[str, int]:
    return {name: i for i, name in enumerate(service_names(n_services))}


def _check_config(config: Any) -> None:
    if not isinstance(config, TaskConfig):
        raise TypeError(f"config must be a TaskConfig, got {type(config).__name__}")


def _check_fits(observation: Any, config: TaskConfig, index: dict[str, int]) -> None:
    """ValueError unless ``observation`` could come from a task shaped like
    ``config``. Why: an observation of another task (more slots, other
    services, another horizon or K) would otherwise be cut or mis-indexed into
    a vector the policy was never trained on, or fail with a bare KeyError."""
    task = f"task {config.task_id!r}"
    problems = []
    if len(observation.alerts) > config.n_slots:
        problems.append(f"{len(observation.alerts)} alerts shown, {task} shows {config.n_slots}")
    named = {a.service for a in observation.alerts} | set(observation.services_down)
    unknown = sorted(named - set(index))
    if unknown:
        problems.append(f"services {unknown} that {task} (n_services={config.n_services}) lacks")
    if observation.resource_budget != config.investigation_budget:
        problems.append(
            f"resource_budget {observation.resource_budget}, {task} has "
            f"investigation_budget {config.investigation_budget}"
        )
    horizon = observation.episode_step + observation.time_remaining
    if observation.time_remaining > 0 and horizon != config.max_steps:
        problems.append(
            f"episode_step + time_remaining = {horizon}, {task} has max_steps {config.max_steps}"
        )
    if observation.queue_length > config.queue_capacity:
        problems.append(
            f"queue_length {observation.queue_length} exceeds {task}'s queue_capacity "
            f"{config.queue_capacity}"
        )
    if problems:
        raise ValueError(
            f"the observation does not fit the config of {task}: {'; '.join(problems)} "
            f"(an observation of another task's shape?)"
        )


def slot_masks(present: np.ndarray, allow_escalate: bool = False) -> np.ndarray:
    """(B, N * N_CHOICES) bool: every choice on a present slot, only "no decision"
    on an empty one. ESCALATE is off by default: it spends the same K as an
    INVESTIGATE but resolves two steps later, so where investigators cover K
    (medium, hard) it never helps, and masking it shrinks exploration. (On easy
    it would be a third claim; a policy trained with it never used it.)"""
    present = _check_present(present)
    allow_escalate = check_bool("allow_escalate", allow_escalate)
    masks = np.repeat(present[:, :, None], N_CHOICES, axis=2)
    masks[:, :, 0] = True
    if not allow_escalate:
        masks[:, :, 1 + ESCALATE] = False
    return masks.reshape(present.shape[0], -1)


def _check_present(present: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``present``, a (B, N) bool array (of ``shape`` when given); else TypeError
    or ValueError. Why: a 1-D row would fail deep inside with an IndexError, and
    a cast to bool would take any garbage as "present"."""
    array = np.asarray(present)
    if array.dtype != np.bool_:
        raise TypeError(f"present must be a bool array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"present must have shape (n_envs, n_slots), got {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"present has shape {array.shape}, the choices {shape}: one row per env, "
            f"one column per slot"
        )
    return array


def check_choices(
    choices: Any, nvec: Sequence[int], what: str = "slot choice", column: str = "slot"
) -> np.ndarray:
    """``choices``, a (B, len(nvec)) array of integers with column ``j`` in
    ``0..nvec[j] - 1``, as int64; else TypeError (not integers) or ValueError
    naming the first bad value, its env and its ``column``. Why strict: a
    choice beyond its range decodes to another slot's action (``1 + slot * 4 +
    verb`` runs on into the next slot), and a cast to int truncates 2.7 to 2,
    so garbage would train."""
    array = np.asarray(choices)
    nvec = np.asarray(nvec, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{what}s must be integers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != nvec.shape[0]:
        raise ValueError(f"{what}s must have shape (n_envs, {nvec.shape[0]}), got {array.shape}")
    bad = (array < 0) | (array >= nvec)
    if bad.any():
        b, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{what} {int(array[b, j])} (env {int(b)}, {column} {int(j)}) is out of range; "
            f"allowed 0..{int(nvec[j]) - 1}"
        )
    return array.astype(np.int64)


def slot_choices_to_members(
    choices: np.ndarray, present: np.ndarray, config: TaskConfig
) -> np.ndarray:
    """(B, N) slot choices -> (B, A) native member actions (0 = NOOP).

    The rule, applied oldest slot first: claims (INVESTIGATE, ESCALATE) while
    fewer than K are taken, INVESTIGATE only while an investigator is free and
    ESCALATE only once (there is one desk); then IGNORE and DELAY with the
    members left, free investigators before the desk, as the single-agent env
    assigns them. Choices on empty slots and beyond those limits are dropped;
    a choice outside ``0..N_CHOICES - 1`` is an error (`check_choices`).
    """
    _check_config(config)
    choices = check_choices(choices, [N_CHOICES] * config.n_slots)
    present = _check_present(present, choices.shape)
    b_count = choices.shape[0]
    n_inv, desk = config.n_investigators, config.n_investigators
    budget = config.investigation_budget
    rows = np.zeros((b_count, config.n_agents), dtype=np.int64)
    active = (choices > 0) & present
    for b in np.flatnonzero(active.any(axis=1)).tolist():
        investigators, claims, desk_free, rest = 0, 0, True, []
        for slot in np.flatnonzero(active[b]).tolist():
            verb = int(choices[b, slot]) - 1
            code = 1 + slot * N_VERBS + verb
            if verb == INVESTIGATE:
                if claims < budget and investigators < n_inv:
                    rows[b, investigators] = code
                    investigators += 1
                    claims += 1
            elif verb == ESCALATE:
                if claims < budget and desk_free:
                    rows[b, desk] = code
                    desk_free = False
                    claims += 1
            else:
                rest.append(code)
        free = list(range(investigators, n_inv)) + ([desk] if desk_free else [])
        for member, code in zip(free, rest):
            rows[b, member] = code
    return rows


def member_row_to_decisions(
    row: Sequence[int], config: TaskConfig | None = None
) -> list[tuple[int, str]]:
    """A native member row as (slot, verb name) decisions, one per alert.

    Two members on one alert would be a conflict the single-agent env refuses,
    so only the first decision on each slot is kept (claims first, since they
    are what the policy spends K on).

    Every code must be an integer in ``0..n_slots * 4`` (0 is NOOP), with
    ``n_slots`` from ``config``, or without one the most any task has
    (`MAX_SLOTS`); else TypeError or ValueError naming it. Why: -5 or 2.7 used
    to decode to a verb the policy never chose, and 10**6 to slot 249999."""
    if config is not None:
        _check_config(config)
    n_slots = MAX_SLOTS if config is None else config.n_slots
    array = np.asarray(row)
    if array.ndim != 1:
        raise ValueError(f"a member row must be 1-D, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"member actions must be integers, got dtype {array.dtype}")
    top = n_slots * N_VERBS
    bad = np.flatnonzero((array < 0) | (array > top))
    if len(bad):
        where = f"n_slots={n_slots}" + ("" if config is not None else ", the most any task has")
        raise ValueError(
            f"member action {int(array[bad[0]])} (member {int(bad[0])}) is out of range; "
            f"allowed 0..{top} ({where})"
        )
    decisions: dict[int, str] = {}
    codes = [int(c) for c in array.tolist() if c > 0]
    codes.sort(key=lambda c: (c - 1) % N_VERBS not in (INVESTIGATE, ESCALATE))
    for code in codes:
        slot, verb = divmod(code - 1, N_VERBS)
        decisions.setdefault(slot, ACTION_TYPES[verb])
    return sorted(decisions.items())


def check_assignable(decisions: list[tuple[int, str]], config: TaskConfig) -> None:
    """Raise if the single-agent env would refuse these decisions (a bug guard)."""
    verbs = [v for _, v in decisions]
    if verbs.count("ESCALATE") > 1 or verbs.count("INVESTIGATE") > config.n_investigators:
        raise ValueError(f"decisions {decisions} exceed the team's roles")
    if len(decisions) > config.n_agents:
        raise ValueError(f"{len(decisions)} decisions for a team of {config.n_agents}")


__all__ = [
    "ACTION_MODES",
    "MAX_SLOTS",
    "N_CHOICES",
    "POLICY_FORMAT",
    "base_dim",
    "check_assignable",
    "check_choices",
    "layout",
    "member_row_to_decisions",
    "observation_vector",
    "slot_choices_to_members",
    "slot_masks",
]
