"""Medium, Resource-Constrained Triage:
score = weighted resolved alerts x resource efficiency.

* weighted resolved = sum of true severity over the incidents the team
  resolved (by INVESTIGATE, or by specialists after ESCALATE) / the same sum
  over every incident that needed it: each real incident whose first alert was
  visible when a decision was made, except minor ones that cleared by
  themselves first.
* resource efficiency = productive claims / claims used, where a claim is a
  granted INVESTIGATE or ESCALATE and a productive one resolved or escalated a
  real incident (not a false positive, not a duplicate).

Both factors are in [0, 1]; an episode without claims or without incidents
scores 0. Success: score >= 0.65.
"""

from __future__ import annotations

from .base import RESOLVED, Grader, IncidentRecord


class MediumGrader(Grader):
    task_id = "medium"
    threshold = 0.65

    tally_start = (0.0, 0.0)

    def _weights(self) -> tuple[float, float]:
        """(resolved, needed): the true severity summed over the incidents resolved,
        and over those that needed it, in ledger order."""
        return self.tally()

    def _fold(
        self, tally: tuple[float, float], records: list[IncidentRecord]
    ) -> tuple[float, float]:
        resolved, needed = tally
        for r in records:
            if r.closed == "self":
                continue
            needed += r.severity
            if r.closed in RESOLVED:
                resolved += r.severity
        return resolved, needed

    def _reclose(
        self, tally: tuple[float, float], record: IncidentRecord, before: str | None
    ) -> tuple[float, float] | None:
        # A float sum depends on its order: recount if this record's terms change.
        if (record.closed == "self") != (before == "self") or (record.closed in RESOLVED) != (
            before in RESOLVED
        ):
            return None
        return tally

    @property
    def weighted_resolved(self) -> float:
        resolved, needed = self.tally()
        return resolved / needed if needed else 0.0

    @property
    def efficiency(self) -> float:
        return self.productive_claims / self.claims if self.claims else 0.0

    @property
    def score(self) -> float:
        return self.weighted_resolved * self.efficiency

    def metrics(self):
        return {
            **super().metrics(),
            "weighted_resolved": self.weighted_resolved,
            "efficiency": self.efficiency,
        }
