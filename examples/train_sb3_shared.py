"""Train one policy shared by every agent of the multi-agent env (SB3 + SuperSuit).

    OMP_NUM_THREADS=1 python examples/train_sb3_shared.py --task hard --timesteps 20000

SuperSuit turns the PettingZoo parallel env into one SB3 env row per agent
(``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1``), and MaskablePPO
trains one network for all of them with the env's action masks; the role
one-hot in the observation tells investigators from the desk. Saves the model
(``--out``), then plays ``--episodes`` episodes of the multi-agent env with it
on seeds 0.. and prints the team returns. Needs the ``[train]`` extra and
``supersuit==3.11.0``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads: one thread


def main(argv: list[str] | None = None) -> int:
    from adaptive_alert_triage.sim.config import TASKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--task", choices=list(TASKS), default="hard")
    parser.add_argument("--timesteps", type=int, default=20_000, help="agent-steps")
    parser.add_argument("--n-copies", type=int, default=2, help="env copies (x agents = rows)")
    parser.add_argument("--seed", type=int, default=10_000, help="first training seed")
    parser.add_argument("--out", default=None, help="default: policies/shared_<task>.zip")
    parser.add_argument("--episodes", type=int, default=5, help="episodes to play after")
    args = parser.parse_args(argv)
    if args.seed < 100:
        parser.error("--seed below 100 would train on the seeds alert-triage evaluate plays")
    for option, value in (("--timesteps", args.timesteps), ("--n-copies", args.n_copies)):
        if value < 1:  # else it "trains" on nothing and saves that model
            parser.error(f"{option} must be at least 1, got {value}")
    if args.episodes < 0:
        parser.error(f"--episodes must be at least 0, got {args.episodes}")

    try:
        import torch

        from adaptive_alert_triage.train.shared import play_shared_episode, train_shared
    except ImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    torch.set_num_threads(1)

    out = Path(args.out or f"policies/shared_{args.task}.zip")
    start = time.perf_counter()
    train_shared(
        args.task, timesteps=args.timesteps, out=out, n_copies=args.n_copies, seed=args.seed
    )
    print(f"trained {args.timesteps} agent-steps in {time.perf_counter() - start:.1f}s -> {out}")
    returns = [play_shared_episode(out, args.task, seed=s) for s in range(args.episodes)]
    for seed, value in enumerate(returns):
        print(f"seed {seed}: team return {value:8.2f}")
    if returns:
        print(f"mean team return over {len(returns)} episodes: {sum(returns) / len(returns):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
