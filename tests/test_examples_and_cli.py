"""The example and the command line run for real."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from adaptive_alert_triage.agents.teams import RandomTeam
from adaptive_alert_triage.cli import main
from adaptive_alert_triage.gym_env import AlertTriageVectorEnv
from adaptive_alert_triage.sim import fast, get_task

ROOT = Path(__file__).resolve().parents[1]


def _load_example(name: str, folder: str = "examples"):
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_team_beats_a_random_team():
    example = _load_example("team_policies")
    for task in ("easy", "medium", "hard"):
        scripted = example.run(task, example.TypeSplitTeam(), 10)
        random = example.run(task, RandomTeam(seed=0), 10)
        assert scripted.mean() > random.mean() + 20, task


def test_teams_command_prints_every_cell(capsys):
    assert (
        main(["teams", "--episodes", "2", "--tasks", "easy,hard", "--teams", "random,oracle"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    cells = [line.split()[:2] for line in lines[1:-1]]
    assert cells == [["easy", "random"], ["easy", "oracle"], ["hard", "random"], ["hard", "oracle"]]


def test_teams_command_rejects_unknown_names():
    result = subprocess.run(
        [sys.executable, "-m", "adaptive_alert_triage.cli", "teams", "--tasks", "extreme"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown task ['extreme']" in result.stderr


def _run_benchmark(name: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_benchmark_script_runs():
    result = _run_benchmark("bench_multiagent", "--steps", "50", "--tasks", "easy")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "env-steps/s" in result.stdout and "easy" in result.stdout


@pytest.mark.skipif(not fast.available(), reason="the vector benchmark steps the numba backend")
def test_vector_benchmark_prints_every_row_against_the_sync_reference():
    result = _run_benchmark("bench_vector", "--task", "easy", "--seconds", "0.02", "--repeat", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best and median of 3 rounds" in result.stdout.splitlines()[0]
    rows = {}
    for line in result.stdout.splitlines()[2:]:
        name, *cells = line.rsplit(maxsplit=4)
        rows[name] = [float(cell.replace(",", "")) for cell in cells]
    expected = ["single", "pettingzoo", *(f"vector B={b}" for b in (1, 64, 1024, 4096))]
    assert list(rows) == [*expected, "agents B=1024", "sync B=64"]
    team, sync = get_task("easy").n_agents, rows["sync B=64"][0]
    for rate, agent_rate, ratio, median in rows.values():
        assert rate > 0 and agent_rate == pytest.approx(rate * team, rel=1e-3, abs=1)
        assert ratio == pytest.approx(rate / sync, abs=0.05)
        # The median of three rounds is one of them, so never above the best.
        assert 0 < median <= rate * (1 + 1e-5)


@pytest.mark.skipif(not fast.available(), reason="the sampler benchmark steps the numba backend")
def test_sampler_footprint_benchmark_compares_every_sampler_to_float64():
    result = _run_benchmark(
        "sampler_footprint", "--task", "easy", "--batch", "8", "--rounds", "2", "--steps", "3"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    easy = AlertTriageVectorEnv(num_envs=1, task_id="easy").sim
    entries = 8 * easy.A * easy.n_actions
    assert f"{entries:,} mask entries per step" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["float64", "float32", "int16"]
    for row, per_entry in zip(rows, (16, 8, 4)):
        assert float(row[1]) == pytest.approx(entries * per_entry / 1e6, abs=0.005)
        assert float(row[3].replace(",", "")) > 0
    assert rows[0][4] == "+0.0%"
    bad = _run_benchmark("sampler_footprint", "--steps", "0")
    assert bad.returncode == 2 and "--steps must be >= 1, got 0" in bad.stderr


def test_every_footprint_sampler_picks_only_legal_actions_and_all_of_them():
    # The env accepts an illegal action (as a masked no-op), so the benchmark
    # itself would not notice a sampler that picks them.
    samplers = _load_example("sampler_footprint", "benchmarks").SAMPLERS
    rng = np.random.default_rng(7)
    masks = rng.random((4, 5, 33)) < 0.3
    masks[..., 0] = True  # the no-op is always legal
    for name, (sample, _) in samplers.items():
        picks = np.stack([sample(masks, rng) for _ in range(400)])
        assert picks.shape == (400, 4, 5), name
        legal = np.take_along_axis(masks[None], picks[..., None], axis=-1)
        assert legal.all(), f"{name} picked an illegal action"
        seen = np.zeros_like(masks)
        for draw in picks:
            np.put_along_axis(seen, draw[..., None], True, axis=-1)
        assert (seen == masks).all(), f"{name} never picked some legal action"


def test_ab_benchmark_alternates_two_trees_and_reports_both_medians():
    src = str(ROOT / "src")
    result = _run_benchmark(
        "ab_vector", src, src, "--batch", "8", "--seconds", "0.05", "--rounds", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    medians = re.findall(
        r"^(base|candidate) +median +([\d,]+) ns/env-step +\(([^)]*)\)", result.stdout, re.M
    )
    assert [name for name, _, _ in medians] == ["base", "candidate"]
    for _, median, runs in medians:
        assert len(runs.split(", ")) == 2 and int(median.replace(",", "")) > 0
    assert re.search(r"candidate vs base: [+-]\d+\.\d%", result.stdout)
    bad = _run_benchmark("ab_vector", src, str(ROOT))
    assert bad.returncode == 2 and "candidate must be a src/ folder" in bad.stderr


def test_paired_ab_benchmark_steps_both_trees_in_one_process():
    """``--paired`` imports each tree's package under its own name and reports
    the per-round ratios; the same tree against itself runs both copies."""
    src = str(ROOT / "src")
    args = ("--paired", "--batch", "8", "--rounds", "3", "--block", "2")
    result = _run_benchmark("ab_vector", src, src, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "team view, paired in one process: 3 rounds of 2 steps" in result.stdout
    medians = re.findall(r"^(base|candidate) +median +([\d,]+) ns/env-step", result.stdout, re.M)
    assert [name for name, _ in medians] == ["base", "candidate"]
    assert all(int(value.replace(",", "")) > 0 for _, value in medians)
    assert re.search(
        r"per round: median [+-]\d+\.\d% \(quartiles [+-]\d+\.\d%, [+-]\d+\.\d%\)", result.stdout
    )
    bad = _run_benchmark("ab_vector", src, src, "--paired", "--block", "0")
    assert bad.returncode == 2 and "--block >= 1" in bad.stderr
    agents = _run_benchmark("ab_vector", src, src, *args, "--agents")
    assert agents.returncode == 0, agents.stderr[-2000:]
    assert "agents view, paired in one process: 3 rounds of 2 steps" in agents.stdout
    assert len(re.findall(r"^(?:base|candidate) +median", agents.stdout, re.M)) == 2
    unpaired = _run_benchmark("ab_vector", src, src, "--agents")
    assert unpaired.returncode == 2 and "--agents needs --paired" in unpaired.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| **tests** |"))
    command = row.split("`")[1]
    assert command in ci.splitlines()


@pytest.mark.skipif(not fast.available(), reason="the kernel profile instruments the numba kernel")
def test_kernel_profile_matches_the_kernel_and_names_every_phase():
    # Its anchors must still find the kernel's phases, and the counter reads must
    # leave the trajectory alone (the script compares end states and exits if not).
    result = _run_benchmark("profile_kernel", "--batch", "3", "--steps", "120")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "final state identical to the kernel's" in result.stdout
    rows = {line[:28].strip(): line.split()[-2:] for line in result.stdout.splitlines()[2:]}
    phases = _load_example("profile_kernel", "benchmarks").PHASES
    assert set(rows) == {*phases, "sum"}
    assert all(int(ticks) > 0 for ticks, _ in rows.values())


def _perf_can_sample() -> bool:
    """perf is installed and this machine lets it sample a process (a sandbox
    without perf events does not)."""
    if shutil.which("perf") is None:
        return False
    with tempfile.TemporaryDirectory() as directory:
        out = str(Path(directory) / "probe.data")
        record = ["perf", "record", "-q", "-e", "cpu-clock", "-o", out]
        probe = subprocess.run([*record, "--", sys.executable, "-c", ""], capture_output=True)
        return probe.returncode == 0


@pytest.mark.skipif(
    not fast.available() or not _perf_can_sample(),
    reason="the line profile samples the numba kernel with perf",
)
def test_line_profile_maps_the_kernels_samples_to_its_source_and_finds_no_locked_counts():
    # B=1024, so that what is counted is the env loop's: the line-table build
    # keeps a prologue of reference counts once per call (the normal build
    # prunes it), most of the 1.7% to 2.2% counted at B=64 on an Intel Xeon,
    # where B=1024 counted 0.5%.
    result = _run_benchmark("profile_lines", "--batch", "1024", "--seconds", "1.5", "--top", "8")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    header, _, *rows = result.stdout.splitlines()
    kernel, counting = (
        int(n.replace(",", ""))
        for n in re.search(r"([\d,]+) samples in the kernel .*?([\d,]+) more", header).groups()
    )
    assert kernel > 100
    # The env loop borrows its arrays: numba's reference counting, once about a
    # tenth of the kernel's samples, must stay a trace of them.
    assert counting < 0.02 * kernel
    assert len(rows) == 8
    shares = [float(row.split("%")[0]) for row in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.05
    assert sum(re.search(r"fast\.py:\d+", row) is not None for row in rows) >= 6


@pytest.mark.skipif(
    not fast.available() or shutil.which("valgrind") is None,
    reason="counting instructions replays the numba kernel under valgrind",
)
def test_instruction_count_replays_legal_steps_and_counts_the_kernel():
    # The replay steps with on_illegal="raise", so a trajectory that drifted from
    # the recorded one would fail here rather than count a different run.
    result = _run_benchmark("count_instructions", "--batch", "4", "--steps", "6")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rows = {
        line[:36].strip(): float(line[36:].replace(",", ""))
        for line in result.stdout.splitlines()[1:]
    }
    assert set(rows) == {
        "instructions",
        "conditional branches",
        "missed by cachegrind's predictor",
        "indirect branches",
    }
    # A hard env-step runs thousands of instructions in the kernel, a fraction of
    # them branches, and no predictor misses more branches than there are.
    assert 1_000 < rows["instructions"] < 1_000_000
    assert 0 < rows["missed by cachegrind's predictor"] <= rows["conditional branches"]
    assert rows["conditional branches"] < rows["instructions"]
