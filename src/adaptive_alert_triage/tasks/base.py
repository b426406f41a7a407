"""What every grader shares: an incident ledger fed by outcome records.

A grader never reads simulator state. It is fed the first-alert records of an
episode's opening queue (`begin`) and then each step's `StepOutcome`
(`update`), and turns them into a score in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
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
    N_SERVICE_EVENTS,
    N_TERMINATED,
    OUT_ESCALATED,
    OUT_RESOLVED_CRITICAL,
    OUT_RESOLVED_MINOR,
    STATUS_GRANTED,
    StepOutcome,
)
from ..sim.incidents import CRITICAL_LEVEL

PRODUCTIVE_OUTCOMES = (OUT_RESOLVED_CRITICAL, OUT_RESOLVED_MINOR, OUT_ESCALATED)
#: The verbs that use a claim on the K budget.
CLAIM_VERBS = (INVESTIGATE, ESCALATE)
#: How a resolved incident closed: by an investigation, or by specialists after ESCALATE.
RESOLVED = ("investigated", "specialists")

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
    """The easy grader's table, for one decision (`truth_class` inlined: this
    runs for every decision of every step)."""
    if is_noise:
        return verb in CORRECT_VERBS["false_positive"]
    return verb in CORRECT_VERBS["critical" if true_severity >= CRITICAL_LEVEL else "minor"]


# Slots: a record is made for every incident and read on every closing, and
# positional construction (``IncidentRecord(severity, critical, cascade)``)
# is the cheap way to make one.
@dataclass(slots=True)
class IncidentRecord:
    severity: float
    critical: bool
    cascade: bool
    actionable: bool = False  # its first alert was visible when a decision was made
    decided: bool = False  # some decision was granted on one of its alerts
    closed: str | None = None  # investigated | specialists | self | failed


def _cells(column: list[int]) -> list[int]:
    """The indices of the entries of an incident column (closed / first alert)
    that name an incident, in order. Those are -1 but for a few uids, each on
    one service, so they are found with list methods rather than a loop."""
    k = len(column) - column.count(-1)
    if k == 0:
        return []
    if k == 1:
        return [column.index(max(column))]
    return sorted([column.index(uid) for uid in sorted(column)[-k:]])


class Grader:
    """Base class: the incident ledger, claims and decisions of one episode."""

    task_id = ""
    threshold = 1.0

    def __init__(self, failure_threshold: int = 0) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, Integral):
            raise TypeError(
                f"failure_threshold must be an int >= 0, got {type(failure_threshold).__name__} "
                f"{failure_threshold!r}"
            )
        if failure_threshold < 0:
            raise ValueError(f"failure_threshold must be an int >= 0, got {failure_threshold}")
        self.failure_threshold = int(failure_threshold)
        self.begin(np.full((0, 3), -1), np.zeros(0))

    def begin(self, incidents: np.ndarray, severity: np.ndarray) -> None:
        """Start an episode from the opening queue's first-alert records, shaped
        like one row of StepOutcome.incidents / incident_severity."""
        self.ledger: dict[int, IncidentRecord] = {}
        self._pending: list[IncidentRecord] = []  # noted, not yet actionable
        self._tally: Any = None  # see `tally`; None: to be recounted
        self._in_order = True  # the ledger is actionable records, then pending ones
        self.steps = 0
        self.failures = 0
        self.terminated = False
        self.claims = 0
        self.productive_claims = 0
        self.graded = 0
        self.correct = 0
        columns = np.asarray(incidents).T.tolist()
        self._note_first_alerts(
            columns[I_FIRST_ALERT], columns[I_FIRST_FLAGS], np.asarray(severity, dtype=float)
        )

    def _note_first_alerts(self, uids: list, flags: list, severity: np.ndarray) -> None:
        """One env's first-alert columns of its incident records (see
        StepOutcome.incidents), as lists, and their severities (an array)."""
        ledger, pending = self.ledger, self._pending
        for i in _cells(uids):
            uid, bits = uids[i], flags[i]
            if uid in ledger:  # a record replaced in place, out of arrival order
                self._in_order = False
                self._tally = None
                self._on_replaced(ledger[uid])
            record = ledger[uid] = IncidentRecord(
                severity.item(i), bool(bits & FLAG_CRITICAL), bool(bits & FLAG_CASCADE)
            )
            pending.append(record)

    def update(self, out: StepOutcome, b: int = 0) -> None:
        """Feed one step of env ``b``'s records."""
        self.feed(
            out,
            out.decisions[b].tolist(),
            out.true_severity[b].tolist(),
            out.counts[b].tolist(),
            out.service_events[b].astype(bool, copy=False).tobytes(),
            b,
        )

    def feed(
        self,
        out: StepOutcome,
        decisions: list[list[int]],
        truth: list[float],
        counts: list[int],
        events: bytes,
        b: int = 0,
    ) -> None:
        """`update`, with env ``b``'s records partly turned into Python values,
        so that a face which needs them too (the single-agent ``info``)
        converts them once: ``decisions`` and ``truth`` are the decision rows
        and true severities of its members as lists (only granted decisions
        count, so the rows of members who made none may be left out),
        ``counts`` its counts, ``events`` its service events as bytes
        (row-major, one byte per E_* flag)."""
        # A decision was made this step, so what was visible before it counts.
        if self._pending:
            records = self._pending
            for record in records:
                record.actionable = True
            self._pending = []
            self._on_actionable(records)
            if self._tally is not None and self._in_order:
                self._tally = self._fold(self._tally, records)
            else:
                self._tally = None
            self._in_order = True  # every record is actionable now
        self.steps += 1
        ledger = self.ledger
        for d, sev in zip(decisions, truth):
            if d[D_STATUS] != STATUS_GRANTED:
                continue
            verb = d[D_VERB]
            if verb in CLAIM_VERBS:
                self.claims += 1
                self.productive_claims += d[D_OUTCOME] in PRODUCTIVE_OUTCOMES
            record = ledger.get(d[D_INCIDENT])
            if record is not None and not record.decided:
                record.decided = True
                self._on_decided(record)
            self.graded += 1
            self.correct += decision_correct(verb, d[D_NOISE] > 0, sev)
        columns = out.incidents[b].T.tolist()
        closed = columns[I_CLOSED]
        for s in _cells(closed):  # most steps close nothing
            record = ledger.get(closed[s])
            if record is not None:
                at = s * N_SERVICE_EVENTS
                self._close(record, events[at : at + N_SERVICE_EVENTS])
        self.failures += counts[N_FAILED]
        self.terminated = counts[N_TERMINATED] > 0
        uids = columns[I_FIRST_ALERT]
        if uids.count(-1) != len(uids):  # skip the severities when no incident is new
            self._note_first_alerts(uids, columns[I_FIRST_FLAGS], out.incident_severity[b])

    def _close(self, record: IncidentRecord, events: bytes) -> None:
        """An incident with a record closed: how, from its service's events
        (one byte per E_* flag)."""
        before = record.closed
        if events[E_RESOLVED]:
            record.closed = "investigated"
        elif events[E_ESCALATION_RESOLVED]:
            record.closed = "specialists"
        elif events[E_SELF_RESOLVED]:
            record.closed = "self"
        elif events[E_FAILED]:
            record.closed = "failed"
            self._on_failure(record)
        if self._tally is not None and record.actionable:
            self._tally = self._reclose(self._tally, record, before)

    # ------------------------------------------------------------------ tallies
    # A subclass's score reads totals over the actionable records of the ledger
    # (a "tally"). `score` and `passed` are read every step and the ledger grows
    # with the episode, so the tally is kept up to date as records change
    # rather than recounted on every read. `_recount` is the straightforward
    # count; the tests check that both agree exactly.

    #: The tally of no records, where `_fold` starts.
    tally_start: Any = None

    def tally(self) -> Any:
        if self._tally is None:
            self._tally = self._recount()
        return self._tally

    def _recount(self) -> Any:
        return self._fold(self.tally_start, [r for r in self.ledger.values() if r.actionable])

    def _fold(self, tally: Any, records: list[IncidentRecord]) -> Any:
        """Hook: ``tally`` with ``records`` (newly actionable, in ledger order)
        counted in, as if they came last in the ledger."""
        return None

    def _reclose(self, tally: Any, record: IncidentRecord, before: str | None) -> Any:
        """Hook: ``tally`` after an actionable record's ``closed`` changed from
        ``before``, or None to have it recounted."""
        return None

    def _on_failure(self, record: IncidentRecord) -> None:
        """Hook: an incident's service failed."""

    def _on_actionable(self, records: list[IncidentRecord]) -> None:
        """Hook: ``records`` were visible when a decision was made, for the first time."""

    def _on_decided(self, record: IncidentRecord) -> None:
        """Hook: a decision was granted on one of an incident's alerts, for the first time."""

    def _on_replaced(self, record: IncidentRecord) -> None:
        """Hook: ``record`` left the ledger, replaced by a newer one of the same uid."""

    # ------------------------------------------------------------------ results
    @property
    def score(self) -> float:
        raise NotImplementedError

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold

    def result(self) -> tuple[float, bool]:
        """``(score, passed)`` at once: the score is computed once, not twice
        (``info`` reports both on every step). A subclass that redefines
        `passed` without redefining this gets ``(score, passed)`` as it reads."""
        score = self.score
        if type(self).passed is not Grader.passed:
            return score, self.passed
        return score, score >= self.threshold

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
