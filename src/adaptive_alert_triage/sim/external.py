"""Alerts from outside the simulator: queued between steps, with ground truth.

Live sessions and trace replays put real alert streams into an episode. The
simulator needs a hidden truth for every alert it grades, and a real alert
arrives without one, so the caller supplies it (`draw_truth` is the documented
model the adapters use). What happens to an external alert:

* **Noise** (``is_noise``): it is queued as a false positive, tied to no
  incident. Like any flapping monitor it may clear itself later.
* **Real, on a service with an open incident:** it joins that incident (same
  incident, correlation group and true severity), as a second symptom would.
* **Real, on a healthy service:** it opens a root incident there with its true
  severity (critical iff >= ``CRITICAL_LEVEL``), which accumulates damage, can
  fail the service and can cascade along the hidden graph like any other.
* **Real, on a service that is down:** the outage already happened, so it is
  queued as a symptom of an incident that is over (investigating it is
  redundant, ignoring it is correct).

An alert that finds the queue full is not queued; the caller is told how many
(``dropped``), never silently. None of this draws from the environment's
random stream, so an episode with no external alerts is unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from .engine import (
    AL_ACTIVE,
    AL_BIRTH,
    AL_CONF,
    AL_COUNTER,
    AL_GROUP,
    AL_INCIDENT,
    AL_NOISE,
    AL_SERVICE,
    AL_TRUE_SEV,
    AL_TYPE,
    AL_VIS_SEV,
    FLAG_CASCADE,
    FLAG_CRITICAL,
    I_CLOSED,
    I_FIRST_ALERT,
    I_FIRST_FLAGS,
    N_ALERT_FIELDS,
    AlertSim,
    alert_id_from_counter,
    format_alert_id,
)
from .incidents import CRITICAL_LEVEL, N_TYPES

#: Confidence assumed for a sender that reports none.
DEFAULT_CONFIDENCE = 0.6
#: Bounds of the chance that an external alert is a false positive.
NOISE_CHANCE_BOUNDS = (0.05, 0.95)


@dataclasses.dataclass(frozen=True)
class ExternalAlert:
    """One alert to queue, with the hidden truth the caller drew for it."""

    service: int
    alert_type: int
    visible_severity: float
    confidence: float
    is_noise: bool
    true_severity: float  # ignored for noise (a false positive's truth is 0)
    age: int = 0  # steps it has already been firing


@dataclasses.dataclass
class Injection:
    """What `inject` did: the queue counter of each alert (-1 if dropped), and
    first-alert records laid out like one env's row of ``StepOutcome.incidents``
    and ``incident_severity``, so graders count the incidents it opened."""

    counters: list[int]
    incidents: np.ndarray  # (S, 3) int64
    incident_severity: np.ndarray  # (S,) float64
    dropped_real: int = 0  # dropped alerts that were not false positives

    @property
    def dropped(self) -> int:
        return sum(1 for c in self.counters if c < 0)


def stable_hash(text: str) -> int:
    """A 63-bit hash of ``text`` that is the same in every process."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def draw_truth(
    key: str,
    episode_seed: int,
    visible_severity: float,
    confidence: float | None,
    severity_noise: float,
) -> tuple[bool, float, float]:
    """Synthetic ground truth for a real alert: (is_noise, true severity,
    confidence used).

    The model: the alert is a false positive with probability ``1 -
    confidence`` (clipped to `NOISE_CHANCE_BOUNDS`; `DEFAULT_CONFIDENCE` when
    the sender gives none), and otherwise its true severity is the reported one
    plus the task's observation noise, as in the simulator's own alerts. The
    draw depends only on (episode seed, alert key), so it is the same whatever
    order alerts arrive in and whatever else runs in the process.
    """
    conf = DEFAULT_CONFIDENCE if confidence is None else float(confidence)
    rng = np.random.default_rng([int(episode_seed) & (2**63 - 1), stable_hash(key)])
    p_noise = min(max(1.0 - conf, NOISE_CHANCE_BOUNDS[0]), NOISE_CHANCE_BOUNDS[1])
    is_noise = bool(rng.random() < p_noise)
    true = float(np.clip(visible_severity + severity_noise * rng.standard_normal(), 0.05, 1.0))
    return is_noise, (0.0 if is_noise else true), conf


def _check(alert: ExternalAlert, sim: AlertSim) -> None:
    if not isinstance(alert, ExternalAlert):
        raise TypeError(f"expected an ExternalAlert, got {type(alert).__name__}")
    # Whole numbers: the queue stores them as floats, and the observation
    # reads them back as indices (service, type) and step counts (age).
    for name in ("service", "alert_type", "age"):
        value = getattr(alert, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= alert.service < sim.S:
        raise ValueError(f"service {alert.service} is out of range; allowed 0..{sim.S - 1}")
    if not 0 <= alert.alert_type < N_TYPES:
        raise ValueError(f"alert_type {alert.alert_type} is out of range; allowed 0..{N_TYPES - 1}")
    for name in ("visible_severity", "confidence", "true_severity"):
        value = getattr(alert, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if alert.age < 0:
        raise ValueError(f"age must be >= 0, got {alert.age}")


def inject(sim: AlertSim, b: int, alerts: list[ExternalAlert]) -> Injection:
    """Queue ``alerts`` in env ``b`` of ``sim`` (between steps), after the
    alerts already queued, in the order given."""
    for alert in alerts:
        _check(alert, sim)
    S = sim.S
    incidents = np.full((S, 3), -1, dtype=np.int64)
    incidents[:, I_FIRST_FLAGS] = 0
    severity = np.zeros(S)
    counters: list[int] = []
    t = int(sim.t[b])
    queue = sim.alerts[b]
    for alert in alerts:
        free = np.flatnonzero(queue[:, AL_ACTIVE] < 0.5)
        if free.size == 0:
            counters.append(-1)
            continue
        s = alert.service
        row = np.zeros(N_ALERT_FIELDS)
        row[AL_ACTIVE] = 1.0
        row[AL_SERVICE] = s
        row[AL_TYPE] = alert.alert_type
        row[AL_VIS_SEV] = alert.visible_severity
        row[AL_CONF] = alert.confidence
        row[AL_BIRTH] = t - alert.age
        if alert.is_noise:
            row[AL_INCIDENT] = -1
            row[AL_GROUP] = -1
            row[AL_NOISE] = 1.0
        elif sim.inc_active[b, s]:
            row[AL_INCIDENT] = sim.inc_uid[b, s]
            row[AL_GROUP] = sim.inc_group[b, s]
            row[AL_TRUE_SEV] = sim.inc_severity[b, s]
            if not sim.inc_alerted[b, s]:  # a silent incident's first symptom
                sim.inc_alerted[b, s] = True
                _note_first(sim, b, s, incidents, severity)
        elif sim.down_until[b, s] > t:
            row[AL_INCIDENT] = -1
            row[AL_GROUP] = -1
            row[AL_TRUE_SEV] = alert.true_severity
        else:
            uid = int(sim.incident_counter[b])
            sim.incident_counter[b] += 1
            sim.inc_active[b, s] = True
            sim.inc_uid[b, s] = uid
            sim.inc_group[b, s] = uid
            sim.inc_type[b, s] = alert.alert_type
            sim.inc_severity[b, s] = alert.true_severity
            sim.inc_critical[b, s] = alert.true_severity >= CRITICAL_LEVEL
            sim.inc_cascade[b, s] = False
            sim.inc_damage[b, s] = 0.0
            sim.inc_silent_until[b, s] = t
            sim.inc_alerted[b, s] = True
            sim.inc_escalated_until[b, s] = -1
            sim.inc_escalator[b, s] = -1
            row[AL_INCIDENT] = uid
            row[AL_GROUP] = uid
            row[AL_TRUE_SEV] = alert.true_severity
            _note_first(sim, b, s, incidents, severity)
        counter = int(sim.alert_counter[b])
        sim.alert_counter[b] += 1
        sim.alerts_total[b] += 1
        row[AL_COUNTER] = counter
        queue[free[0]] = row
        sim.extent[b] = max(int(sim.extent[b]), int(free[0]) + 1)  # rows past it stay zero
        counters.append(counter)
    sim._refresh_legal()
    return Injection(counters, incidents, severity)


def _note_first(sim: AlertSim, b: int, s: int, incidents: np.ndarray, severity: np.ndarray) -> None:
    incidents[s, I_CLOSED] = -1
    incidents[s, I_FIRST_ALERT] = sim.inc_uid[b, s]
    incidents[s, I_FIRST_FLAGS] = FLAG_CRITICAL * bool(
        sim.inc_critical[b, s]
    ) + FLAG_CASCADE * bool(sim.inc_cascade[b, s])
    severity[s] = sim.inc_severity[b, s]


def _row_of(sim: AlertSim, b: int, counter: int) -> int | None:
    queue = sim.alerts[b]
    hit = np.flatnonzero((queue[:, AL_ACTIVE] > 0.5) & (queue[:, AL_COUNTER] == counter))
    return int(hit[0]) if hit.size else None


def update(sim: AlertSim, b: int, counter: int, visible_severity: float) -> bool:
    """A repeated notification of a queued alert: refresh what it shows.
    Returns False if the alert is no longer queued."""
    if not 0.0 <= visible_severity <= 1.0:
        raise ValueError(f"visible_severity must be in [0, 1], got {visible_severity!r}")
    row = _row_of(sim, b, counter)
    if row is None:
        return False
    sim.alerts[b, row, AL_VIS_SEV] = visible_severity
    return True


def withdraw(sim: AlertSim, b: int, counter: int) -> bool:
    """The sender resolved a queued alert: take it off the queue (the queue
    stays in arrival order). Its incident, if any, goes on: the symptom cleared,
    not necessarily the cause. Returns False if it was no longer queued."""
    row = _row_of(sim, b, counter)
    if row is None:
        return False
    queue = sim.alerts[b]
    kept = np.delete(queue, row, axis=0)
    queue[:-1] = kept
    queue[-1] = 0.0
    sim._refresh_legal()
    return True


def alert_id(sim: AlertSim, b: int, counter: int) -> str:
    """The opaque id the agent sees for the alert with queue counter ``counter``."""
    return format_alert_id(int(alert_id_from_counter(np.uint64(counter), sim.id_key[b])))
