"""Learning curves of the trained policies: validation score vs environment steps.

    python examples/plot_learning_curves.py [--policies policies] [--results results/results.json]
        [--out docs/learning_curve.png]

Reads the ``ppo_<task>.csv`` curves that ``examples/train_sb3.py`` writes (the
deterministic policy's mean task score on the validation seeds 20000-20199,
every 50k steps). With ``--results`` (an ``alert-triage evaluate`` results.json)
it also draws each task's best non-privileged baseline on seeds 0-99 as a
dashed line. Needs matplotlib (the ``[eval]`` extra).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

TASKS = ("easy", "medium", "hard")
BASELINES = ("random", "rule", "correlation")


def best_baselines(results_path: Path) -> dict[str, tuple[str, float]]:
    """Per task, the best non-privileged baseline's (name, mean score)."""
    summary = json.loads(results_path.read_text())["summary"]
    best: dict[str, tuple[str, float]] = {}
    for row in summary:
        if row["agent"] in BASELINES and row["mean_score"] > best.get(row["task"], ("", -1.0))[1]:
            best[row["task"]] = (row["agent"], row["mean_score"])
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policies", default="policies")
    parser.add_argument("--results", default=None)
    parser.add_argument("--out", default="docs/learning_curve.png")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = best_baselines(Path(args.results)) if args.results else {}
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for i, task in enumerate(TASKS):
        path = Path(args.policies) / f"ppo_{task}.csv"
        if not path.is_file():
            continue
        with path.open() as f:
            rows = list(csv.DictReader(f))
        steps = [int(r["timesteps"]) for r in rows]
        scores = [float(r["val_score"]) for r in rows]
        color = f"C{i}"
        ax.plot(steps, scores, color=color, label=f"PPO {task} (validation seeds)")
        if task in baselines:
            name, mean = baselines[task]
            ax.axhline(
                mean,
                color=color,
                linestyle="--",
                linewidth=1,
                label=f"best baseline on {task} ({name}, seeds 0-99)",
            )
        drawn += 1
    if not drawn:
        raise SystemExit(f"no ppo_<task>.csv under {args.policies}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean task score")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
