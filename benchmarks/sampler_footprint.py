"""How much of the vector env's step time is the benchmark's own sampler's doing.

Run:  python benchmarks/sampler_footprint.py [--task hard] [--batch 4096] [--rounds 8] [--steps 30]

`bench_vector.py` draws random masked actions as ``argmax(uniform * mask)``
over the (B, A, n_actions) masks, in float64. Its temporaries (the uniforms and
their product with the masks, 16 bytes per mask entry: about 16 MB at B=4096 on
hard) pass through the caches between two steps and can evict the env's state,
so the step after them may pay misses that a leaner caller would not cause.
This script steps one vector env with three samplers of shrinking footprint, in
turns of ``--steps`` steps whose order rotates every round, timing ``step()``
only, and prints each sampler's median env-steps/s and its median per-round
ratio to the float64 sampler's. All three pick uniformly among the legal
actions, except that the int16 sampler's keys can tie (about one pair in 33,000),
and a tie goes to the lower action. Pins itself to one core where the OS allows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from adaptive_alert_triage.gym_env import AlertTriageVectorEnv

Sampler = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _float64(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(masks.shape) * masks).argmax(axis=-1)


def _float32(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(masks.shape, dtype=np.float32) * masks).argmax(axis=-1)


def _int16(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    keys = rng.integers(1, np.iinfo(np.int16).max, size=masks.shape, dtype=np.int16)
    return (keys * masks).argmax(axis=-1)


#: name: (sampler, bytes of temporaries per mask entry)
SAMPLERS: dict[str, tuple[Sampler, int]] = {
    "float64": (_float64, 16),
    "float32": (_float32, 8),
    "int16": (_int16, 4),
}


def rate(venv: AlertTriageVectorEnv, sampler: Sampler, steps: int, rng) -> float:
    """Env-steps/s of ``steps`` steps with actions from ``sampler``."""
    batch, team = venv.num_envs, venv.sim.A
    spent = 0.0
    for _ in range(steps):
        masks = venv.action_masks().reshape(batch, team, -1)
        actions = sampler(masks, rng)
        start = time.perf_counter()
        venv.step(actions)
        spent += time.perf_counter() - start
    return steps * batch / spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hard")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="steps per sampler per round")
    args = parser.parse_args()
    for name in ("batch", "rounds", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    venv = AlertTriageVectorEnv(num_envs=args.batch, task_id=args.task)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    names = list(SAMPLERS)
    for name in names:  # the first steps load the kernels from numba's cache
        rate(venv, SAMPLERS[name][0], 2, rng)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(rate(venv, SAMPLERS[name][0], args.steps, rng))
    entries = args.batch * venv.sim.A * venv.sim.n_actions
    print(
        f"task {args.task}, B={args.batch}, {args.rounds} rounds of {args.steps} steps per "
        f"sampler, {entries:,} mask entries per step"
    )
    print(f"{'sampler':8} {'temporaries':>12} {'env-steps/s':>12} {'vs float64':>11}")
    base = rates["float64"]
    for name in names:
        ratios = [mine / theirs - 1.0 for mine, theirs in zip(rates[name], base)]
        megabytes = entries * SAMPLERS[name][1] / 1e6
        print(
            f"{name:8} {megabytes:9.2f} MB {statistics.median(rates[name]):12,.0f} "
            f"{statistics.median(ratios):+10.1%}"
        )


if __name__ == "__main__":
    main()
