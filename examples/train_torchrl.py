"""Train MAPPO on the multi-agent env with TorchRL for a few iterations.

    OMP_NUM_THREADS=1 python examples/train_torchrl.py --task hard --iterations 5

Wraps the PettingZoo parallel env with TorchRL's ``PettingZooWrapper``, one
group per role (``investigators``, ``desk``) with the action masks on, checks
it with ``check_env_specs``, then runs MAPPO: per group a parameter-shared
actor sampling a ``MaskedCategorical`` and a centralised critic over the
group's observations, ``ClipPPOLoss`` with GAE, one synchronous collector.
Prints each iteration's mean per-step team reward and mean episode return.
Needs torch, ``torchrl==0.14.1`` and ``tensordict==0.14.3``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: one thread


def main(argv: list[str] | None = None) -> int:
    from adaptive_alert_triage.sim.config import TASKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", choices=list(TASKS), default="hard")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--frames-per-batch", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=10_000, help="first training seed")
    args = parser.parse_args(argv)
    if args.seed < 100:
        parser.error("--seed below 100 would train on the seeds alert-triage evaluate plays")
    counts = (
        ("--iterations", args.iterations),
        ("--frames-per-batch", args.frames_per_batch),
        ("--epochs", args.epochs),
        ("--minibatch-size", args.minibatch_size),
    )
    for option, value in counts:  # else a traceback, or a run that trains nothing
        if value < 1:
            parser.error(f"{option} must be at least 1, got {value}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a finite number above 0, got {args.lr}")

    try:
        import torch

        from adaptive_alert_triage.train.torchrl import (
            MAPPOConfig,
            check_specs,
            make_env,
            train_mappo,
        )
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    torch.set_num_threads(1)

    check_specs(make_env(args.task, seed=args.seed))
    print(f"check_env_specs passed for {args.task}")
    config = MAPPOConfig(
        frames_per_batch=args.frames_per_batch,
        epochs=args.epochs,
        minibatch_size=args.minibatch_size,
        lr=args.lr,
    )

    def report(s) -> None:
        print(
            f"iter {s.iteration:3d}  frames {s.frames:5d}  mean reward {s.mean_reward:8.3f}  "
            f"episodes {s.episodes:3d}  mean return {s.mean_return:9.2f}  "
            f"loss pi {s.loss_objective:+.4f} v {s.loss_critic:.4f} ent {s.loss_entropy:+.4f}  "
            f"{s.seconds:6.1f}s",
            flush=True,
        )

    train_mappo(
        args.task, iterations=args.iterations, config=config, seed=args.seed, callback=report
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
