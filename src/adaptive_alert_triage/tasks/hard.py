"""Hard, Cascading Failures Prevention:
score = (prevented failures - system instability penalty) / max possible.

* max possible C: critical incidents (cascades included) whose first alert was
  visible when a decision was made: each is a failure the team could prevent.
* prevented P: those the team resolved before their service failed.
* instability penalty = P x F / (T + 1 + F), with F the failures of the episode
  and T the task's failure threshold.

So score = (P / C) x (T + 1) / (T + 1 + F): in [0, 1] by construction, with no
clamp. Every failure costs twice, once as a failure not prevented and once
through the penalty. An episode with no critical incident to prevent scores 0.
Success: score >= 0.60 and the stability requirement, that the estate did not
collapse (failures never exceeded T, so the episode was not terminated).
"""

from __future__ import annotations

from .base import RESOLVED, Grader, IncidentRecord


class HardGrader(Grader):
    task_id = "hard"
    threshold = 0.60

    tally_start = (0, 0)

    def _counts(self) -> tuple[int, int]:
        """(prevented, max possible): actionable critical incidents resolved, and all of them."""
        return self.tally()

    def _fold(self, tally: tuple[int, int], records: list[IncidentRecord]) -> tuple[int, int]:
        prevented, possible = tally
        for r in records:
            if r.critical:
                possible += 1
                prevented += r.closed in RESOLVED
        return prevented, possible

    def _reclose(
        self, tally: tuple[int, int], record: IncidentRecord, before: str | None
    ) -> tuple[int, int]:
        if not record.critical:
            return tally
        prevented, possible = tally
        return prevented + (record.closed in RESOLVED) - (before in RESOLVED), possible

    @property
    def stability(self) -> float:
        t = self.failure_threshold
        return (t + 1) / (t + 1 + self.failures)

    @property
    def score(self) -> float:
        prevented, possible = self.tally()
        return prevented / possible * self.stability if possible else 0.0

    @property
    def passed(self) -> bool:
        return self.score >= self.threshold and not self.terminated

    def result(self) -> tuple[float, bool]:
        score = self.score
        return score, score >= self.threshold and not self.terminated

    def metrics(self):
        prevented, possible = self._counts()
        return {
            **super().metrics(),
            "prevented": prevented,
            "max_possible": possible,
            "stability": self.stability,
        }
