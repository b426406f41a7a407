"""Train a MaskablePPO triage policy for one task and say how to evaluate it.

    OMP_NUM_THREADS=1 python examples/train_sb3.py --task hard
    python examples/train_sb3.py --task medium --timesteps 600000 --out policies/ppo_medium.zip

Trains on seeds 10_000 onwards (``--seed``), well away from the seeds
``alert-triage evaluate`` plays (0..99), and keeps the model that scored best
on validation seeds 20_000 onwards. Writes the model (``--out``) and the
learning curve (``--curve``, default: the model's path with ``.csv``: env
steps, episodes, mean training score, mean validation score). Needs the
``[train]`` extra; see docs/training.md.

``--shared`` instead trains one parameter-shared policy for every agent of the
multi-agent env through SuperSuit (the same as ``examples/train_sb3_shared.py``;
``--timesteps`` then counts agent-steps, default 20,000).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: one thread


def main(argv: list[str] | None = None) -> int:
    from adaptive_alert_triage.sim.config import TASKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", choices=list(TASKS), default="hard")
    parser.add_argument("--timesteps", type=int, default=None, help="default: the task's preset")
    parser.add_argument("--n-envs", type=int, default=None, help="default: the task's preset")
    parser.add_argument("--seed", type=int, default=10_000, help="first training seed")
    parser.add_argument("--out", default=None, help="default: policies/ppo_<task>.zip")
    parser.add_argument("--curve", default=None, help="learning curve CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--shared",
        action="store_true",
        help="train a parameter-shared policy on the multi-agent env (SuperSuit)",
    )
    args = parser.parse_args(argv)
    if args.seed < 100:
        parser.error("--seed below 100 would train on the seeds alert-triage evaluate plays")
    for option, value in (("--timesteps", args.timesteps), ("--n-envs", args.n_envs)):
        if value is not None and value < 1:  # else it "trains" 0 steps and saves that model
            parser.error(f"{option} must be at least 1, got {value}")
    if args.shared:
        import train_sb3_shared

        shared_argv = ["--task", args.task, "--seed", str(args.seed)]
        if args.timesteps is not None:
            shared_argv += ["--timesteps", str(args.timesteps)]
        if args.out is not None:
            shared_argv += ["--out", args.out]
        return train_sb3_shared.main(shared_argv)

    try:
        from adaptive_alert_triage.train.run import train
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    out = Path(args.out or f"policies/ppo_{args.task}.zip")
    changes = {}
    if args.timesteps is not None:
        changes["timesteps"] = args.timesteps
    if args.n_envs is not None:
        changes["n_envs"] = args.n_envs
    result = train(
        args.task, out, args.curve, seed=args.seed, verbose=0 if args.quiet else 1, **changes
    )
    print(
        f"trained {result['timesteps']:,} steps in {result['wall_s']:.0f}s wall "
        f"({result['cpu_s']:.0f}s CPU); best validation score {result['best_val_score']:.3f}"
    )
    print(f"wrote {result['out']} ({out.stat().st_size / 1e6:.2f} MB) and {result['curve']}")
    print("evaluate it on seeds 0..99 against the baselines with:")
    agent = "adaptive_alert_triage.agents.learned:PPOAgent"
    command = (
        f"alert-triage evaluate --tasks {args.task} --agents rule,correlation "
        f"--agent-module {agent} --episodes 100 --seed 0"
    )
    if out.name == f"ppo_{args.task}.zip":
        print(f"  ALERT_TRIAGE_POLICIES={out.parent.resolve()} {command}")
        print("(or, with the built-in name: ... --agents rule,correlation,ppo)")
    else:
        print(
            f"  (PPOAgent() looks for ppo_{args.task}.zip: copy {out} to that name in a "
            f"directory D, then) ALERT_TRIAGE_POLICIES=D {command}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
