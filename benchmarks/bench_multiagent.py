"""Throughput of the PettingZoo parallel env with random masked actions.

Run:  python benchmarks/bench_multiagent.py [--steps 20000] [--tasks easy,medium,hard]

Prints, per task, env-steps/s (one step of the whole team) and agent-steps/s
(env-steps x team size), measured two ways:
  step-only  time spent inside env.step() (and env.reset() at episode ends)
  loop       the whole loop, including sampling random masked actions
Pins itself to one core where the OS allows it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from adaptive_alert_triage.multiagent import parallel_env


def bench(task: str, steps: int, seed: int = 0) -> dict[str, float]:
    env = parallel_env(task, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    n_agents = len(env.possible_agents)
    inside = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            t0 = time.perf_counter()
            obs, _ = env.reset()
            inside += time.perf_counter() - t0
        actions = {}
        for agent, o in obs.items():
            legal = np.flatnonzero(o["action_mask"])
            actions[agent] = int(legal[rng.integers(len(legal))])
        t0 = time.perf_counter()
        obs, *_ = env.step(actions)
        inside += time.perf_counter() - t0
    total = time.perf_counter() - start
    return {
        "agents": n_agents,
        "step_only": steps / inside,
        "loop": steps / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--tasks", default="easy,medium,hard")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, one core, "
        f"{args.steps} steps per task, random masked actions"
    )
    print(
        f"{'task':7} {'agents':>6} {'env-steps/s':>12} {'agent-steps/s':>14} "
        f"{'loop env-steps/s':>17}"
    )
    for task in args.tasks.split(","):
        r = bench(task, args.steps)
        print(
            f"{task:7} {r['agents']:6d} {r['step_only']:12,.0f} "
            f"{r['step_only'] * r['agents']:14,.0f} {r['loop']:17,.0f}"
        )


if __name__ == "__main__":
    main()
