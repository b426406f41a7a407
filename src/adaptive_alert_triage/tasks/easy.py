"""Easy, Basic Alert Prioritisation: score = correct_actions / total_actions.

Correct by the hidden truth of the decided alert (`base.CORRECT_VERBS`):

| decided alert | correct | incorrect |
|---|---|---|
| critical (true severity >= 0.7) | INVESTIGATE, ESCALATE | IGNORE, DELAY |
| minor real incident | INVESTIGATE, DELAY | IGNORE, ESCALATE |
| false positive | IGNORE | INVESTIGATE, ESCALATE, DELAY |

Only granted decisions are graded (a denied one did nothing). A critical
incident whose service failed while none of its alerts was ever decided adds
one incorrect action: abstaining is not free. Success: score >= 0.70.
"""

from __future__ import annotations

from .base import Grader, IncidentRecord


class EasyGrader(Grader):
    task_id = "easy"
    threshold = 0.70

    def begin(self, incidents, severity) -> None:
        super().begin(incidents, severity)
        self.missed = 0

    def _on_failure(self, record: IncidentRecord) -> None:
        if record.critical and record.actionable and not record.decided:
            self.missed += 1

    @property
    def total_actions(self) -> int:
        return self.graded + self.missed

    @property
    def score(self) -> float:
        total = self.total_actions
        return self.correct / total if total else 0.0

    def metrics(self):
        return {**super().metrics(), "missed_critical": self.missed}
