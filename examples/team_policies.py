"""Write a scripted team for the multi-agent env and compare it with a random team.

Run:  python examples/team_policies.py [--episodes 20]

A team policy maps the PettingZoo observations of every live agent to one
action each. This one splits the alert types between the investigators: each
investigator investigates the most severe visible alert of its own types and
ignores the faint ones; the escalation desk escalates the most severe alert
that no investigator owns this step. It knows nothing hidden.
"""

from __future__ import annotations

import argparse

import numpy as np

from adaptive_alert_triage.agents.teams import RandomTeam, TeamPolicy, action_of, decode_slots
from adaptive_alert_triage.multiagent import parallel_env
from adaptive_alert_triage.sim.engine import ESCALATE, IGNORE, INVESTIGATE, N_VERBS


class TypeSplitTeam(TeamPolicy):
    def __init__(self, claim_above: float = 0.65, ignore_below: float = 0.35) -> None:
        self.claim_above = claim_above
        self.ignore_below = ignore_below

    def act(self, observations, env):
        agents = list(observations)
        first = observations[agents[0]]
        n_slots = (first["action_mask"].shape[0] - 1) // N_VERBS
        slots = decode_slots(first["observation"], n_slots)
        signal = np.where(slots["present"], slots["severity"] * slots["confidence"], -1.0)
        investigators = [a for a in agents if a.startswith("investigator_")]
        actions, taken = {}, set()
        for k, agent in enumerate(investigators):
            mine = [
                s
                for s in np.flatnonzero(slots["type"] % len(investigators) == k)
                if slots["present"][s] and s not in taken
            ]
            if not mine:
                actions[agent] = 0
                continue
            best = max(mine, key=lambda s: signal[s])
            verb = INVESTIGATE if slots["severity"][best] >= self.claim_above else None
            if verb is None:
                faint = min(mine, key=lambda s: signal[s])
                verb, best = (IGNORE, faint) if signal[faint] < self.ignore_below else (None, best)
            if verb is None:
                actions[agent] = 0
                continue
            actions[agent] = action_of(int(best), verb)
            taken.add(best)
        if "escalation_desk" in observations:
            rest = [s for s in np.argsort(-signal) if slots["present"][s] and s not in taken]
            actions["escalation_desk"] = (
                action_of(int(rest[0]), ESCALATE)
                if rest and slots["severity"][rest[0]] >= self.claim_above
                else 0
            )
        return actions


def run(task: str, team: TeamPolicy, episodes: int) -> np.ndarray:
    env = parallel_env(task)
    returns = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        team.reset(seed)
        total = 0.0
        while env.agents:
            obs, rewards, *_ = env.step(team.act(obs, env))
            total += rewards["escalation_desk"]
        returns.append(total)
    return np.array(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    if args.episodes < 1:  # a mean over no episodes is nan, not a comparison
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    for task in ("easy", "medium", "hard"):
        scripted = run(task, TypeSplitTeam(), args.episodes)
        random = run(task, RandomTeam(seed=0), args.episodes)
        print(
            f"{task:7} type-split team return {scripted.mean():7.1f}   "
            f"random team {random.mean():7.1f}   ({args.episodes} seeded episodes)"
        )


if __name__ == "__main__":
    main()
