"""What every grader shares: an incident ledger fed by outcome records.

A grader never reads simulator state. It is fed the first-alert records of an
episode's opening queue (`begin`) and then each step's `StepOutcome`
(`update`), and turns them into a score in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..sim.engine import (
    D_INCIDENT,
    D_NOISE,
    D_OUTCOME,
    D_STATUS,
    D_VERB,
    DELAY,
    E_ESCALATION_RESOLVED,
    E_FAILED,
    E_RESOLVED,
    E_SELF_RESOLVED,
    ESCALATE,
    FLAG_CASCADE,
    FLAG_CRITICAL,
    I_CLOSED,
    I_FIRST_ALERT,
    I_FIRST_FLAGS,
    IGNORE,
    INVESTIGATE,
    N_FAILED,
    N_TERMINATED,
    OUT_ESCALATED,
    OUT_RESOLVED_CRITICAL,
    OUT_RESOLVED_MINOR,
    STATUS_GRANTED,
    StepOutcome,
)
from ..sim.incidents import CRITICAL_LEVEL

PRODUCTIVE_OUTCOMES = (OUT_RESOLVED_CRITICAL, OUT_RESOLVED_MINOR, OUT_ESCALATED)

#: Which decisions count as correct, by the decided alert's hidden truth.
CORRECT_VERBS = {
    "critical": (INVESTIGATE, ESCALATE),  # act on it
    "minor": (INVESTIGATE, DELAY),  # real but not urgent: fix it or keep it queued
    "false_positive": (IGNORE,),  # dismiss it
}


def truth_class(is_noise: bool, true_severity: float) -> str:
    if is_noise:
        return "false_positive"
    return "critical" if true_severity >= CRITICAL_LEVEL else "minor"


def decision_correct(verb: int, is_noise: bool, true_severity: float) -> bool:
    """The easy grader's table, for one decision."""
    return verb in CORRECT_VERBS[truth_class(is_noise, true_severity)]


@dataclass
class IncidentRecord:
    severity: float
    critical: bool
    cascade: bool
    actionable: bool = False  # its first alert was visible when a decision was made
    decided: bool = False  # some decision was granted on one of its alerts
    closed: str | None = None  # investigated | specialists | self | failed


class Grader:
    """Base class: the incident ledger, claims and decisions of one episode."""

    task_id = ""
    threshold = 1.0

    def __init__(self, failure_threshold: int = 0) -> None:
        self.failure_threshold = failure_threshold
        self.begin(np.full((0, 3), -1), np.zeros(0))

    def begin(self, incidents: np.ndarray, severity: np.ndarray) -> None:
        """Start an episode from the opening queue's first-alert records, shaped
        like one row of StepOutcome.incidents / incident_severity."""
        self.ledger: dict[int, IncidentRecord] = {}
        self._pending: list[int] = []
        self.steps = 0
        self.failures = 0
        self.terminated = False
        self.claims = 0
        self.productive_claims = 0
        self.graded = 0
        self.correct = 0
        self._note_first_alerts(incidents.tolist(), severity)

    def _note_first_alerts(self, incidents: list, severity: np.ndarray) -> None:
        """``incidents``: one env's incident records, as lists (see StepOutcome)."""
        if all(row[I_FIRST_ALERT] < 0 for row in incidents):
            return
        for row, sev in zip(incidents, severity.tolist()):
            uid = row[I_FIRST_ALERT]
            if uid < 0:
                continue
            flags = row[I_FIRST_FLAGS]
            self.ledger[uid] = IncidentRecord(
                severity=sev,
                critical=bool(flags & FLAG_CRITICAL),
                cascade=bool(flags & FLAG_CASCADE),
            )
            self._pending.append(uid)

    def update(self, out: StepOutcome, b: int = 0) -> None:
        """Feed one step of env ``b``'s records."""
        # A decision was made this step, so what was visible before it counts.
        for uid in self._pending:
            self.ledger[uid].actionable = True
        self._pending = []
        self.steps += 1
        for d, sev in zip(out.decisions[b].tolist(), out.true_severity[b].tolist()):
            if d[D_STATUS] != STATUS_GRANTED:
                continue
            verb, noise, uid = d[D_VERB], d[D_NOISE] > 0, d[D_INCIDENT]
            if verb in (INVESTIGATE, ESCALATE):
                self.claims += 1
                self.productive_claims += d[D_OUTCOME] in PRODUCTIVE_OUTCOMES
            record = self.ledger.get(uid)
            if record is not None:
                record.decided = True
            self.graded += 1
            self.correct += decision_correct(verb, noise, sev)
        incidents = out.incidents[b].tolist()
        if any(row[I_CLOSED] >= 0 for row in incidents):
            events = out.service_events[b].tolist()
            for s, row in enumerate(incidents):
                record = self.ledger.get(row[I_CLOSED]) if row[I_CLOSED] >= 0 else None
                if record is None:
                    continue  # nothing closed, or closed before its first alert
                ev = events[s]
                if ev[E_RESOLVED]:
                    record.closed = "investigated"
                elif ev[E_ESCALATION_RESOLVED]:
                    record.closed = "specialists"
                elif ev[E_SELF_RESOLVED]:
                    record.closed = "self"
                elif ev[E_FAILED]:
                    record.closed = "failed"
                    self._on_failure(record)
        counts = out.counts[b].tolist()
        self.failures += counts[N_FAILED]
        self.terminated = counts[N_TERMINATED] > 0
        self._note_first_alerts(incidents, out.incident_severity[b])

    def _on_failure(self, record: IncidentRecord) -> None:
        """Hook: an incident's service failed."""

    # ------------------------------------------------------------------ results
    @property
    def score(self) -> float:
        raise NotImplementedError

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold

    def metrics(self) -> dict[str, Any]:
        seen = [r for r in self.ledger.values() if r.actionable]
        return {
            "score": self.score,
            "passed": self.passed,
            "threshold": self.threshold,
            "steps": self.steps,
            "incidents_seen": len(seen),
            "critical_seen": sum(r.critical for r in seen),
            "resolved": sum(r.closed in ("investigated", "specialists") for r in seen),
            "failures": self.failures,
            "terminated": self.terminated,
            "claims": self.claims,
            "productive_claims": self.productive_claims,
            "decisions_graded": self.graded,
            "decisions_correct": self.correct,
        }
