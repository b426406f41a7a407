"""Interleaved A/B of the native vector env's step time between two source trees.

Run:  git worktree add /tmp/before <commit>
      python benchmarks/ab_vector.py /tmp/before/src src [--batch 4096] [--seconds 2] [--rounds 4]
      python benchmarks/ab_vector.py /tmp/before/src src --paired [--batch 4096] [--rounds 30]
          [--agents]

Each round runs one process per tree, the base first, each importing
``adaptive_alert_triage`` from its tree (``PYTHONPATH``) and stepping
``AlertTriageVectorEnv`` on the given task with random masked actions for
``--seconds`` of step time (the sampling of actions is not timed). It prints
every run's ns per env-step and the medians. This machine drifts by 10-30%
within minutes, so alternating runs, not two separate benchmarks, are the test
of a change. A tree's first run compiles its kernels into its own numba cache,
so a warm-up run of each comes first.

``--paired`` is the finer test, for changes of a few percent: one process
holds both trees (each package copied, under its own name, into a folder of
the system's temporary directory that keeps its numba cache between runs) and
steps their vector envs in turns of ``--block`` steps, the order swapped every
round. Both see the same spells of the machine, a few hundred milliseconds
apart, so it reports the median and quartiles of the per-round ratio
candidate/base, not only the two medians. With ``--agents`` it steps the
agents view (`AlertTriageAgentVectorEnv`, B envs of A rows each) instead of
the team's; the times are still per env-step.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "adaptive_alert_triage"


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


def _renamed_copy(tree: Path, name: str) -> Path:
    """The package of ``tree`` copied as package ``name`` (its absolute imports
    renamed too) into a folder kept per tree; returns the folder to import
    from. Each copied file keeps its source's modification time, so numba's
    cache in the copy stays valid while the source is unchanged."""
    digest = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / "ab_vector" / f"{name}-{digest}"
    target = root / name
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(tree / PACKAGE, target, ignore=ignore, dirs_exist_ok=True)
    for source in (tree / PACKAGE).rglob("*.py"):
        if "__pycache__" in source.parts:
            continue
        copy = target / source.relative_to(tree / PACKAGE)
        copy.write_text(source.read_text().replace(PACKAGE, name))
        stamp = source.stat()
        os.utime(copy, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    return root


def paired(
    trees: dict[str, Path], task: str, batch: int, block: int, rounds: int, agents: bool = False
) -> None:
    """Both trees' vector envs in this process, stepped in alternating blocks:
    the team view's, or with ``agents`` the agents view's."""
    import numpy as np

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    envs = {}
    for label, tree in trees.items():
        name = f"ab_{label}"
        sys.path.insert(0, str(_renamed_copy(tree, name)))
        gym_env = importlib.import_module(f"{name}.gym_env")
        view = gym_env.AlertTriageAgentVectorEnv if agents else gym_env.AlertTriageVectorEnv
        envs[label] = view(num_envs=batch, task_id=task)
        envs[label].reset(seed=0)
    rng = np.random.default_rng(0)

    def step_block(venv) -> float:
        spent = 0.0
        for _ in range(block):
            # The team view's masks as (B, A, n_actions); the agents view's
            # rows are already (B * A, n_actions).
            masks = venv.action_masks().reshape(-1, venv.sim.n_actions)
            actions = (rng.random(masks.shape) * masks).argmax(axis=-1)
            if not agents:
                actions = actions.reshape(batch, venv.sim.A)
            start = time.perf_counter()
            venv.step(actions)
            spent += time.perf_counter() - start
        return spent / (block * batch) * 1e9

    for venv in envs.values():
        step_block(venv)  # compile (or load the cache) and warm up
    times: dict[str, list[float]] = {label: [] for label in envs}
    for r in range(rounds):
        for label in list(envs)[:: 1 if r % 2 == 0 else -1]:
            times[label].append(step_block(envs[label]))
    view = "agents view" if agents else "team view"
    print(
        f"task {task}, B={batch}, {view}, paired in one process: {rounds} rounds of {block} steps"
    )
    for label, values in times.items():
        low, high = min(values), max(values)
        print(
            f"{label:<10} median {statistics.median(values):7,.0f} ns/env-step  "
            f"(range {low:,.0f} to {high:,.0f})"
        )
    ratios = [c / b - 1 for b, c in zip(times["base"], times["candidate"])]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"candidate vs base, per round: median {100 * statistics.median(ratios):+.1f}% "
        f"(quartiles {100 * quartiles[0]:+.1f}%, {100 * quartiles[2]:+.1f}%)"
    )


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
    parser.add_argument(
        "--paired", action="store_true", help="both trees in one process, in alternating blocks"
    )
    parser.add_argument("--block", type=int, default=10, help="steps per turn with --paired")
    parser.add_argument(
        "--agents", action="store_true", help="with --paired: step the agents view (B x A rows)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.seconds <= 0 or args.rounds < 1 or args.block < 1:
        parser.error(
            f"need --batch >= 1, --seconds > 0, --rounds >= 1 and --block >= 1, got "
            f"{args.batch}, {args.seconds}, {args.rounds} and {args.block}"
        )
    if args.agents and not args.paired:
        parser.error("--agents needs --paired")
    if args.child:
        child(args.task, args.batch, args.seconds)
        return
    trees = {"base": args.base, "candidate": args.candidate}
    for name, tree in trees.items():
        if tree is None or not (tree / "adaptive_alert_triage" / "__init__.py").is_file():
            parser.error(f"{name} must be a src/ folder holding adaptive_alert_triage, got {tree}")
    if args.paired:
        paired(trees, args.task, args.batch, args.block, args.rounds, args.agents)
        return
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
