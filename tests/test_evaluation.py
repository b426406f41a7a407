"""The baselines and `alert-triage evaluate` / `plot` / `demo`, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_alert_triage.cli import main
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.evaluation import (
    AGENT_NAMES,
    DEFAULT_AGENTS,
    SCHEMA_VERSION,
    bootstrap_ci,
    evaluate,
    load_agent,
)
from adaptive_alert_triage.evaluation.plots import PLOT_FILES
from adaptive_alert_triage.models import Action

TASKS = ("easy", "medium", "hard")
EPISODE_KEYS = {
    "agent",
    "task",
    "seed",
    "score",
    "passed",
    "return",
    "failures",
    "cascades",
    "steps",
    "terminated",
}
SUMMARY_KEYS = {
    "agent",
    "task",
    "episodes",
    "mean_score",
    "ci_low",
    "ci_high",
    "success_rate",
    "mean_return",
    "mean_failures",
    "mean_steps",
}


def _cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "adaptive_alert_triage.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def test_evaluate_writes_results_and_plots_that_open(tmp_path, capsys):
    out = tmp_path / "results"
    code = main(
        [
            "evaluate",
            "--tasks",
            "easy,hard",
            "--agents",
            "random,rule",
            "--episodes",
            "3",
            "--seed",
            "7",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| hard | rule |" in printed and "| easy | random |" in printed

    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == SCHEMA_VERSION
    assert results["config"]["agents"] == ["random", "rule"]
    assert results["config"]["tasks"] == ["easy", "hard"]
    assert results["config"]["seeds"] == [7, 9]
    assert set(results["thresholds"]) == {"easy", "hard"}
    episodes = results["episodes"]
    assert len(episodes) == 2 * 2 * 3
    for record in episodes:
        assert set(record) == EPISODE_KEYS
        assert 0.0 <= record["score"] <= 1.0
    assert sorted({(e["agent"], e["task"], e["seed"]) for e in episodes}) == sorted(
        (a, t, s) for a in ("random", "rule") for t in ("easy", "hard") for s in (7, 8, 9)
    )
    assert len(results["summary"]) == 4
    for row in results["summary"]:
        assert set(row) == SUMMARY_KEYS
        cell = [
            e["score"] for e in episodes if (e["agent"], e["task"]) == (row["agent"], row["task"])
        ]
        assert row["mean_score"] == pytest.approx(np.mean(cell))  # recomputable from episodes
        assert row["ci_low"] <= row["mean_score"] <= row["ci_high"]
    timeline = results["timelines"][0]
    assert len(timeline["queue_length"]) == len(timeline["failures"]) == len(timeline["score"])
    assert max(timeline["budget_used"]) <= timeline["budget"]

    for name in PLOT_FILES:
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    replot = tmp_path / "replot"
    assert main(["plot", str(out / "results.json"), "--out", str(replot)]) == 0
    assert sorted(p.name for p in replot.iterdir()) == sorted(PLOT_FILES)


def test_episode_scores_do_not_depend_on_workers(tmp_path):
    serial = evaluate(["random", "correlation"], ["medium"], episodes=6, seed=3, workers=1)
    parallel = evaluate(["random", "correlation"], ["medium"], episodes=6, seed=3, workers=2)
    assert serial["episodes"] == parallel["episodes"]
    assert serial["summary"] == parallel["summary"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--tasks", "extreme"], "unknown task ['extreme']"),
        (["evaluate", "--agents", "rule,genius"], "unknown agent ['genius']"),
        (["evaluate", "--agent-module", "no_such_pkg.agent:Agent"], "cannot import agent module"),
        (["evaluate", "--agent-module", "json:NoSuchAgent"], "has no attribute 'NoSuchAgent'"),
        (["evaluate", "--agent-module", "json:JSONDecoder"], "has no act(observation) method"),
        (["evaluate", "--agent-module", "nocolon"], "unknown agent 'nocolon'"),
        (["evaluate", "--episodes", "0"], "--episodes must be >= 1"),
        (["evaluate", "--workers", "0"], "--workers must be >= 1"),
        (["demo", "--agent", "genius"], "unknown agent 'genius'"),
        (["demo", "--task", "extreme"], "invalid choice: 'extreme'"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, args, message):
    result = _cli(*args, "--out", str(tmp_path)) if args[0] == "evaluate" else _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results.json").exists()


def test_plot_rejects_missing_and_foreign_files(tmp_path):
    missing = _cli("plot", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such results file" in missing.stderr
    foreign = tmp_path / "other.json"
    foreign.write_text('{"hello": 1}')
    result = _cli("plot", str(foreign))
    assert result.returncode == 2 and "is not a results file" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = _cli("plot", str(broken))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_a_users_agent_module_is_evaluated(tmp_path):
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_agent.py").write_text(
        textwrap.dedent(
            """
            from adaptive_alert_triage.models import Action

            class IgnoreFaint:
                def reset(self):
                    self.calls = 0

                def act(self, observation):
                    return [
                        Action(alert_id=a.id, action_type="IGNORE")
                        for a in observation.alerts[:2]
                        if a.confidence < 0.5
                    ]

            class Cheater:
                def act(self, observation):
                    return Action(alert_id="0123456789abcdef", action_type="INVESTIGATE")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = tmp_path / "out"
    result = _cli(
        "evaluate",
        "--tasks",
        "easy",
        "--agents",
        "random",
        "--agent-module",
        "my_pkg.my_agent:IgnoreFaint",
        "--episodes",
        "4",
        "--workers",
        "2",
        "--no-progress",
        "--no-plots",
        "--out",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert {row["agent"] for row in results["summary"]} == {"random", "IgnoreFaint"}
    assert len([e for e in results["episodes"] if e["agent"] == "IgnoreFaint"]) == 4

    cheat = _cli(
        "evaluate",
        "--tasks",
        "easy",
        "--agents",
        "rule",
        "--agent-module",
        "my_pkg.my_agent:Cheater",
        "--episodes",
        "2",
        "--no-progress",
        "--out",
        str(tmp_path / "cheat"),
        env=env,
    )
    assert cheat.returncode == 1
    assert "illegal decision on task 'easy', seed 0, step 0" in cheat.stderr
    assert "0123456789abcdef" in cheat.stderr


def test_demo_plays_one_episode_step_by_step(capsys):
    assert main(["demo", "--task", "medium", "--agent", "correlation", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("[medium] step ") == 30  # one rendered queue per step
    assert "-> " in out
    assert out.strip().splitlines()[-1].startswith("correlation on medium, seed 3: score ")


def _check_legal(observation, actions, env) -> None:
    actions = actions if isinstance(actions, list) else [actions]
    visible = {a.id for a in observation.alerts}
    ids = [a.alert_id for a in actions]
    assert all(isinstance(a, Action) for a in actions)
    assert set(ids) <= visible and len(ids) == len(set(ids))
    assert len(actions) <= env.config.n_agents
    assert sum(a.action_type == "ESCALATE" for a in actions) <= 1
    assert sum(a.action_type == "INVESTIGATE" for a in actions) <= env.config.n_investigators


@settings(max_examples=12, deadline=None)
@given(
    task=st.sampled_from(TASKS),
    agent_name=st.sampled_from(DEFAULT_AGENTS),
    seed=st.integers(0, 2**31 - 1),
)
def test_every_agent_takes_only_legal_actions(task, agent_name, seed):
    env = AdaptiveAlertTriageEnv(task_id=task)
    agent = load_agent(agent_name)
    if hasattr(agent, "bind"):
        agent.bind(env)
    for episode_seed in (seed, seed + 1):
        observation = env.reset(seed=episode_seed)
        agent.reset(seed=episode_seed)
        done = False
        while not done:
            actions = agent.act(observation)
            _check_legal(observation, actions, env)
            observation, _, done, info = env.step(actions)
            for denial in info["denials"]:
                assert denial["reason"] in ("budget", "conflict")


def test_the_baselines_are_ordered_on_every_task():
    """Oracle > rule-based > random, means over 50 seeds, 95% CIs apart."""
    results = evaluate(["random", "rule", "oracle"], list(TASKS), episodes=50, seed=5000)
    rows = {(r["agent"], r["task"]): r for r in results["summary"]}
    for task in TASKS:
        random, rule, oracle = (rows[(a, task)] for a in ("random", "rule", "oracle"))
        assert oracle["ci_low"] > rule["ci_high"], task
        assert rule["ci_low"] > random["ci_high"], task


def test_the_correlation_agent_reads_cascades():
    """On hard, the pattern-aware agent is at least as good as the plain rules it builds on."""
    results = evaluate(["rule", "correlation"], ["hard"], episodes=50, seed=5000)
    rule, correlation = (r["mean_score"] for r in results["summary"])
    assert correlation >= rule


def test_random_agent_is_reproducible_per_episode_seed():
    a, b = load_agent("random"), load_agent("random")
    env = AdaptiveAlertTriageEnv(task_id="easy")
    observation = env.reset(seed=1)
    a.reset(seed=11)
    first = [a.act(observation) for _ in range(5)]
    b.reset(seed=99)
    b.reset(seed=11)
    assert [b.act(observation) for _ in range(5)] == first


def test_agent_names_and_constructor_checks():
    assert set(DEFAULT_AGENTS) <= set(AGENT_NAMES)
    with pytest.raises(ValueError, match="claim_severity must be in"):
        load_agent("rule").__class__(claim_severity=1.5)
    with pytest.raises(TypeError, match="cascade_window"):
        load_agent("correlation").__class__(cascade_window="3")


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60),
    confidence=st.floats(0.5, 0.99),
)
def test_bootstrap_ci_lies_within_the_data_and_is_reproducible(values, confidence):
    low, high = bootstrap_ci(values, confidence, resamples=500)
    assert min(values) - 1e-12 <= low <= high <= max(values) + 1e-12
    assert (low, high) == bootstrap_ci(values, confidence, resamples=500)


def test_bootstrap_ci_matches_the_normal_interval_on_a_large_sample():
    sample = np.random.default_rng(0).normal(0.5, 0.1, size=400)
    low, high = bootstrap_ci(sample)
    half = 1.96 * sample.std(ddof=1) / np.sqrt(sample.size)
    assert low < sample.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)
