"""The ``alert-triage`` command."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from .agents.teams import GreedyTeam, OracleTeam, RandomTeam, TeamPolicy, TriageTeam
from .multiagent import parallel_env
from .sim.config import TASKS

TEAMS = {
    "random": lambda: RandomTeam(0),
    "greedy": GreedyTeam,
    "triage": TriageTeam,
    "oracle": OracleTeam,
}


def play_episode(env, team: TeamPolicy, seed: int) -> dict[str, float]:
    """One seeded episode of a team; returns its return, failures and length."""
    obs, _ = env.reset(seed=seed)
    team.reset(seed)
    total, steps = 0.0, 0
    while env.agents:
        obs, rewards, *_ = env.step(team.act(obs, env))
        total += next(iter(rewards.values()))
        steps += 1
    sim = env.unwrapped.sim
    return {
        "return": total,
        "failures": float(sim.failures[0]),
        "steps": float(steps),
        "alerts": float(sim.alerts_total[0]),
        "noise": float(sim.noise_total[0]),
    }


def _csv(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {bad or value!r}; allowed {list(allowed)}"
        )
    return items


def cmd_demo(args: argparse.Namespace) -> int:
    """Scripted teams on every task over seeded episodes: the main job until
    the full evaluation command exists."""
    print(
        f"{'task':7} {'team':7} {'mean return':>12} {'±95%':>7} {'failures':>9} {'steps':>6} "
        f"{'false-positive share':>21}"
    )
    start = time.perf_counter()
    for task in args.tasks:
        env = parallel_env(task)
        for name in args.teams:
            team = TEAMS[name]()
            runs = [play_episode(env, team, args.seed + i) for i in range(args.episodes)]
            returns = np.array([r["return"] for r in runs])
            half = 1.96 * returns.std(ddof=1) / math.sqrt(len(returns)) if len(returns) > 1 else 0.0
            print(
                f"{task:7} {name:7} {returns.mean():12.1f} {half:7.1f} "
                f"{np.mean([r['failures'] for r in runs]):9.2f} "
                f"{np.mean([r['steps'] for r in runs]):6.1f} "
                f"{sum(r['noise'] for r in runs) / sum(r['alerts'] for r in runs):21.2f}"
            )
    print(
        f"({args.episodes} episodes per cell, seeds {args.seed}..{args.seed + args.episodes - 1}, "
        f"{time.perf_counter() - start:.1f}s)"
    )
    return 0


CALIBRATION_POLICIES = (
    "always-INVESTIGATE",
    "quick-start",
    "always-IGNORE",
    "always-ESCALATE",
    "always-DELAY",
    "random",
    "threshold",
    "oracle",
)


def _single_policy(name: str):
    from .agents.single import AlwaysPolicy, OraclePolicy, RandomPolicy, ThresholdPolicy

    if name == "quick-start":
        return AlwaysPolicy("INVESTIGATE", greedy=False)
    if name.startswith("always-"):
        return AlwaysPolicy(name.split("-", 1)[1])
    return {
        "random": lambda: RandomPolicy(0),
        "threshold": ThresholdPolicy,
        "oracle": OraclePolicy,
    }[name]()


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Task scores of the reference single-agent policies: the graders' calibration."""
    from .tasks import GRADERS, run_episodes

    seeds = range(args.seed, args.seed + args.episodes)
    print(f"{'task':7} {'policy':19} {'mean score':>10} {'±95%':>6} {'pass rate':>9}")
    for task in args.tasks:
        threshold = GRADERS[task].threshold
        for name in CALIBRATION_POLICIES:
            scores = np.array(run_episodes(_single_policy(name), task, seeds))
            half = 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) if len(scores) > 1 else 0.0
            print(
                f"{task:7} {name:19} {scores.mean():10.3f} {half:6.3f} "
                f"{np.mean(scores >= threshold):9.2f}"
            )
    print(
        f"({args.episodes} episodes per cell, seeds {args.seed}..{args.seed + args.episodes - 1};"
        f" pass rate = share of episodes at or above the task's threshold)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alert-triage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the scripted teams on every task")
    demo.add_argument("--tasks", type=lambda v: _csv(v, list(TASKS), "task"), default=list(TASKS))
    demo.add_argument("--teams", type=lambda v: _csv(v, list(TEAMS), "team"), default=list(TEAMS))
    demo.add_argument("--episodes", type=int, default=100)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    cal = sub.add_parser("calibrate", help="score the reference single-agent policies")
    cal.add_argument("--tasks", type=lambda v: _csv(v, list(TASKS), "task"), default=list(TASKS))
    cal.add_argument("--episodes", type=int, default=50)
    cal.add_argument("--seed", type=int, default=1000)
    cal.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1:
        print("alert-triage: --episodes must be >= 1", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
