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


def write_plots(
    results: dict[str, Any], out_dir: str | Path, timeline_agent: str | None = None
) -> list[Path]:
    """Scores by agent and task with CI bars, the return distributions, and one
    episode's timeline. Returns the paths written."""
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
