"""PNG plots of a results document (``alert-triage plot results.json``).

matplotlib comes with the ``[eval]`` extra; it is imported here only, with the
non-interactive Agg backend, so plotting works on a headless machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PLOT_FILES = ("scores.png", "returns.png", "timeline.png")


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            'plots need matplotlib: pip install "adaptive-alert-triage[eval]"'
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_SUMMARY_FIELDS = {
    "agent": str,
    "task": str,
    "mean_score": float,
    "ci_low": float,
    "ci_high": float,
}
_EPISODE_FIELDS = {"agent": str, "task": str, "return": float}
_TIMELINE_FIELDS = {"agent": str, "task": str, "seed": int, "budget": float}
_TIMELINE_SERIES = ("queue_length", "budget_used", "failures", "cascades", "score")


def _is(value: Any, kind: type) -> bool:
    """``kind`` with JSON's number rules: an int is a float, a bool is neither."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _check_rows(rows: Any, where: str, fields: dict[str, type]) -> None:
    if not isinstance(rows, list):
        raise ValueError(f"{where} must be a list, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{where}[{i}] must be an object, got {type(row).__name__}")
        for key, kind in fields.items():
            if key not in row:
                raise ValueError(f"{where}[{i}] has no {key!r} (it needs {list(fields)})")
            if not _is(row[key], kind):
                want = "a number" if kind is float else f"a {kind.__name__}"
                raise ValueError(f"{where}[{i}][{key!r}] must be {want}, got {row[key]!r}")


def check_results(results: Any) -> None:
    """Raise a ValueError naming the first field the plots need and do not find.

    A results file can be edited or truncated by hand; checking every field the
    plotters read turns a KeyError deep in matplotlib code into a message."""
    if not isinstance(results, dict):
        raise ValueError(f"a results document must be an object, got {type(results).__name__}")
    for key in ("config", "summary", "episodes"):
        if key not in results:
            raise ValueError(f"no {key!r}")
    config = results["config"]
    if not isinstance(config, dict):
        raise ValueError(f"'config' must be an object, got {type(config).__name__}")
    tasks = config.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise ValueError(f"config['tasks'] must be a non-empty list of task names, got {tasks!r}")
    if "episodes" not in config:
        raise ValueError("config has no 'episodes'")
    _check_rows(results["summary"], "summary", _SUMMARY_FIELDS)
    if not results["summary"]:
        raise ValueError("'summary' is empty: there is nothing to plot")
    _check_rows(results["episodes"], "episodes", _EPISODE_FIELDS)
    thresholds = results.get("thresholds", {})
    if not isinstance(thresholds, dict) or not all(_is(v, float) for v in thresholds.values()):
        raise ValueError(f"'thresholds' must map tasks to numbers, got {thresholds!r}")
    timelines = results.get("timelines", [])
    _check_rows(timelines, "timelines", _TIMELINE_FIELDS)
    for i, timeline in enumerate(timelines):
        lengths = set()
        for key in _TIMELINE_SERIES:
            series = timeline.get(key)
            if not isinstance(series, list) or not all(_is(v, float) for v in series):
                raise ValueError(f"timelines[{i}][{key!r}] must be a list of numbers")
            lengths.add(len(series))
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                f"timelines[{i}] series {list(_TIMELINE_SERIES)} must be non-empty and of "
                "one length"
            )


def write_plots(
    results: dict[str, Any], out_dir: str | Path, timeline_agent: str | None = None
) -> list[Path]:
    """Scores by agent and task with CI bars, the return distributions, and one
    episode's timeline. Returns the paths written.

    A document without what the plots read is a ValueError (see `check_results`)."""
    check_results(results)
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = results["config"]["tasks"]
    agents = list(dict.fromkeys(row["agent"] for row in results["summary"]))
    written = [
        _scores(plt, results, tasks, agents, out / "scores.png"),
        _returns(plt, results, tasks, agents, out / "returns.png"),
    ]
    timeline = _pick_timeline(results, timeline_agent)
    if timeline is not None:
        written.append(_timeline(plt, timeline, out / "timeline.png"))
    return written


def _scores(plt, results, tasks, agents, path: Path) -> Path:
    rows = {(r["agent"], r["task"]): r for r in results["summary"]}
    fig, ax = plt.subplots(figsize=(1.8 + 2.2 * len(tasks), 4))
    width = 0.8 / max(len(agents), 1)
    for i, agent in enumerate(agents):
        xs, means, errs = [], [], [[], []]
        for j, task in enumerate(tasks):
            row = rows.get((agent, task))
            if row is None:
                continue
            xs.append(j + (i - (len(agents) - 1) / 2) * width)
            means.append(row["mean_score"])
            errs[0].append(row["mean_score"] - row["ci_low"])
            errs[1].append(row["ci_high"] - row["mean_score"])
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=agent)
    for j, task in enumerate(tasks):
        threshold = results.get("thresholds", {}).get(task)
        if threshold is not None:
            ax.hlines(threshold, j - 0.45, j + 0.45, colors="black", linestyles="dashed", lw=1)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("task score (mean, 95% bootstrap CI)")
    ax.set_title(
        f"Scores over {results['config']['episodes']} seeded episodes (dashed: pass threshold)"
    )
    ax.legend(fontsize="small", ncols=min(len(agents), 5), loc="upper left")
    return _save(plt, fig, path)


def _returns(plt, results, tasks, agents, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(tasks), figsize=(1.5 + 3.2 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        data = [
            [e["return"] for e in results["episodes"] if e["agent"] == a and e["task"] == task]
            for a in agents
        ]
        ax.boxplot(data, tick_labels=agents, showmeans=True)
        ax.set_title(task)
        ax.tick_params(axis="x", labelrotation=30)
        ax.axhline(0, color="grey", lw=0.5)
    axes[0][0].set_ylabel("episode return")
    fig.suptitle("Return distribution per agent and task")
    return _save(plt, fig, path)


def _pick_timeline(results, agent: str | None) -> dict[str, Any] | None:
    timelines = results.get("timelines", [])
    if not timelines:
        return None
    if agent is not None:
        matches = [t for t in timelines if t["agent"] == agent]
        if not matches:
            raise ValueError(
                f"no timeline for agent {agent!r}; have {sorted({t['agent'] for t in timelines})}"
            )
        timelines = matches
    # The hardest task shown, and the best non-privileged agent on it.
    order = {"easy": 0, "medium": 1, "hard": 2}
    means = {(r["agent"], r["task"]): r["mean_score"] for r in results["summary"]}
    return max(
        timelines,
        key=lambda t: (
            order.get(t["task"], -1),
            t["agent"] != "oracle",
            means.get((t["agent"], t["task"]), 0.0),
        ),
    )


def _timeline(plt, timeline: dict[str, Any], path: Path) -> Path:
    steps = range(1, len(timeline["queue_length"]) + 1)
    fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
    axes[0].plot(steps, timeline["queue_length"], color="tab:blue")
    axes[0].set_ylabel("queue length")
    axes[1].bar(steps, timeline["budget_used"], color="tab:green", label="claims granted")
    axes[1].axhline(timeline["budget"], color="black", ls="dashed", lw=1, label="K")
    axes[1].set_ylabel("budget use")
    axes[1].legend(fontsize="small", loc="upper right")
    axes[2].bar(steps, timeline["failures"], color="tab:red", label="failures")
    axes[2].bar(
        steps,
        timeline["cascades"],
        bottom=timeline["failures"],
        color="tab:orange",
        label="cascades started",
    )
    axes[2].set_ylabel("events")
    axes[2].set_xlabel("step")
    axes[2].legend(fontsize="small", loc="upper right")
    fig.suptitle(
        f"One episode: {timeline['agent']} on {timeline['task']}, seed {timeline['seed']} "
        f"(final score {timeline['score'][-1]:.3f})"
    )
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
