"""Ingested alerts into episodes: live feeds and trace replay.

`EpisodeFeed` applies a stream of `AlertEvent`s to one running episode:

* a ``firing`` notification of a key not yet seen in the episode queues a new
  alert, with synthetic ground truth (`sim.external.draw_truth`);
* a repeated ``firing`` notification of a key still queued refreshes the
  alert's visible severity (an update, not a duplicate); one for a key the
  team already decided is a re-notification and changes nothing;
* a ``resolved`` notification takes a queued alert off the queue (its
  incident, if it had one, goes on); after it, the key may fire again as a new
  alert;
* a status-only ``firing`` notification (an acknowledgement) changes nothing,
  and one for a key the episode never saw is counted (``unknown_key``), not
  queued: it says nothing about the alert;
* a ``firing`` notification that finds the queue full is counted as
  ``dropped``. The alert is still firing and nobody decided it, so a later
  ``firing`` notification of it is queued if there is room then (counted as
  ``queued``), or counted as ``dropped`` again if not. ``dropped`` counts
  notifications that found the queue full, as the step's ``dropped_alerts``
  does, not distinct alerts; a ``resolved`` one forgets the dropped alert.

Services are matched by name to the episode's services (``svc-03``); any other
name maps to a service by a stable hash of the name, so one real service is
always the same simulated one.

`Trace` turns a recorded stream into a schedule of steps: the deterministic
episode a replay plays. `LiveFeed` polls an `AlertStore` for what arrives
while a session runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..sim import external
from ..sim.config import ALERT_TYPES
from ..sim.engine import (
    AL_ACTIVE,
    AL_COUNTER,
    E_FIRST_ALERT,
    I_FIRST_ALERT,
    I_FIRST_FLAGS,
    N_DROPPED,
    N_DROPPED_REAL,
    N_NEW_ALERTS,
    AlertSim,
    StepOutcome,
)
from ..sim.topology import service_names
from .model import AlertEvent, PayloadError
from .store import AlertStore

#: Seconds of alert time one replay step covers when the trace does not say
#: (a trace longer than the episode is compressed to fit, never cut).
DEFAULT_STEP_SECONDS = 60.0
#: Keys of a scenario mapping that describe a trace rather than a TaskConfig.
TRACE_KEYS = ("trace", "trace_step_seconds", "trace_synthetic")


def service_index(name: str, n_services: int) -> int:
    """The simulated service a real service name stands for."""
    names = service_names(n_services)
    if name in names:
        return names.index(name)
    return external.stable_hash(f"service:{name}") % n_services


def event_time(event: AlertEvent, received_at: float | None = None) -> float | None:
    """When a notification happened by the sender's clock: the end of a
    resolved alert, the start of a firing one, else when it was received."""
    if event.status == "resolved" and event.ends_at is not None:
        return event.ends_at
    if event.status == "firing" and event.starts_at is not None:
        return event.starts_at
    return received_at


class EpisodeFeed:
    """External alerts of one episode of env ``b`` of ``sim``."""

    def __init__(self, sim: AlertSim, b: int = 0, step_seconds: float = DEFAULT_STEP_SECONDS):
        self.sim = sim
        self.b = b
        self.step_seconds = step_seconds
        # The truth is drawn per (episode, key); id_key is drawn from the
        # episode's seed, so it identifies the episode deterministically.
        self.episode_key = int(sim.id_key[b])
        self.queued: dict[str, int] = {}  # key -> queue counter of its alert
        self.decided: set[str] = set()  # keys whose alert left the queue, not by the sender
        # Keys whose alert found the queue full: never decided, so queued when re-sent.
        self.dropped: set[str] = set()
        self.ids: dict[str, str] = {}  # key -> the alert id the agent sees
        self.stats = dict.fromkeys(
            ("queued", "updated", "withdrawn", "renotified", "unknown_key", "dropped"), 0
        )

    def _sweep(self) -> None:
        """Keys whose alert left the queue since the last call (decided by the
        team, closed with its incident, or cleared) are no longer queued."""
        if not self.queued:
            return
        alerts = self.sim.alerts[self.b]
        live = set(alerts[alerts[:, AL_ACTIVE] > 0.5, AL_COUNTER].astype(np.int64).tolist())
        for key, counter in list(self.queued.items()):
            if counter not in live:
                del self.queued[key]
                self.decided.add(key)

    def apply(self, events: Iterable[AlertEvent], now: float | None = None) -> external.Injection:
        """Apply notifications in order; returns what was queued."""
        self._sweep()
        sim, b = self.sim, self.b
        cfg = sim.config
        fresh: list[tuple[str, external.ExternalAlert]] = []
        pending: dict[str, int] = {}
        for ev in events:
            key = ev.dedup_key
            if ev.status == "resolved":
                if key in pending:
                    fresh.pop(pending.pop(key))  # fired and resolved within one poll
                    pending = {k: i for i, (k, _) in enumerate(fresh)}
                    self.stats["withdrawn"] += 1
                elif key in self.queued:
                    external.withdraw(sim, b, self.queued.pop(key))
                    self.stats["withdrawn"] += 1
                elif key in self.decided or key in self.dropped:
                    self.decided.discard(key)  # it may fire again as a new alert
                    self.dropped.discard(key)
                else:
                    self.stats["unknown_key"] += 1
                continue
            if ev.status_only:  # an acknowledgement: it shows nothing new
                known = (
                    key in pending
                    or key in self.queued
                    or key in self.decided
                    or key in self.dropped
                )
                self.stats["renotified" if known else "unknown_key"] += 1
                continue
            if key in pending:
                i = pending[key]
                fresh[i] = (key, _replace_severity(fresh[i][1], ev.severity))
                self.stats["updated"] += 1
                continue
            if key in self.queued:
                external.update(sim, b, self.queued[key], ev.severity)
                self.stats["updated"] += 1
                continue
            if key in self.decided:
                self.stats["renotified"] += 1
                continue
            is_noise, true_sev, conf = external.draw_truth(
                key, self.episode_key, ev.severity, ev.confidence, cfg.severity_noise
            )
            age = 0
            if now is not None and ev.starts_at is not None and now > ev.starts_at:
                age = min(int((now - ev.starts_at) // self.step_seconds), cfg.max_steps)
            alert = external.ExternalAlert(
                service=service_index(ev.service, sim.S),
                alert_type=ALERT_TYPES.index(ev.alert_type),
                visible_severity=float(ev.severity),
                confidence=conf,
                is_noise=is_noise,
                true_severity=true_sev,
                age=age,
            )
            pending[key] = len(fresh)
            fresh.append((key, alert))
        injection = external.inject(sim, b, [alert for _, alert in fresh])
        for (key, _alert), counter in zip(fresh, injection.counters):
            if counter < 0:
                self.stats["dropped"] += 1
                self.dropped.add(key)  # not decided: a re-notification may queue it
                continue
            self.dropped.discard(key)
            self.queued[key] = counter
            self.ids[key] = external.alert_id(sim, b, counter)
            self.stats["queued"] += 1
        injection.dropped_real = sum(
            1 for (_, alert), c in zip(fresh, injection.counters) if c < 0 and not alert.is_noise
        )
        return injection


def _replace_severity(alert: external.ExternalAlert, severity: float) -> external.ExternalAlert:
    return dataclasses.replace(alert, visible_severity=float(severity))


def _merge_first_alerts(
    incidents: np.ndarray, severity: np.ndarray, injection: external.Injection
) -> np.ndarray:
    """Write the injection's first-alert records into one env's ``incidents``
    (S, 3) and ``severity`` (S,) rows; returns the services it wrote."""
    first = injection.incidents[:, I_FIRST_ALERT] >= 0
    if first.any():
        incidents[first, I_FIRST_ALERT] = injection.incidents[first, I_FIRST_ALERT]
        incidents[first, I_FIRST_FLAGS] = injection.incidents[first, I_FIRST_FLAGS]
        severity[first] = injection.incident_severity[first]
    return first


def merge_into_outcome(out: StepOutcome, injection: external.Injection, b: int = 0) -> None:
    """Count what a feed queued after a step in that step's outcome records,
    so graders and infos see the external alerts like any other arrival."""
    first = _merge_first_alerts(out.incidents[b], out.incident_severity[b], injection)
    out.service_events[b, first, E_FIRST_ALERT] = True
    queued = sum(1 for c in injection.counters if c >= 0)
    out.counts[b, N_NEW_ALERTS] += queued
    out.counts[b, N_DROPPED] += injection.dropped
    out.counts[b, N_DROPPED_REAL] += injection.dropped_real


def merge_into_reset(sim: AlertSim, injection: external.Injection, b: int = 0) -> None:
    """The same for the alerts queued as an episode opens."""
    _merge_first_alerts(sim.reset_incidents[b], sim.reset_incident_severity[b], injection)


class Trace:
    """A recorded alert stream as a schedule: the notifications due at each
    step of an episode. ``step_seconds`` of alert time make one step; by
    default the whole trace is spread over the episode's steps."""

    def __init__(
        self,
        timed_events: Sequence[tuple[float, AlertEvent]],
        max_steps: int,
        step_seconds: float | None = None,
    ) -> None:
        if not timed_events:
            raise ValueError("a trace needs at least one alert; this one is empty")
        if step_seconds is not None and (
            isinstance(step_seconds, bool)
            or not isinstance(step_seconds, (int, float))
            or not math.isfinite(step_seconds)
            or step_seconds <= 0
        ):
            raise ValueError(f"trace_step_seconds must be a positive number, got {step_seconds!r}")
        ordered = sorted(enumerate(timed_events), key=lambda item: (item[1][0], item[0]))
        t0 = ordered[0][1][0]
        span = ordered[-1][1][0] - t0
        if step_seconds is None:
            # The last notification lands on the last step that still lets the
            # team act on it.
            step_seconds = max(span / max(max_steps - 1, 1), 1e-9) if span > 0 else 1.0
        self.step_seconds = float(step_seconds)
        self.max_steps = max_steps
        self.schedule: dict[int, list[AlertEvent]] = {}
        self.beyond = 0
        for _, (when, event) in ordered:
            step = math.floor((when - t0) / self.step_seconds + 1e-9)
            if step >= max_steps:
                self.beyond += 1
                step = max_steps - 1
            self.schedule.setdefault(step, []).append(event)
        self.n_events = len(ordered)

    def at(self, step: int) -> list[AlertEvent]:
        return self.schedule.get(step, [])

    @classmethod
    def from_store(
        cls,
        store: AlertStore,
        max_steps: int,
        step_seconds: float | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> Trace:
        stored = store.events(source=source, since=since, until=until)
        if not stored:
            raise ValueError(f"the store {str(store.path)!r} has no alerts to replay")
        return cls(
            [(event_time(s.event, s.received_at), s.event) for s in stored], max_steps, step_seconds
        )


def _native_events(records: Sequence[Any]) -> list[tuple[float, AlertEvent]]:
    from .formats import parse

    timed = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"trace alert {i} must be a JSON object, got {type(record).__name__}")
        record = dict(record)
        when = record.pop("time", None)
        _, parsed = parse(record, "native")
        item = parsed[0]
        if isinstance(item, PayloadError):
            raise ValueError(f"trace alert {i}: {item}") from None
        stamp = when if when is not None else event_time(item)
        if stamp is None:
            raise ValueError(
                f"trace alert {i} has no time: give 'time' (Unix seconds) or 'starts_at'"
            )
        if (
            isinstance(stamp, bool)
            or not isinstance(stamp, (int, float))
            or not math.isfinite(stamp)
        ):
            raise ValueError(f"trace alert {i}: time must be Unix seconds, got {stamp!r}")
        timed.append((float(stamp), item))
    return timed


def load_trace(spec: Any, max_steps: int, step_seconds: float | None = None) -> Trace:
    """A trace from a scenario's ``trace`` value: a list of alerts in the
    project's JSON (each with ``time`` or ``starts_at``), a ``.json`` /
    ``.jsonl`` file of them, a SQLite store path (``.db``, ``.sqlite``,
    ``.sqlite3``), or ``{"db": path, "source": ..., "since": ..., "until": ...}``."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"db", "source", "since", "until"}
        if "db" not in spec or unknown:
            raise ValueError(
                "a trace mapping must be {'db': path, 'source'?, 'since'?, 'until'?}, "
                f"got keys {sorted(spec)}"
            )
        path = Path(spec["db"])
        if not path.is_file():
            raise ValueError(f"trace store {str(path)!r} does not exist")
        with AlertStore(path) as store:
            return Trace.from_store(
                store,
                max_steps,
                step_seconds,
                source=spec.get("source"),
                since=spec.get("since"),
                until=spec.get("until"),
            )
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"trace file {str(path)!r} does not exist")
        suffix = path.suffix.lower()
        if suffix in (".db", ".sqlite", ".sqlite3"):
            return load_trace({"db": path}, max_steps, step_seconds)
        if suffix == ".jsonl":
            lines = path.read_text().splitlines()
            try:
                records = [json.loads(line) for line in lines if line.strip()]
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"trace file {str(path)!r} is not valid JSON lines: {exc}"
                ) from None
        elif suffix == ".json":
            try:
                records = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"trace file {str(path)!r} is not valid JSON: {exc}") from None
            if isinstance(records, Mapping):
                records = records.get("alerts", [records])
        else:
            raise ValueError(
                f"trace file {str(path)!r} must end in .json, .jsonl, .db, .sqlite or .sqlite3"
            )
        return Trace(_native_events(records), max_steps, step_seconds)
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        return Trace(_native_events(spec), max_steps, step_seconds)
    raise TypeError(
        "trace must be a list of alerts, a .json/.jsonl/.db path or {'db': path}, "
        f"got {type(spec).__name__}"
    )


class LiveFeed:
    """What an `AlertStore` receives while a session runs. `start` returns the
    alerts firing now; each `poll` returns the notifications stored since."""

    def __init__(self, store: AlertStore, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.clock = clock or time.time
        self.cursor = 0

    def start(self) -> list[AlertEvent]:
        self.cursor = self.store.last_seq()
        return self.store.open_events()

    def poll(self) -> list[AlertEvent]:
        stored = self.store.events(after=self.cursor)
        if stored:
            self.cursor = stored[-1].seq
        return [s.event for s in stored]
