"""Train alert-triage PPO with RLlib, locally or on a Ray cluster.

    OMP_NUM_THREADS=1 python examples/train_rllib.py --task medium --iterations 20
    python examples/train_rllib.py --mode vector --task hard --envs-per-runner 16
    python examples/train_rllib.py --address auto --num-env-runners 8   # on a cluster head

``--mode multiagent`` (default): the PettingZoo parallel env through RLlib's
``ParallelPettingZooEnv``, one masked PPO module per role (all investigators
share ``investigator``; ``escalation_desk`` has its own). ``--mode vector``:
the flattened-agents native VectorEnv (``AlertTriageAgentVectorEnv``, B envs x
A agents as rows) plugged in through RLlib's ``vector_entry_point`` mode, one
shared masked module. Prints one line per iteration (mean episode return, env
steps) and saves an RLlib checkpoint to ``--out``. Needs the ``[rllib]`` extra;
see docs/rllib.md.
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
    parser.add_argument("--mode", choices=["multiagent", "vector"], default="multiagent")
    parser.add_argument("--task", choices=list(TASKS), default="medium")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument(
        "--num-env-runners",
        type=int,
        default=0,
        help="remote sampling actors (0: sample in the driver process)",
    )
    parser.add_argument(
        "--envs-per-runner",
        type=int,
        default=8,
        help="vector mode: envs per runner, each one row per agent",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join: 'auto' (a `ray start` cluster this machine belongs to) "
        "or 'ray://HOST:10001' (Ray Client); default: start a local Ray",
    )
    parser.add_argument("--seed", type=int, default=10_000, help="RLlib seed (training envs)")
    parser.add_argument("--train-batch-size", type=int, default=4000)
    parser.add_argument("--minibatch-size", type=int, default=500)
    parser.add_argument("--num-epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--num-cpus", type=int, default=None, help="local Ray only")
    parser.add_argument("--out", default=None, help="checkpoint dir (default: none saved)")
    args = parser.parse_args(argv)
    if args.seed < 100:
        parser.error("--seed below 100 would train on the seeds alert-triage evaluate plays")
    minimums = (
        ("--iterations", args.iterations, 1),
        ("--num-env-runners", args.num_env_runners, 0),
        ("--envs-per-runner", args.envs_per_runner, 1),
        ("--train-batch-size", args.train_batch_size, 1),
        ("--minibatch-size", args.minibatch_size, 1),
        ("--num-epochs", args.num_epochs, 1),
        ("--num-cpus", 1 if args.num_cpus is None else args.num_cpus, 1),
    )
    for option, value, minimum in minimums:  # before Ray starts, not in a traceback after
        if value < minimum:
            parser.error(f"{option} must be at least {minimum}, got {value}")
    if args.minibatch_size > args.train_batch_size:
        parser.error(
            f"--minibatch-size {args.minibatch_size} exceeds --train-batch-size "
            f"{args.train_batch_size}"
        )
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a finite number above 0, got {args.lr}")

    try:
        import ray

        from adaptive_alert_triage.train.rllib import build_config, train
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    started = not ray.is_initialized()  # a caller's Ray (e.g. a test's) is reused
    if started and args.address is None:
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False)
    elif started:
        # The workers import adaptive_alert_triage: install it on every node.
        ray.init(address=args.address)
    try:
        config = build_config(
            args.mode,
            args.task,
            num_env_runners=args.num_env_runners,
            envs_per_runner=args.envs_per_runner,
            seed=args.seed,
            train_batch_size=args.train_batch_size,
            minibatch_size=args.minibatch_size,
            num_epochs=args.num_epochs,
            lr=args.lr,
        )
        print(
            f"RLlib PPO, mode={args.mode}, task={args.task}, "
            f"env runners={args.num_env_runners}, cluster CPUs={ray.cluster_resources().get('CPU')}"
        )
        train(config, args.iterations, out=args.out)
    finally:
        if started:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
