"""Instructions and branches per env-step of the vector kernel, counted by
Valgrind's cachegrind: the same count on every run, where timings on a shared
machine wander by 10% or more, so a change to the kernel can be judged by a
difference of one percent.

Run:  python benchmarks/count_instructions.py [--task hard] [--batch 256] [--steps 40]

Needs numba and valgrind (``apt-get install -y valgrind``). It records a
trajectory of random masked actions natively, then replays it under cachegrind
twice, once stopping after the warm-up steps and once after all of them, and
prints the difference per env-step in code without symbols, which is where
numba's compiled kernel runs (CPython, numpy and the C library are named, and
left out: their counts move from run to run with memory addresses and garbage
collection, and the timed benchmarks measure them). The instruction count is
the same on every run. Cachegrind also counts conditional branches and how many
a simple predictor of its own would miss (that count moves by a percent or two
between runs); a modern CPU misses fewer, but mostly the same kind: branches
on random draws and random actions.

Valgrind does not run AVX-512, so the kernel is compiled here for Haswell
(AVX2), in a temporary numba cache, never the package's: the counts are that
build's. A native AVX-512 build runs fewer, chiefly in the runs of draws the
kernel vectorises (Haswell has no 64-bit vector multiply), so a change that
trades branches for such runs can raise this count while it cuts the time.
Compare counts with counts, not with timings of the native build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: What numba compiles for, natively and under valgrind alike: the same name
#: and features make the same cache key, so valgrind loads the native build
#: instead of compiling the kernel again at a fiftieth of the speed.
CPU = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma,+bmi2,+popcnt"}
#: Idle BLAS threads spin, and valgrind would count their spinning as the step's.
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
#: Steps replayed before counting in both runs: the first call loads the kernel,
#: and the first resets of episodes load more of it.
WARM_UP = 30
#: The records the team's vector env asks for (`AlertSim.step`).
RECORDS = "minimal"
EVENTS = ("Ir", "Bc", "Bcm", "Bi", "Bim")
UNNAMED = "???"


def record(task: str, batch: int, steps: int, path: Path) -> None:
    """Step ``steps`` times with random masked actions; save the actions (the
    same seeds give the same states, so a replay finds each one legal)."""
    from adaptive_alert_triage.sim import fast, get_task

    sim = fast.FastAlertSim(get_task(task), batch)
    sim.reset(list(range(batch)))
    rng = np.random.default_rng(0)
    actions = np.empty((steps, batch, sim.A), dtype=np.int64)
    for i in range(steps):
        legal = sim.legal
        actions[i] = (rng.random(legal.shape) * legal).argmax(axis=-1)
        sim.step_autoreset(actions[i], "raise", observe="team", records=RECORDS)
    np.save(path, actions)


def replay(task: str, path: Path, steps: int) -> None:
    """The recorded trajectory's first `WARM_UP` steps, then ``steps`` more, as
    the vector env takes them (minimal records, team observation); "raise" proves
    every action legal."""
    from adaptive_alert_triage.sim import fast, get_task

    actions = np.load(path)
    sim = fast.FastAlertSim(get_task(task), actions.shape[1])
    sim.reset(list(range(actions.shape[1])))
    for i in range(WARM_UP + steps):
        sim.step_autoreset(actions[i], "raise", observe="team", records=RECORDS)


def compiled_totals(cachegrind_out: Path) -> dict[str, int]:
    """The event totals of unnamed code (numba's compiled functions) in a
    cachegrind output file."""
    totals = dict.fromkeys(EVENTS, 0)
    events: list[str] = []
    file_name, in_unnamed = "", False
    for line in cachegrind_out.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("fl="):
            file_name = line[3:]
        elif line.startswith("fn="):
            in_unnamed = file_name == UNNAMED and line[3:] == UNNAMED
        elif in_unnamed and line[:1].isdigit():
            for name, value in zip(events, line.split()[1:]):
                totals[name] += int(value)
    missing = set(EVENTS) - set(events)
    if missing:
        raise ValueError(f"cachegrind output {cachegrind_out} lacks events {sorted(missing)}")
    return totals


def count(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    """Per env-step counts of the compiled code: the replay of every step minus
    the replay of the warm-up alone."""
    env = {**os.environ, **CPU, **ONE_THREAD, "NUMBA_CACHE_DIR": str(directory / "numba")}
    actions = directory / "actions.npy"
    me = [sys.executable, __file__, "--task", args.task]
    subprocess.run(
        [
            *me,
            "--record",
            str(actions),
            "--batch",
            str(args.batch),
            "--steps",
            str(WARM_UP + args.steps),
        ],
        env=env,
        check=True,
    )
    results = []
    for steps in (0, args.steps):
        out = directory / f"cachegrind.{steps}.out"
        run = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                "--branch-sim=yes",
                f"--cachegrind-out-file={out}",
                *me,
                "--replay",
                str(actions),
                "--steps",
                str(steps),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if run.returncode != 0:
            sys.exit(f"the replay under valgrind failed:\n{run.stderr[-3000:]}")
        results.append(compiled_totals(out))
    before, after = results
    n = args.steps * args.batch
    return {event: (after[event] - before[event]) / n for event in EVENTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hard")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        replay(args.task, args.replay, args.steps)
        return
    if args.steps < 1 or args.batch < 1:
        parser.error(f"need --steps >= 1 and --batch >= 1, got {args.steps} and {args.batch}")
    if args.record:
        record(args.task, args.batch, args.steps, args.record)
        return
    from adaptive_alert_triage.sim import fast

    if not fast.available():
        sys.exit("count_instructions needs numba: pip install 'adaptive-alert-triage[fast]'")
    if shutil.which("valgrind") is None:
        sys.exit("count_instructions needs valgrind: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory() as directory:
        per_step = count(args, Path(directory))
    print(
        f"task {args.task}, B={args.batch}, {args.steps} steps of random masked actions "
        f"replayed under cachegrind; the compiled kernel (Haswell build), per env-step:"
    )
    labels = {
        "Ir": "instructions",
        "Bc": "conditional branches",
        "Bcm": "  missed by cachegrind's predictor",
        "Bi": "indirect branches",
    }
    for event, label in labels.items():
        print(f"{label:36} {per_step[event]:9,.0f}")


if __name__ == "__main__":
    main()
