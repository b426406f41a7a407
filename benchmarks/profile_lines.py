"""Where the vector kernel's time goes, source line by source line: a sampling
profile of `AlertTriageVectorEnv.step` with the kernel's samples mapped to the
lines of ``sim/fast.py``.

Run:  python benchmarks/profile_lines.py [--task hard] [--batch 4096] [--seconds 10] [--top 30]

Needs ``perf`` (Debian: ``apt-get install linux-perf``) and binutils'
``addr2line`` and ``nm``. It runs itself under ``perf record -e cpu-clock``
with ``NUMBA_DEBUGINFO=1`` and a fresh numba cache in a temporary directory,
so the kernel is compiled there with line tables (the package's own cache is
not touched). The child steps the vector env with random masked actions and
writes the compiled kernel's object code and load address; the parent maps
each sample that falls in the kernel to the innermost source line and prints
the lines with the largest shares. A build with line tables prunes fewer
reference counts than the normal one, so read the shares for where the time
goes, not as the normal build's exact split. It also prints the share of the
kernel's samples that fell in numba's reference-counting functions.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    """Step the vector env for ``args.seconds``, after writing the kernel's
    object code and load address into ``args.out``."""
    import warnings

    import numpy as np
    from numba.core.errors import NumbaDebugInfoWarning

    from adaptive_alert_triage.gym_env import AlertTriageVectorEnv
    from adaptive_alert_triage.sim import fast

    # numba's own helpers have no source to give line tables; the kernel has.
    warnings.filterwarnings("ignore", category=NumbaDebugInfoWarning)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    B = args.batch
    venv = AlertTriageVectorEnv(num_envs=B, task_id=args.task)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)

    def step() -> None:
        masks = venv.action_masks().reshape(B, venv.sim.A, -1)
        venv.step((rng.random(masks.shape) * masks).argmax(axis=-1))

    step()  # compiles the kernel, with line tables
    out = Path(args.out)
    result = fast._step.overloads[fast._step.signatures[0]]
    library = result.library
    name = result.fndesc.llvm_func_name
    (out / "kernel.o").write_bytes(library.serialize_using_object_code()[2][0])
    counting = [library.get_pointer_to_function(f) for f in ("NRT_incref", "NRT_decref")]
    addresses = [library.get_pointer_to_function(name), *counting]
    (out / "kernel.txt").write_text(" ".join([name, *map(str, addresses)]))
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        step()


def _symbol_size(obj: Path, name: str) -> tuple[int, int]:
    for line in subprocess.run(
        ["nm", "-S", str(obj)], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[0], 16), int(parts[1], 16)
    raise RuntimeError(f"the kernel's symbol is missing from {obj}")


def _lines(obj: Path, offsets: list[int]) -> dict[int, str]:
    """The innermost ``file:line`` of each offset into the object's text."""
    out = subprocess.run(
        ["addr2line", "-a", "-i", "-e", str(obj), *(hex(o) for o in offsets)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    lines: dict[int, str] = {}
    current = None
    for line in out:
        if line.startswith("0x"):
            current = int(line, 16)
        elif current is not None and current not in lines:
            lines[current] = Path(line.split(" ")[0]).name
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hard")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch < 1 or args.seconds <= 0 or args.top < 1:
        parser.error(
            f"need --batch >= 1, --seconds > 0 and --top >= 1, got {args.batch}, "
            f"{args.seconds} and {args.top}"
        )
    if args.child:
        child(args)
        return
    missing = [tool for tool in ("perf", "addr2line", "nm") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"profile_lines needs {', '.join(missing)} (apt-get install linux-perf binutils)")
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        env = dict(os.environ, NUMBA_DEBUGINFO="1", NUMBA_CACHE_DIR=str(out / "numba"))
        data = out / "perf.data"
        command = [sys.executable, __file__, "--child", "--out", directory]
        command += ["--task", args.task, "--batch", str(args.batch)]
        command += ["--seconds", str(args.seconds)]
        record = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-o", str(data)]
        subprocess.run([*record, "--", *command], env=env, check=True)
        name, address, incref, decref = (out / "kernel.txt").read_text().split()
        start, size = _symbol_size(out / "kernel.o", name)
        base = int(address) - start
        # numba's NRT_incref and NRT_decref: a few instructions each (the
        # decref's tail jump to the destructor included).
        counted = [(int(incref), int(incref) + 16), (int(decref), int(decref) + 32)]
        samples = subprocess.run(
            ["perf", "script", "-i", str(data), "-F", "ip"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        in_kernel: collections.Counter[int] = collections.Counter()
        counting = 0
        for line in samples:
            parts = line.split()
            if not parts:
                continue
            ip = int(parts[0], 16)
            if start <= ip - base < start + size:
                in_kernel[ip - base] += 1
            elif any(lo <= ip < hi for lo, hi in counted):
                counting += 1
        if not in_kernel:
            sys.exit("no samples fell in the kernel; run longer (--seconds)")
        lines = _lines(out / "kernel.o", sorted(in_kernel))
    by_line: collections.Counter[str] = collections.Counter()
    for offset, n in in_kernel.items():
        by_line[lines.get(offset, "?")] += n
    total = sum(in_kernel.values())
    source = Path(__file__).resolve().parents[1] / "src/adaptive_alert_triage/sim/fast.py"
    text = source.read_text().splitlines() if source.exists() else []
    print(
        f"task {args.task}, B={args.batch}, {args.seconds}s of random masked actions; "
        f"{total:,} samples in the kernel (of {len(samples):,}), "
        f"{counting:,} more in numba's reference counting"
    )
    print(f"{'share':>6}  {'line':<16} source")
    for where, n in by_line.most_common(args.top):
        match = re.fullmatch(r"fast\.py:(\d+)", where)
        code = text[int(match.group(1)) - 1].strip() if match and text else ""
        print(f"{100 * n / total:5.1f}%  {where:<16} {code[:80]}")


if __name__ == "__main__":
    main()
