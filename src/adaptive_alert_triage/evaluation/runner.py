"""Run agents over seeded episodes of the single-agent env and summarise them.

Every episode is identified by (agent, task, seed) and played from scratch, and
each agent is reset with the episode's seed, so results are the same whether
episodes run in one process or many, in any order.
"""

from __future__ import annotations

import datetime as _dt
import math
import multiprocessing
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib import metadata
from typing import Any

import numpy as np

from ..sim.config import TASKS
from .registry import agent_label, load_agent, reset_agent
from .stats import bootstrap_ci

SCHEMA_VERSION = 1
CLAIM_VERBS = ("INVESTIGATE", "ESCALATE")


class AgentError(RuntimeError):
    """An agent broke the single-agent contract (an illegal decision or a crash).

    ``exit_code`` is the status the CLI exits with: 1, as the run itself failed."""

    exit_code = 1


class AgentSetupError(AgentError):
    """An agent could not be set up for an episode (``bind`` or ``reset`` raised).

    Such an agent is unusable, like one whose constructor fails, so the CLI
    treats it as a bad agent argument (status 2) rather than a failed run."""

    exit_code = 2


def _agent_name(agent: Any, name: str | None) -> str:
    return name if name is not None else type(agent).__name__


def bind_agent(agent: Any, env: Any, name: str | None = None) -> None:
    """``agent.bind(env)`` when it has one; a failure is an `AgentSetupError`
    naming the agent (``name``, default its class) and the exception."""
    bind = getattr(agent, "bind", None)
    if not callable(bind):
        return
    try:
        bind(env)
    except Exception as exc:  # a user's agent may fail in any way; say whose
        raise AgentSetupError(
            f"agent {_agent_name(agent, name)!r} failed in bind() on task "
            f"{getattr(env, 'task_id', None)!r}: {type(exc).__name__}: {exc}"
        ) from exc


def play_episode(
    env: Any, agent: Any, seed: int, timeline: bool = False, name: str | None = None
) -> dict[str, Any]:
    """One seeded episode; returns its record (and its per-step timeline if asked).

    An agent with ``observe_result(reward, done, info)`` is told each step's result.
    A failing agent raises `AgentError` (`AgentSetupError` from ``reset``) naming
    the agent (``name``, default its class), the task, seed and step.
    """
    label = _agent_name(agent, name)
    observation = env.reset(seed=seed)
    try:
        reset_agent(agent, seed)
    except Exception as exc:  # a user's agent may fail in any way; say whose
        raise AgentSetupError(
            f"agent {label!r} failed in reset() on task {env.task_id!r}, seed {seed}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    done, total, info = False, 0.0, {"task_score": 0.0, "task_passed": False}
    steps: dict[str, list[float]] = {
        k: [] for k in ("queue_length", "budget_used", "failures", "cascades", "reward", "score")
    }
    cascades = 0
    while not done:
        queue_length = observation.queue_length
        try:
            action = agent.act(observation)
        except Exception as exc:  # a user's agent may fail in any way; say where
            raise AgentError(
                f"agent {label!r} failed in act() on task {env.task_id!r}, seed {seed}, "
                f"step {observation.episode_step}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            observation, reward, done, info = env.step(action)
        except (ValueError, TypeError) as exc:
            raise AgentError(
                f"agent {label!r} made an illegal decision on task {env.task_id!r}, seed {seed}, "
                f"step {observation.episode_step}: {exc}"
            ) from exc
        total += reward.value
        cascades += info["cascades_this_step"]
        if callable(getattr(agent, "observe_result", None)):  # e.g. LLMAgent's step log
            try:
                agent.observe_result(reward, done, info)
            except Exception as exc:  # a user's agent may fail in any way; say whose
                raise AgentError(
                    f"agent {label!r} failed in observe_result() on task {env.task_id!r}, "
                    f"seed {seed}, step {info['step']}: {type(exc).__name__}: {exc}"
                ) from exc
        if timeline:
            used = sum(
                1
                for d in info["processed_alerts"]
                if d["status"] == "granted" and d["action_type"] in CLAIM_VERBS
            )
            steps["queue_length"].append(queue_length)
            steps["budget_used"].append(used)
            steps["failures"].append(info["failures_this_step"])
            steps["cascades"].append(info["cascades_this_step"])
            steps["reward"].append(reward.value)
            steps["score"].append(info["task_score"])
    record = {
        "seed": seed,
        "score": float(info["task_score"]),
        "passed": bool(info["task_passed"]),
        "return": float(total),
        "failures": int(info["failures_count"]),
        "cascades": int(cascades),
        "steps": int(info["step"]),
        "terminated": bool(info["terminated"]),
    }
    if timeline:
        record["timeline"] = {"budget": env.config.investigation_budget, **steps}
    return record


def run_cell(
    spec: str,
    task_id: str,
    seeds: Sequence[int],
    timeline_seed: int | None = None,
    on_episode: Any = None,
) -> list[dict[str, Any]]:
    """Every seed of one agent on one task, in a fresh env and a fresh agent
    (``on_episode()`` is called after each episode, for progress)."""
    from ..env import AdaptiveAlertTriageEnv

    agent = load_agent(spec)
    env = AdaptiveAlertTriageEnv(task_id=task_id)
    bind_agent(agent, env, spec)
    records = []
    for seed in seeds:
        record = play_episode(env, agent, seed, timeline=seed == timeline_seed, name=spec)
        records.append({"agent": agent_label(spec), "task": task_id, **record})
        if on_episode is not None:
            on_episode()
    return records


class _Progress:
    """tqdm when it is installed and wanted, otherwise silent."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="episode", file=sys.stderr)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _chunks(seeds: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(seeds), size):
        yield seeds[start : start + size]


def evaluate(
    agents: Sequence[str],
    tasks: Sequence[str],
    episodes: int = 100,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Every agent on every task over seeds ``seed .. seed + episodes - 1``.

    Returns the results document written to ``results.json``: the config, a
    summary row per agent × task, every episode's record, and one episode's
    timeline per agent × task (the first seed).
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; allowed: {list(TASKS)}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    labels = [agent_label(a) for a in agents]
    if len(set(labels)) != len(labels):
        raise ValueError(f"agent names must be distinct, got {labels}")
    for spec in agents:  # fail fast, before any episode runs
        load_agent(spec)

    seeds = list(range(seed, seed + episodes))
    chunk = max(1, math.ceil(episodes / (4 * workers))) if workers > 1 else episodes
    jobs = [
        (spec, task, part, seeds[0])
        for spec in agents
        for task in tasks
        for part in _chunks(seeds, chunk)
    ]
    bar = _Progress(len(agents) * len(tasks) * episodes, progress)
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    try:
        if workers == 1:
            for job in jobs:
                records.extend(run_cell(*job, on_episode=lambda: bar.update(1)))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(run_cell, *job): job for job in jobs}
                for future in as_completed(futures):
                    records.extend(future.result())
                    bar.update(len(futures[future][2]))
    finally:
        bar.close()
    elapsed = time.perf_counter() - start

    order = {
        (label, task): i for i, (label, task) in enumerate((a, t) for a in labels for t in tasks)
    }
    records.sort(key=lambda r: (order[(r["agent"], r["task"])], r["seed"]))
    timelines = []
    for r in records:
        if "timeline" in r:
            timelines.append(
                {"agent": r["agent"], "task": r["task"], "seed": r["seed"], **r.pop("timeline")}
            )
    return {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "package_version": _version(),
        "config": {
            "agents": list(agents),
            "tasks": list(tasks),
            "episodes": episodes,
            "seed": seed,
            "seeds": [seeds[0], seeds[-1]],
            "workers": workers,
            "confidence": confidence,
            "bootstrap_resamples": 10_000,
        },
        "thresholds": {t: _threshold(t) for t in tasks},
        "summary": summarise(records, labels, tasks, confidence),
        "episodes": records,
        "timelines": timelines,
        "elapsed_seconds": round(elapsed, 3),
    }


def summarise(
    records: Sequence[dict[str, Any]],
    agents: Sequence[str],
    tasks: Sequence[str],
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """One row per agent × task: mean score with its bootstrap CI, success
    rate, mean return and mean failures."""
    rows = []
    for agent in agents:
        for task in tasks:
            cell = [r for r in records if r["agent"] == agent and r["task"] == task]
            if not cell:
                continue
            scores = [r["score"] for r in cell]
            low, high = bootstrap_ci(scores, confidence)
            rows.append(
                {
                    "agent": agent,
                    "task": task,
                    "episodes": len(cell),
                    "mean_score": float(np.mean(scores)),
                    "ci_low": low,
                    "ci_high": high,
                    "success_rate": float(np.mean([r["passed"] for r in cell])),
                    "mean_return": float(np.mean([r["return"] for r in cell])),
                    "mean_failures": float(np.mean([r["failures"] for r in cell])),
                    "mean_steps": float(np.mean([r["steps"] for r in cell])),
                }
            )
    return rows


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table (readable in a terminal and in the README)."""
    lines = [
        "| task | agent | mean score | 95% CI | success rate | mean return | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted(
        summary, key=lambda r: list(TASKS).index(r["task"]) if r["task"] in TASKS else 99
    ):
        lines.append(
            f"| {row['task']} | {row['agent']} | {row['mean_score']:.3f} | "
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] | {row['success_rate']:.2f} | "
            f"{row['mean_return']:.1f} | {row['mean_failures']:.2f} |"
        )
    return "\n".join(lines)


def _threshold(task_id: str) -> float:
    from ..tasks import GRADERS

    return float(GRADERS[task_id].threshold)


def _version() -> str:
    try:
        return metadata.version("adaptive-alert-triage")
    except metadata.PackageNotFoundError:
        return "unknown"
