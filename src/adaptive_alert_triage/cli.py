"""The ``alert-triage`` command."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .agents.teams import GreedyTeam, OracleTeam, RandomTeam, TeamPolicy, TriageTeam
from .evaluation.registry import AGENT_NAMES, DEFAULT_AGENTS
from .multiagent import parallel_env
from .sim.config import TASKS

TEAMS = {
    "random": lambda: RandomTeam(0),
    "greedy": GreedyTeam,
    "triage": TriageTeam,
    "oracle": OracleTeam,
}


def play_episode(env, team: TeamPolicy, seed: int) -> dict[str, float]:
    """One seeded episode of a team; returns its return, failures and length."""
    obs, _ = env.reset(seed=seed)
    team.reset(seed)
    total, steps = 0.0, 0
    while env.agents:
        obs, rewards, *_ = env.step(team.act(obs, env))
        total += next(iter(rewards.values()))
        steps += 1
    sim = env.unwrapped.sim
    return {
        "return": total,
        "failures": float(sim.failures[0]),
        "steps": float(steps),
        "alerts": float(sim.alerts_total[0]),
        "noise": float(sim.noise_total[0]),
    }


def _csv(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {bad or value!r}; allowed {list(allowed)}"
        )
    return items


def cmd_teams(args: argparse.Namespace) -> int:
    """Scripted teams of the multi-agent env on every task over seeded episodes."""
    print(
        f"{'task':7} {'team':7} {'mean return':>12} {'±95%':>7} {'failures':>9} {'steps':>6} "
        f"{'false-positive share':>21}"
    )
    start = time.perf_counter()
    for task in args.tasks:
        env = parallel_env(task)
        for name in args.teams:
            team = TEAMS[name]()
            runs = [play_episode(env, team, args.seed + i) for i in range(args.episodes)]
            returns = np.array([r["return"] for r in runs])
            half = 1.96 * returns.std(ddof=1) / math.sqrt(len(returns)) if len(returns) > 1 else 0.0
            print(
                f"{task:7} {name:7} {returns.mean():12.1f} {half:7.1f} "
                f"{np.mean([r['failures'] for r in runs]):9.2f} "
                f"{np.mean([r['steps'] for r in runs]):6.1f} "
                f"{sum(r['noise'] for r in runs) / sum(r['alerts'] for r in runs):21.2f}"
            )
    print(
        f"({args.episodes} episodes per cell, seeds {args.seed}..{args.seed + args.episodes - 1}, "
        f"{time.perf_counter() - start:.1f}s)"
    )
    return 0


CALIBRATION_POLICIES = (
    "always-INVESTIGATE",
    "quick-start",
    "always-IGNORE",
    "always-ESCALATE",
    "always-DELAY",
    "random",
    "rule",
    "correlation",
    "oracle",
)


def _single_policy(name: str):
    from .agents.single import AlwaysAgent
    from .evaluation import load_agent

    if name == "quick-start":
        return AlwaysAgent("INVESTIGATE", greedy=False)
    if name.startswith("always-"):
        return AlwaysAgent(name.split("-", 1)[1])
    return load_agent(name)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Task scores of the reference single-agent policies: the graders' calibration."""
    from .tasks import GRADERS, run_episodes

    seeds = range(args.seed, args.seed + args.episodes)
    print(f"{'task':7} {'policy':19} {'mean score':>10} {'±95%':>6} {'pass rate':>9}")
    for task in args.tasks:
        threshold = GRADERS[task].threshold
        for name in CALIBRATION_POLICIES:
            scores = np.array(run_episodes(_single_policy(name), task, seeds))
            half = 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) if len(scores) > 1 else 0.0
            print(
                f"{task:7} {name:19} {scores.mean():10.3f} {half:6.3f} "
                f"{np.mean(scores >= threshold):9.2f}"
            )
    print(
        f"({args.episodes} episodes per cell, seeds {args.seed}..{args.seed + args.episodes - 1};"
        f" pass rate = share of episodes at or above the task's threshold)"
    )
    return 0


def _fail(message: str, code: int = 2) -> int:
    print(f"alert-triage: error: {message}", file=sys.stderr)
    return code


def _agent_specs(value: str) -> list[str]:
    """``--agents`` of replay: built-in names or ``MODULE:ATTR``, at least one,
    each once (as ``evaluate`` requires of its agents)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError(
            f"no agent in {value!r}; give comma-separated built-in agents "
            f"{list(AGENT_NAMES)} or MODULE:ATTR"
        )
    bad = [v for v in items if ":" not in v and v not in AGENT_NAMES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown agent {bad}; allowed {list(AGENT_NAMES)} or MODULE:ATTR"
        )
    if len(set(items)) != len(items):
        raise argparse.ArgumentTypeError(f"each agent may be named once, got {items}")
    return items


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (what a write would hit first)."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)


def _out_dir_problem(option: str, value: str) -> str | None:
    """Why ``value`` cannot be (or be made) a directory to write into, or None.

    Checked before the work, so a typo in an output path costs no run."""
    path = Path(value)
    try:
        found = _first_existing(path)
    except OSError as exc:  # e.g. a parent we may not even look into
        return f"{option} {value!r} cannot be used: {exc}"
    if found == path.absolute() and not found.is_dir():
        return f"{option} {value!r} exists and is not a directory"
    if not found.is_dir():
        return f"{option} {value!r} cannot be made: {found} is not a directory"
    if not os.access(found, os.W_OK | os.X_OK):
        return f"{option} {value!r} is not writable: no write permission in {found}"
    return None


def _out_file_problem(option: str, value: str) -> str | None:
    """Why a file cannot be written at ``value`` (its directory must exist), or None."""
    path = Path(value)
    parent = path.absolute().parent
    try:
        if path.is_dir():
            return f"{option} {value!r} is a directory, not a file"
        if not parent.is_dir():
            return f"{option} {value!r} cannot be written: directory {parent} does not exist"
        writable = os.access(parent, os.W_OK | os.X_OK) and (
            not path.exists() or os.access(path, os.W_OK)
        )
    except OSError as exc:  # e.g. a parent we may not even look into
        return f"{option} {value!r} cannot be used: {exc}"
    return None if writable else f"{option} {value!r} is not writable"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Every agent on every task over seeded episodes: the table, results.json
    and the plots."""
    import json

    from .evaluation import AgentError, evaluate, format_table

    agents = list(args.agents) + list(args.agent_module or [])
    problem = _out_dir_problem("--out", args.out)
    if problem:
        return _fail(problem)
    try:
        results = evaluate(
            agents,
            args.tasks,
            episodes=args.episodes,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except AgentError as exc:
        return _fail(str(exc), exc.exit_code)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    out = Path(args.out)
    path = out / "results.json"
    try:  # checked up front, but the disk may still fill or change meanwhile
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n")
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc}")
    config = results["config"]
    print(format_table(results["summary"]))
    print(
        f"({config['episodes']} episodes per cell, "
        f"seeds {config['seeds'][0]}..{config['seeds'][1]}; "
        f"95% bootstrap CI of the mean score; success = score at or above the task's threshold; "
        f"{results['elapsed_seconds']:.1f}s)"
    )
    print(f"wrote {path}")
    if not args.no_plots:
        try:
            from .evaluation.plots import write_plots

            for png in write_plots(results, out):
                print(f"wrote {png}")
        except ImportError as exc:
            print(f"plots skipped: {exc}", file=sys.stderr)
        except OSError as exc:
            return _fail(f"cannot write the plots to {out}: {exc}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """PNG plots of a results.json written by ``alert-triage evaluate``."""
    import json

    path = Path(args.results)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        return _fail(f"no such results file: {path}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _fail(f"cannot read {path} as JSON: {exc}")
    from .evaluation import SCHEMA_VERSION
    from .evaluation.plots import check_results, write_plots

    required = ("config", "summary", "episodes")
    if (
        not isinstance(results, dict)
        or results.get("schema_version") != SCHEMA_VERSION
        or any(k not in results for k in required)
    ):
        return _fail(
            f"{path} is not a results file of schema version {SCHEMA_VERSION} "
            f"(written by alert-triage evaluate, with keys {list(required)})"
        )
    try:
        check_results(results)
    except ValueError as exc:
        return _fail(f"{path} is not a usable results file: {exc}")
    out = args.out or path.parent
    problem = _out_dir_problem("--out", str(out))
    if problem:
        return _fail(problem)
    try:
        written = write_plots(results, out, args.timeline_agent)
    except ImportError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write the plots to {out}: {exc}")
    for png in written:
        print(f"wrote {png}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """One episode of one agent in the terminal, step by step, with the ansi render."""
    from .env import AdaptiveAlertTriageEnv
    from .evaluation import AgentError, bind_agent, load_agent, play_episode

    try:
        agent = load_agent(args.agent)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    env = AdaptiveAlertTriageEnv(task_id=args.task, render_mode="ansi")
    try:
        bind_agent(agent, env, args.agent)
    except AgentError as exc:
        return _fail(str(exc), exc.exit_code)

    class Narrated:
        """Prints the queue before each decision and the decisions after."""

        def __init__(self) -> None:
            self.reset = getattr(agent, "reset", None) or (lambda **_: None)

        def act(self, observation):
            print(env.render())
            action = agent.act(observation)
            decisions = action if isinstance(action, list) else [action]
            said = ", ".join(f"{d.action_type} {d.alert_id[:8]}" for d in decisions) or "wait"
            print(f"  -> {said}\n")
            if args.delay:
                time.sleep(args.delay)
            return action

    try:
        record = play_episode(env, Narrated(), args.seed, name=args.agent)
    except AgentError as exc:
        return _fail(str(exc), exc.exit_code)
    print(
        f"{args.agent} on {args.task}, seed {args.seed}: score {record['score']:.3f} "
        f"({'passed' if record['passed'] else 'not passed'}), return {record['return']:.1f}, "
        f"failures {record['failures']}, {record['steps']} steps"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """A stored alert stream as an episode, played and graded: the same trace
    and seed always give the same episode."""
    from .env import AdaptiveAlertTriageEnv
    from .evaluation import AgentError, bind_agent, load_agent, play_episode

    if not Path(args.db).is_file():
        return _fail(f"--db {args.db!r} does not exist")
    problem = args.json and _out_file_problem("--json", args.json)
    if problem:
        return _fail(problem)
    trace: dict[str, object] = {"db": args.db}
    if args.source:
        trace["source"] = args.source
    scenario: dict[str, object] = {"trace": trace, "trace_synthetic": args.synthetic}
    if args.step_seconds is not None:
        scenario["trace_step_seconds"] = args.step_seconds
    try:
        agents = [(name, load_agent(name)) for name in args.agents]
        env = AdaptiveAlertTriageEnv(task_id=args.task, scenario=scenario)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    trace_info = env.team.trace
    print(
        f"trace {args.db}: {trace_info.n_events} notifications over "
        f"{len(trace_info.schedule)} steps ({trace_info.step_seconds:.1f} s of alert time "
        f"per step; synthetic incidents {'on' if args.synthetic else 'off'})"
    )
    if trace_info.beyond:
        print(f"  {trace_info.beyond} notifications fell past the last step and arrive on it")
    rows = []
    for name, agent in agents:
        try:
            bind_agent(agent, env, name)
            records = [
                play_episode(env, agent, args.seed + i, name=name) for i in range(args.episodes)
            ]
        except AgentError as exc:
            return _fail(str(exc), exc.exit_code)
        feed = env.team.feed.stats
        scores = [r["score"] for r in records]
        rows.append((name, records, feed))
        print(
            f"{name:>12}: score {np.mean(scores):.3f} (episodes {len(records)}, seeds "
            f"{args.seed}..{args.seed + args.episodes - 1}), return "
            f"{np.mean([r['return'] for r in records]):.1f}, failures "
            f"{np.mean([r['failures'] for r in records]):.2f}, external alerts queued "
            f"{feed['queued']}, dropped {feed['dropped']}"
        )
    if args.json:
        import json

        payload = {
            "db": args.db,
            "task": args.task,
            "seed": args.seed,
            "agents": {
                name: {"episodes": records, "external": feed} for name, records, feed in rows
            },
        }
        try:  # checked up front, but the disk may still fill or change meanwhile
            Path(args.json).write_text(json.dumps(payload, indent=2))
        except OSError as exc:
            return _fail(f"cannot write --json {args.json!r}: {exc}")
        print(f"wrote {args.json}")
    return 0


def cmd_ingest_stats(args: argparse.Namespace) -> int:
    """A summary of an alert store."""
    import json

    from .ingest.store import AlertStore

    if not Path(args.db).is_file():
        return _fail(f"--db {args.db!r} does not exist")
    try:
        with AlertStore(args.db) as store:
            stats = store.stats()
    except ValueError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0

    def when(ts):
        return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z"

    print(f"store {stats['path']}")
    print(
        f"  {stats['events']} notifications, {stats['alerts']} alerts "
        f"({stats['firing']} firing, {stats['resolved']} resolved)"
    )
    print(f"  received {when(stats['first_received'])} .. {when(stats['last_received'])}")
    for source, counts in sorted(stats["by_source"].items()):
        print(
            f"  source {source:<13} {counts['events']:>7} notifications "
            f"{counts['alerts']:>7} alerts"
        )
    for name in ("by_format", "by_type", "top_services"):
        items = ", ".join(f"{k} {v}" for k, v in stats[name].items()) or "-"
        print(f"  {name.replace('_', ' ')}: {items}")
    return 0


def cmd_serve(argv: Sequence[str]) -> int:
    """Run the server; its own parser reads the options (see ``server.app``)."""
    try:
        from .server.app import main as serve_main
    except ImportError as exc:
        return _fail(f'the server needs its extra: pip install -e ".[server]" ({exc})')
    return serve_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alert-triage", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tasks_arg = {"type": lambda v: _csv(v, list(TASKS), "task"), "default": list(TASKS)}
    ev = sub.add_parser("evaluate", help="every agent on every task: table, results.json, plots")
    ev.add_argument("--tasks", **tasks_arg)
    ev.add_argument(
        "--agents",
        type=lambda v: _csv(v, list(AGENT_NAMES), "agent"),
        default=list(DEFAULT_AGENTS),
        help=f"comma-separated, from {', '.join(AGENT_NAMES)} (oracle is privileged)",
    )
    ev.add_argument(
        "--agent-module",
        action="append",
        metavar="MODULE:ATTR",
        help="your own agent, e.g. my_pkg.my_agent:MyAgent (repeatable)",
    )
    ev.add_argument("--episodes", type=int, default=100)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--workers", type=int, default=1, help="parallel processes")
    ev.add_argument("--out", default="results", help="directory for results.json and plots")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--no-plots", action="store_true", help="write results.json only")
    ev.set_defaults(func=cmd_evaluate)
    plot = sub.add_parser("plot", help="PNG plots of a results.json")
    plot.add_argument("results", help="a results.json written by alert-triage evaluate")
    plot.add_argument("--out", default=None, help="directory (default: beside results.json)")
    plot.add_argument("--timeline-agent", default=None, help="whose episode the timeline shows")
    plot.set_defaults(func=cmd_plot)
    demo = sub.add_parser("demo", help="one episode in the terminal, step by step")
    demo.add_argument("--task", choices=list(TASKS), default="hard")
    demo.add_argument("--agent", default="rule", help="a built-in agent or MODULE:ATTR")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--delay", type=float, default=0.0, help="seconds between steps")
    demo.set_defaults(func=cmd_demo)
    teams = sub.add_parser("teams", help="the scripted teams of the multi-agent env")
    teams.add_argument("--tasks", **tasks_arg)
    teams.add_argument("--teams", type=lambda v: _csv(v, list(TEAMS), "team"), default=list(TEAMS))
    teams.add_argument("--episodes", type=int, default=100)
    teams.add_argument("--seed", type=int, default=0)
    teams.set_defaults(func=cmd_teams)
    replay = sub.add_parser("replay", help="play and grade a stored alert stream as an episode")
    replay.add_argument("--db", required=True, help="an alert store written by the server")
    replay.add_argument("--task", choices=list(TASKS), default="hard")
    replay.add_argument(
        "--agents",
        type=_agent_specs,
        default=["rule"],
        help="comma-separated built-in agents or MODULE:ATTR (default rule)",
    )
    replay.add_argument("--seed", type=int, default=0, help="seeds the synthetic ground truth")
    replay.add_argument("--episodes", type=int, default=1)
    replay.add_argument("--source", default=None, help="only alerts from this source")
    replay.add_argument(
        "--step-seconds",
        type=float,
        default=None,
        help="alert time per step (default: the whole trace spread over the episode)",
    )
    replay.add_argument(
        "--synthetic",
        action="store_true",
        help="keep the simulator's own incidents and noise on top of the trace",
    )
    replay.add_argument("--json", default=None, help="write the episode records here")
    replay.set_defaults(func=cmd_replay)
    stats = sub.add_parser("ingest-stats", help="summarise an alert store")
    stats.add_argument("--db", required=True)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=cmd_ingest_stats)
    # `serve` is dispatched before parsing (its options belong to server.app's parser);
    # it is listed here for --help.
    sub.add_parser("serve", help="the environment server (needs the [server] extra)")
    cal = sub.add_parser("calibrate", help="score the reference single-agent policies")
    cal.add_argument("--tasks", **tasks_arg)
    cal.add_argument("--episodes", type=int, default=50)
    cal.add_argument("--seed", type=int, default=1000)
    cal.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return cmd_serve(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1:
        return _fail(f"--episodes must be >= 1, got {args.episodes}")
    if getattr(args, "workers", 1) < 1:
        return _fail(f"--workers must be >= 1, got {args.workers}")
    if getattr(args, "seed", 0) < 0:  # checked here, not deep in the simulator mid-run
        return _fail(f"--seed must be >= 0, got {args.seed}")
    delay = getattr(args, "delay", 0.0)
    if not math.isfinite(delay) or delay < 0:  # `nan < 0` is False: test finiteness
        return _fail(f"--delay must be a finite number of seconds >= 0, got {args.delay}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
