"""Where the vector kernel's time goes: ticks of the CPU's time-stamp counter per
env-step, phase by phase.

Run:  python benchmarks/profile_kernel.py [--task hard] [--batch 64] [--steps 2000]

Builds a copy of the numba kernel (``sim/fast.py``) with a counter read between
its phases (LLVM's ``readcyclecounter``), in a temporary directory, never in the
package. It steps that copy and the real kernel side by side, with the same
seeds and random masked actions, checks that both end in the same state (the
counters must not change what the kernel does), and prints the ticks per
env-step of each phase. The reads themselves add a little to every phase, so
compare phases within one run rather than against other benchmarks. Needs numba.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adaptive_alert_triage.sim import fast, get_task

PHASES = (
    "arbitration",
    "outcome rows",
    "applying decisions",
    "services, damage, cascades",
    "noise clearing",
    "arrivals",
    "rewards, termination",
    "masks",
    "observation, mask copy",
    "held envs and resets",
)
IND = " " * 12
LEGAL_THEN_OBSERVE = (
    "            _legal(b, alerts, verb_pattern, slot_flags, legal, N)\n            if observe:"
)


def _tick(phase: int) -> str:
    return f"{IND}now = _ticks()\n{IND}prof[{phase}] += now - then\n{IND}then = now\n"


def instrumented_source(source: str) -> str:
    """The kernel's source with counter reads between its phases. Raises
    ValueError naming the anchor that is missing when the kernel has changed
    under this script."""
    edits: list[tuple[str, str]] = [
        ("from .", "from adaptive_alert_triage.sim."),
        (
            "    *WORK_FIELDS,\n    *RECORD_FIELDS,\n)",
            '    *WORK_FIELDS,\n    *RECORD_FIELDS,\n    "prof",\n)',
        ),
        (
            '    "visible_fields": "_visible_fields",\n}',
            '    "visible_fields": "_visible_fields",\n    "prof": "_prof",\n}',
        ),
        ("cache=True", "cache=False"),
        (
            "if numba is not None:\n\n    def _jit(",
            "if numba is not None:\n"
            "    from llvmlite import ir as _ir\n"
            "    from numba.core import cgutils as _cgutils\n"
            "    from numba.extending import intrinsic as _intrinsic\n\n"
            "    @_intrinsic\n"
            "    def _ticks(typingctx):\n"
            "        def codegen(context, builder, signature, args):\n"
            "            fnty = _ir.FunctionType(_ir.IntType(64), [])\n"
            "            fn = _cgutils.get_or_insert_function(\n"
            '                builder.module, fnty, "llvm.readcyclecounter"\n'
            "            )\n"
            "            return builder.call(fn, [])\n\n"
            "        return types.int64(), codegen\n\n"
            "    def _jit(",
        ),
        (
            "        legal, needs_reset = _borrow(k.legal), _borrow(k.needs_reset)\n",
            "        legal, needs_reset = _borrow(k.legal), _borrow(k.needs_reset)\n"
            "        prof = _borrow(k.prof)\n",
        ),
        (
            "            tb = t[b]\n            key = episode_key[b]\n            blk = tb + 1\n",
            "            tb = t[b]\n            key = episode_key[b]\n            blk = tb + 1\n"
            f"{IND}then = _ticks()\n",
        ),
    ]
    marks = [
        "            for s in range(S):\n                handled_now[s] = False\n",
        "            # Apply: close decided alerts",
        "            # Specialists, damage",
        "            cleared = 0\n",
        "            t[b] = tb + 1\n",
        "            # Rewards: team components",
        LEGAL_THEN_OBSERVE,
    ]
    edits += [(text, _tick(i) + text) for i, text in enumerate(marks)]
    edits += [
        (
            LEGAL_THEN_OBSERVE,
            "            _legal(b, alerts, verb_pattern, slot_flags, legal, N)\n"
            + _tick(7)
            + "            if observe:",
        ),
        (
            "                _copy_mask(b, legal_rows, mask_rows)\n        return n_done",
            "                _copy_mask(b, legal_rows, mask_rows)\n"
            f"{IND}prof[8] += _ticks() - then\n        return n_done",
        ),
        (
            "            if not running[b]:\n                if autoreset and needs_reset[b]:",
            "            if not running[b]:\n                held_from = _ticks()\n"
            "                if autoreset and needs_reset[b]:",
        ),
        (
            "                if needs_reset[b]:\n                    n_done += 1\n"
            "                continue",
            "                if needs_reset[b]:\n                    n_done += 1\n"
            "                prof[9] += _ticks() - held_from\n                continue",
        ),
        (
            "        self._work_f = np.zeros(S * (1 + width) + 2 * S)\n",
            "        self._work_f = np.zeros(S * (1 + width) + 2 * S)\n"
            "        self._prof = np.zeros(16, np.int64)\n",
        ),
    ]
    for old, new in edits:
        count = source.count(old)
        if count == 0:
            raise ValueError(f"the kernel has changed: anchor not found: {old[:60]!r}")
        if old != "from ." and old != "cache=True" and count != 1:
            raise ValueError(f"anchor found {count} times, expected once: {old[:60]!r}")
        source = source.replace(old, new)
    return source


def load_instrumented(directory: str):
    path = Path(directory) / "aat_kernel_profile.py"
    path.write_text(instrumented_source(Path(fast.__file__).read_text()))
    spec = importlib.util.spec_from_file_location("aat_kernel_profile", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ticks_per_second(module) -> float:
    """The counter's rate, against the wall clock."""
    import numba

    @numba.njit
    def read():
        return module._ticks()

    read()
    t0, c0 = time.perf_counter(), read()
    time.sleep(0.2)
    return (read() - c0) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hard")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    if args.steps < 2 or args.batch < 1:
        parser.error(f"need --steps >= 2 and --batch >= 1, got {args.steps} and {args.batch}")
    if not fast.available():
        sys.exit("profile_kernel needs numba: pip install 'adaptive-alert-triage[fast]'")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as directory:
        module = load_instrumented(directory)
        config, B = get_task(args.task), args.batch
        profiled, plain = module.FastAlertSim(config, B), fast.FastAlertSim(config, B)
        seeds = list(range(B))
        profiled.reset(seeds)
        plain.reset(seeds)
        rng = np.random.default_rng(0)
        for step in range(args.steps):
            if step == min(20, args.steps // 2):
                profiled._prof[:] = 0  # after the warm-up steps
                counted = args.steps - step
            legal = profiled.legal
            actions = (rng.random(legal.shape) * legal).argmax(axis=-1)
            profiled.step_autoreset(actions, "noop", observe="team")
            plain.step_autoreset(actions, "noop", observe="team")
        for name in ("alerts", "inc_bool", "inc_int", "inc_float", "t", "episode", "legal"):
            if not np.array_equal(getattr(profiled, name), getattr(plain, name)):
                sys.exit(f"the instrumented kernel left {name} different from the kernel's")
        rate = ticks_per_second(module)
        per_step = profiled._prof[: len(PHASES)] / (counted * B)
    print(
        f"task {args.task}, B={B}, {counted} steps counted, random masked actions; "
        f"counter at {rate / 1e9:.2f} GHz; final state identical to the kernel's"
    )
    print(f"{'phase':28} {'ticks/env-step':>15} {'ns':>7}")
    for name, ticks in zip(PHASES, per_step):
        print(f"{name:28} {ticks:15.0f} {ticks / rate * 1e9:7.0f}")
    total = per_step.sum()
    print(f"{'sum':28} {total:15.0f} {total / rate * 1e9:7.0f}")


if __name__ == "__main__":
    main()
