"""Easy, Basic Alert Prioritisation: score = correct_actions / total_actions.

Correct by the hidden truth of the decided alert (`base.CORRECT_VERBS`):

| decided alert | correct | incorrect |
|---|---|---|
| critical (true severity >= 0.7) | INVESTIGATE, ESCALATE | IGNORE, DELAY |
| minor real incident | INVESTIGATE, DELAY | IGNORE, ESCALATE |
| false positive | IGNORE | INVESTIGATE, ESCALATE, DELAY |

Only granted decisions are graded (a denied one did nothing). Two more
incorrect actions count, so that abstaining is not free:
* a missed critical: a critical incident visible at a decision of which no
  alert was ever decided (open or closed), one per incident;
* a failure: a service that failed under an incident visible at a decision,
  one per failure, whatever was decided on it.

Without them a policy that only dismissed the most obvious noise and let every
real incident burn scored above the rule-based agent (one correct IGNORE in an
episode scored 1.0). Success: score >= 0.70.
"""

from __future__ import annotations

from .base import Grader, IncidentRecord


class EasyGrader(Grader):
    task_id = "easy"
    threshold = 0.70

    def begin(self, incidents, severity) -> None:
        self.missed = 0  # actionable critical incidents not (yet) decided
        self.failed_seen = 0
        super().begin(incidents, severity)

    def _on_actionable(self, records: list[IncidentRecord]) -> None:
        for record in records:
            self.missed += record.critical and not record.decided

    def _on_decided(self, record: IncidentRecord) -> None:
        self.missed -= record.critical and record.actionable

    def _on_replaced(self, record: IncidentRecord) -> None:
        self.missed -= record.critical and record.actionable and not record.decided

    def _on_failure(self, record: IncidentRecord) -> None:
        self.failed_seen += record.actionable

    @property
    def total_actions(self) -> int:
        return self.graded + self.missed + self.failed_seen

    @property
    def score(self) -> float:
        total = self.total_actions
        return self.correct / total if total else 0.0

    def metrics(self):
        return {
            **super().metrics(),
            "missed_critical": self.missed,
            "failures_seen": self.failed_seen,
        }
