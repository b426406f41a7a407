"""Throughput of the single-agent wrapper with a random valid policy.

Run:  python benchmarks/bench_single.py [--steps 20000] [--tasks easy,medium,hard] [--repeat 1]

Prints steps/s per task for AdaptiveAlertTriageEnv.step (pydantic models in and
out, outcome records, grader update), on the numba backend, counting only
step() and the resets at episode ends, not the policy. The random valid
policy makes one uniformly random decision on one uniformly random visible
alert per step. Pins itself to one core where the OS allows it. On a shared
machine, ``--repeat N`` reports the best of N runs per task (other load only
ever slows a run down).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.models import Action
from adaptive_alert_triage.sim.config import ACTION_TYPES


def bench(task: str, steps: int, backend: str = "numba", seed: int = 0) -> float:
    env = AdaptiveAlertTriageEnv(task_id=task, backend=backend)
    rng = np.random.default_rng(seed)
    observation, done = env.reset(seed=seed), False
    inside = 0.0
    for _ in range(steps):
        if done:
            t0 = time.perf_counter()
            observation, done = env.reset(), False
            inside += time.perf_counter() - t0
        alert = observation.alerts[int(rng.integers(len(observation.alerts)))]
        action = Action(alert_id=alert.id, action_type=ACTION_TYPES[int(rng.integers(4))])
        t0 = time.perf_counter()
        observation, _, done, _ = env.step(action)
        inside += time.perf_counter() - t0
    return steps / inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--tasks", default="easy,medium,hard")
    parser.add_argument("--repeat", type=int, default=1, help="report the best of N runs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tasks = args.tasks.split(",")
    for task in tasks:
        bench(task, 50)  # compile and warm up
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, one core, "
        f"{args.steps} steps per task, random valid policy"
        + (f", best of {args.repeat} runs" if args.repeat > 1 else "")
    )
    print(f"{'task':7} {'steps/s':>9}")
    for task in tasks:
        best = max(bench(task, args.steps) for _ in range(max(args.repeat, 1)))
        print(f"{task:7} {best:9,.0f}")


if __name__ == "__main__":
    main()
