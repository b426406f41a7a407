"""Bad arguments are refused up front with a clear message, never a traceback.

The command line answers with one error line and status 2 (before any work
where it can); the agents' constructors raise TypeError or ValueError naming
the bad value; the examples refuse counts that would train or play nothing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import adaptive_alert_triage.evaluation as evaluation
import adaptive_alert_triage.evaluation.plots as plots
from adaptive_alert_triage.agents.single import (
    AlwaysAgent,
    CorrelationAwareAgent,
    OracleAgent,
    RuleBasedAgent,
)
from adaptive_alert_triage.cli import main
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.ingest import AlertEvent
from adaptive_alert_triage.ingest.store import AlertStore

from .example_utils import run_example

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Every command runs in its own directory, so nothing lands in the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path) -> Path:
    """A small alert store to replay: a few firing alerts on two services."""
    path = tmp_path / "storm.db"
    with AlertStore(path) as s:
        for i in range(6):
            event = AlertEvent(
                "native",
                f"native:a{i}",
                "firing",
                ("payments", "edge")[i % 2],
                "CPU",
                0.8,
                0.9,
                T0 + 30 * i,
                None,
            )
            s.add([event], "native", received_at=T0 + i)
    return path


def _error(capsys) -> str:
    """The one line the command wrote to stderr."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def _no_work(monkeypatch, *names: str) -> None:
    """Make the evaluation entry points fail the test if a command reaches them."""

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the command started work before checking its arguments")

    for name in names:
        monkeypatch.setattr(evaluation, name, forbidden)


# ------------------------------------------------------------------ negative --seed
@pytest.mark.parametrize(
    "args",
    [
        ["demo"],
        ["teams", "--episodes", "1", "--tasks", "easy"],
        ["calibrate", "--episodes", "1", "--tasks", "easy"],
        ["replay"],
        ["evaluate", "--episodes", "1", "--tasks", "easy", "--no-progress"],
    ],
    ids=lambda a: a[0],
)
def test_a_negative_seed_is_refused_before_any_episode(args, store, capsys):
    if args[0] == "replay":
        args = [*args, "--db", str(store)]
    assert main([*args, "--seed", "-1"]) == 2
    assert _error(capsys) == "alert-triage: error: --seed must be >= 0, got -1"
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ output paths
def test_evaluate_checks_its_output_directory_before_the_work(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch, "evaluate")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["evaluate", "--out", str(blocker / "results"), "--no-progress"]) == 2
    assert _error(capsys).endswith(f"cannot be made: {blocker} is not a directory")
    assert main(["evaluate", "--out", str(blocker), "--no-progress"]) == 2
    assert _error(capsys).endswith(f"--out {str(blocker)!r} exists and is not a directory")


def test_evaluate_reports_an_output_directory_it_cannot_write(tmp_path, monkeypatch, capsys):
    # The directory was fine when checked but the write fails (disk full, removed...).
    def refuse(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", refuse)
    code = main(
        ["evaluate", "--tasks", "easy", "--agents", "rule", "--episodes", "1", "--no-progress"]
    )
    assert code == 2
    assert "cannot write results/results.json" in _error(capsys)


def test_replay_checks_its_json_path_before_the_work(tmp_path, store, monkeypatch, capsys):
    _no_work(monkeypatch, "play_episode")
    missing = tmp_path / "no-such-dir" / "r.json"
    assert main(["replay", "--db", str(store), "--json", str(missing)]) == 2
    assert _error(capsys).endswith(f"directory {missing.parent} does not exist")
    assert main(["replay", "--db", str(store), "--json", str(tmp_path)]) == 2
    assert _error(capsys).endswith("is a directory, not a file")


def test_plot_refuses_an_output_path_that_is_a_file(tmp_path, results_file, monkeypatch, capsys):
    def forbidden(*_args, **_kwargs):
        raise AssertionError("plots drawn before the output path was checked")

    monkeypatch.setattr(plots, "write_plots", forbidden)
    blocker = tmp_path / "taken"
    blocker.write_text("")
    assert main(["plot", str(results_file), "--out", str(blocker)]) == 2
    assert _error(capsys).endswith(f"--out {str(blocker)!r} exists and is not a directory")


# ------------------------------------------------------------------ malformed results files
@pytest.fixture(scope="module")
def results() -> dict:
    """A real results document, small."""
    return evaluation.evaluate(["random", "rule"], ["easy"], episodes=2, seed=0)


@pytest.fixture
def results_file(tmp_path, results) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return path


def _drop(document: dict, where: tuple) -> None:
    *parents, last = where
    for key in parents:
        document = document[key]
    del document[last]


@pytest.mark.parametrize(
    ("where", "named"),
    [
        (("config", "tasks"), "config['tasks']"),
        (("config", "episodes"), "config has no 'episodes'"),
        (("summary", 0, "task"), "summary[0] has no 'task'"),
        (("summary", 1, "agent"), "summary[1] has no 'agent'"),
        (("summary", 0, "ci_high"), "summary[0] has no 'ci_high'"),
        (("episodes", 2, "return"), "episodes[2] has no 'return'"),
        (("timelines", 0, "score"), "timelines[0]['score'] must be a list of numbers"),
        (("timelines", 1, "budget"), "timelines[1] has no 'budget'"),
    ],
)
def test_plot_names_what_a_malformed_results_file_lacks(
    tmp_path, results, where, named, monkeypatch, capsys
):
    document = copy.deepcopy(results)
    _drop(document, where)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    assert main(["plot", str(path), "--out", str(tmp_path / "plots")]) == 2
    message = _error(capsys)
    assert message.startswith(f"alert-triage: error: {path} is not a usable results file: ")
    assert named in message
    assert not (tmp_path / "plots").exists()
    with pytest.raises(ValueError, match=re.escape(named)):
        plots.write_plots(document, tmp_path / "plots")


def test_plot_rejects_the_reported_empty_document(tmp_path, capsys):
    path = tmp_path / "empty.json"
    path.write_text('{"schema_version":1,"config":{},"summary":[],"episodes":[]}')
    assert main(["plot", str(path)]) == 2
    assert "config['tasks'] must be a non-empty list of task names" in _error(capsys)


def test_plot_still_draws_a_well_formed_file(tmp_path, results_file, capsys):
    assert main(["plot", str(results_file), "--out", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(plots.PLOT_FILES)


# ------------------------------------------------------------------ user agent modules
@pytest.fixture
def user_module(tmp_path, monkeypatch) -> str:
    """An importable module of broken agents; returns its (unique) name."""
    name = f"broken_agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            class BadInit:
                def __init__(self):
                    raise RuntimeError("no config file")

                def act(self, observation):
                    return []

            class BadReset:
                def reset(self, seed=None):
                    raise KeyError("state")

                def act(self, observation):
                    return []

            class BadBind:
                def bind(self, env):
                    raise RuntimeError("cannot read the env")

                def act(self, observation):
                    return []

            class BadAct:
                def act(self, observation):
                    raise RuntimeError("lost")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _with_agent(command: str, spec: str, store: Path) -> list[str]:
    """One short run of ``command`` with the agent ``spec``, on easy, seed 0."""
    if command == "evaluate":
        return [
            *("evaluate", "--tasks", "easy", "--agents", "rule", "--agent-module", spec),
            *("--episodes", "1", "--no-progress", "--out", "out"),
        ]
    if command == "demo":
        return ["demo", "--task", "easy", "--agent", spec]
    return ["replay", "--db", str(store), "--task", "easy", "--agents", spec]


@pytest.mark.parametrize("command", ["evaluate", "demo", "replay"])
@pytest.mark.parametrize(
    ("attribute", "says"),
    [
        ("BadInit", "could not be made: BadInit() raised RuntimeError: no config file"),
        ("BadReset", "failed in reset() on task 'easy', seed 0: KeyError: 'state'"),
        ("BadBind", "failed in bind() on task 'easy': RuntimeError: cannot read the env"),
    ],
)
def test_an_agent_that_cannot_start_is_a_bad_argument(
    command, attribute, says, user_module, store, capsys
):
    spec = f"{user_module}:{attribute}"
    assert main(_with_agent(command, spec, store)) == 2
    message = _error(capsys)
    assert message.startswith(f"alert-triage: error: agent {spec!r} ")
    assert says in message
    assert not Path("out").exists()


def test_an_agent_that_crashes_mid_episode_still_fails_the_run(user_module, capsys):
    spec = f"{user_module}:BadAct"
    assert main(["demo", "--task", "easy", "--agent", spec]) == 1
    assert _error(capsys).endswith(
        f"agent {spec!r} failed in act() on task 'easy', seed 0, step 0: RuntimeError: lost"
    )


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def test_a_broken_agent_module_gives_no_traceback_in_a_real_process(user_module, tmp_path):
    command = [sys.executable, "-m", "adaptive_alert_triage.cli"]
    result = subprocess.run(
        [*command, "demo", "--agent", f"{user_module}:BadReset"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *_pythonpath()])},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ --delay and --agents
@pytest.mark.parametrize("delay", ["nan", "inf", "-inf", "-1"])
def test_demo_refuses_a_delay_that_is_not_a_finite_wait(delay, capsys):
    assert main(["demo", f"--delay={delay}"]) == 2
    assert _error(capsys).startswith("alert-triage: error: --delay must be a finite number")
    assert capsys.readouterr().out == ""  # no step was played


@pytest.mark.parametrize(
    ("agents", "says"),
    [
        (",", "no agent in ','"),
        (" , ,", "no agent in ' , ,'"),
        ("rule,genius", "unknown agent ['genius']"),
        ("rule, rule", "each agent may be named once"),
    ],
)
def test_replay_needs_a_list_of_agents(agents, says, store, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--db", str(store), "--agents", agents])
    assert exit_.value.code == 2
    assert says in _error(capsys)


def test_replay_agents_may_be_spaced(store, capsys):
    assert main(["replay", "--db", str(store), "--agents", "rule, oracle"]) == 0
    out = capsys.readouterr().out
    assert "rule: score" in out and "oracle: score" in out


# ------------------------------------------------------------------ baseline constructors
@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (lambda: AlwaysAgent("FOO"), ValueError, "unknown action_type 'FOO'; allowed"),
        (lambda: AlwaysAgent("investigate"), ValueError, "unknown action_type 'investigate'"),
        (lambda: AlwaysAgent(5), TypeError, "action_type must be a str"),
        (lambda: AlwaysAgent("IGNORE", greedy="no"), TypeError, "greedy must be a bool"),
        (lambda: AlwaysAgent("IGNORE", team_size=-3), ValueError, "team_size must be >= 1"),
        (lambda: AlwaysAgent("IGNORE", team_size=True), TypeError, "team_size must be an int"),
        (lambda: RuleBasedAgent(team_size="a"), TypeError, "team_size must be an int >= 1"),
        (lambda: RuleBasedAgent(team_size=4.0), TypeError, "team_size must be an int >= 1"),
        (lambda: RuleBasedAgent(investigators=0), ValueError, "investigators must be >= 1"),
        (lambda: RuleBasedAgent(investigators=4), ValueError, r"investigators \(4\) must be fewer"),
        (lambda: CorrelationAwareAgent(investigators=False), TypeError, "investigators must be"),
    ],
)
def test_baselines_refuse_bad_constructor_arguments(make, error, says):
    with pytest.raises(error, match=says):
        make()


def test_good_constructor_arguments_still_build_working_agents():
    env = AdaptiveAlertTriageEnv("hard")
    observation = env.reset(seed=0)
    for verb in ("INVESTIGATE", "IGNORE", "ESCALATE", "DELAY"):
        agent = AlwaysAgent(verb, team_size=5, investigators=4)
        actions = agent.act(observation)
        assert actions and {a.action_type for a in actions} == {verb}
    assert RuleBasedAgent(team_size=5, investigators=4).team_size == 5


def test_the_oracle_says_it_needs_bind_before_act():
    env = AdaptiveAlertTriageEnv("easy")
    observation = env.reset(seed=0)
    oracle = OracleAgent()
    with pytest.raises(ValueError, match=r"OracleAgent needs bind\(env\) before act\(\)"):
        oracle.act(observation)
    oracle.bind(env)
    assert oracle.act(observation)  # bound, it decides


# ------------------------------------------------------------------ example scripts
@pytest.mark.parametrize("episodes", ["0", "-1"])
def test_team_policies_example_needs_an_episode(episodes, tmp_path):
    result = run_example("team_policies", "--episodes", episodes, cwd=tmp_path)
    assert result.returncode == 2
    assert f"--episodes must be at least 1, got {episodes}" in result.stderr
    assert "nan" not in result.stdout and "Warning" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--timesteps", "-5"],
        ["--timesteps", "0"],
        ["--n-envs", "0"],
        ["--shared", "--timesteps", "0"],
    ],
)
def test_train_sb3_example_refuses_to_train_nothing(args, tmp_path):
    out = tmp_path / "p.zip"
    result = run_example("train_sb3", "--task", "easy", *args, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{args[-2]} must be at least 1, got {args[-1]}" in result.stderr
    assert "trained" not in result.stdout
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        ({"timesteps": -5}, ValueError, "timesteps must be >= 1, got -5"),
        ({"timesteps": 0}, ValueError, "timesteps must be >= 1, got 0"),
        ({"timesteps": 2.5}, TypeError, "timesteps must be an int"),
        ({"n_envs": 0}, ValueError, "n_envs must be >= 1, got 0"),
    ],
)
def test_train_refuses_to_train_nothing(change, error, says, tmp_path):
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.run import train

    out = tmp_path / "p.zip"
    with pytest.raises(error, match=says):
        train("easy", out, verbose=0, **change)
    assert not out.exists() and not out.with_suffix(".csv").exists()
