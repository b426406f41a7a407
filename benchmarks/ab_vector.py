"""Interleaved A/B of the native vector env's step time between two source trees.

Run:  git worktree add /tmp/before <commit>
      python benchmarks/ab_vector.py /tmp/before/src src [--batch 4096] [--seconds 2] [--rounds 4]

Each round runs one process per tree, the base first, each importing
``adaptive_alert_triage`` from its tree (``PYTHONPATH``) and stepping
``AlertTriageVectorEnv`` on the given task with random masked actions for
``--seconds`` of step time (the sampling of actions is not timed). It prints
every run's ns per env-step and the medians. This machine drifts by 10-30%
within minutes, so alternating runs, not two separate benchmarks, are the test
of a change. A tree's first run compiles its kernels into its own numba cache,
so a warm-up run of each comes first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child(task: str, batch: int, seconds: float) -> None:
    """Print the step time per env-step, in ns, of this process's package."""
    import numpy as np

    from adaptive_alert_triage.gym_env import AlertTriageVectorEnv

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    venv = AlertTriageVectorEnv(num_envs=batch, task_id=task)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    spent, steps = 0.0, 0
    while spent < seconds:
        masks = venv.action_masks().reshape(batch, venv.sim.A, -1)
        actions = (rng.random(masks.shape) * masks).argmax(axis=-1)
        start = time.perf_counter()
        venv.step(actions)
        spent += time.perf_counter() - start
        steps += batch
    print(f"{spent / steps * 1e9:.0f}")


def run(tree: Path, task: str, batch: int, seconds: float) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, __file__, "--child", "--task", task]
    command += ["--batch", str(batch), "--seconds", str(seconds)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the run of {tree} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", type=Path, help="the base tree's src/ folder")
    parser.add_argument("candidate", nargs="?", type=Path, help="the candidate's src/ folder")
    parser.add_argument("--task", default="hard")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error(
            f"need --batch >= 1, --seconds > 0 and --rounds >= 1, got {args.batch}, "
            f"{args.seconds} and {args.rounds}"
        )
    if args.child:
        child(args.task, args.batch, args.seconds)
        return
    trees = {"base": args.base, "candidate": args.candidate}
    for name, tree in trees.items():
        if tree is None or not (tree / "adaptive_alert_triage" / "__init__.py").is_file():
            parser.error(f"{name} must be a src/ folder holding adaptive_alert_triage, got {tree}")
    for tree in trees.values():
        run(tree, args.task, min(args.batch, 64), 0.2)  # compile and warm up
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            times[name].append(run(tree, args.task, args.batch, args.seconds))
    print(f"task {args.task}, B={args.batch}, {args.rounds} rounds of {args.seconds}s each")
    for name, values in times.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<10} median {statistics.median(values):7,.0f} ns/env-step  ({runs})")
    base, candidate = (statistics.median(v) for v in times.values())
    print(f"candidate vs base: {100 * (candidate - base) / base:+.1f}%")


if __name__ == "__main__":
    main()
