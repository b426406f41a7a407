"""Let a chat model triage alerts, with a rule-based safety net.

Run:  MODEL_NAME=... OPENAI_API_KEY=... python examples/llm_agent.py --task easy

Any OpenAI-compatible endpoint works: set API_BASE_URL to it (unset means the
OpenAI API) and HF_TOKEN instead of OPENAI_API_KEY for Hugging Face's router.
Needs the optional extra: pip install "adaptive-alert-triage[llm]".

Each step the model sees the visible alerts and answers with JSON decisions; a
reply that cannot be used is retried once and then replaced by RuleBasedAgent's
decision, so a flaky model costs score, never the episode. The [START] / [STEP]
/ [END] lines show where each step's decisions came from.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from adaptive_alert_triage.env import AdaptiveAlertTriageEnv


def _seed(text: str) -> int:
    """A seed for argparse: the env takes non-negative ints only."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A request timeout for argparse: positive and finite (float() takes "nan")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive, finite number, got {text!r}")
    return value


def _missing_config() -> bool:
    """Whether the variables LLMAgent reads are unset, so the hint applies."""
    key = os.environ.get("OPENAI_API_KEY") or os.environ.get("HF_TOKEN")
    return not (os.environ.get("MODEL_NAME") and key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("easy", "medium", "hard"), default="easy")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the first episode")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--timeout", type=_seconds, default=30.0, help="seconds per request")
    parser.add_argument("--quiet", action="store_true", help="only print the scores")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")

    try:
        from adaptive_alert_triage.agents.llm import LLMAgent

        agent = LLMAgent(timeout=args.timeout, echo=not args.quiet)
    except (ImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if _missing_config():
            print(
                "Set MODEL_NAME and OPENAI_API_KEY (or HF_TOKEN), and API_BASE_URL for an "
                "endpoint other than OpenAI's.",
                file=sys.stderr,
            )
        return 2

    env = AdaptiveAlertTriageEnv(args.task)
    scores = []
    for episode in range(args.episodes):
        seed = args.seed + episode
        result = agent.play_episode(env, seed=seed)
        scores.append(result["score"])
        stats = result["stats"]
        print(
            f"episode {episode} seed {seed}: score {result['score']:.3f} "
            f"return {result['return']:.1f} steps {result['steps']} "
            f"(retries {stats['retries']}, fallbacks {stats['fallbacks']})"
        )
    print(f"{args.task}: mean score {sum(scores) / len(scores):.3f} over {len(scores)} episodes")
    print(f"model calls {agent.stats['calls']}, fallbacks {agent.stats['fallbacks']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
