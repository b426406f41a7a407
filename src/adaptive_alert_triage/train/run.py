"""Training a MaskablePPO policy for one task: presets and the one entry point
`examples/train_sb3.py` and the tests call."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .._checks import (
    check_bool,
    check_choice,
    check_int,
    check_mapping,
    check_number,
    check_path,
    check_ppo_batches,
    check_seed,
)
from . import codec
from .codec import POLICY_FORMAT
from .sb3 import TRAIN_SEED, ScoreCurveCallback, make_vec_env, set_single_thread


@dataclass(frozen=True)
class Preset:
    """Everything that shapes a training run besides the task and the seed."""

    timesteps: int = 1_000_000
    n_envs: int = 32
    n_steps: int = 128
    batch_size: int = 1024
    n_epochs: int = 4
    learning_rate: float = 3e-4
    final_learning_rate: float = 0.0
    gamma: float = 0.97
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    action_mode: str = "slot"
    allow_escalate: bool = False
    env_coef: float = 0.0
    score_coef: float = 10.0
    failure_penalty: float = 0.0
    eval_every: int = 50_000
    eval_episodes: int = 200
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Every field checked on construction (so `replace` checks changes too):
        SB3 takes zero steps, a gamma of 5 or a NaN coefficient without a word,
        and a run of no steps or no units would save an untrained model."""
        counts = ("timesteps", "n_envs", "n_steps", "n_epochs", "hidden", "eval_every")
        values: dict[str, Any] = {name: check_int(name, getattr(self, name)) for name in counts}
        values["batch_size"] = check_int("batch_size", self.batch_size, minimum=2)
        values["eval_episodes"] = check_int("eval_episodes", self.eval_episodes, minimum=0)
        for name in ("learning_rate", "clip_range", "max_grad_norm"):
            values[name] = check_number(name, getattr(self, name), positive=True)
        for name in ("final_learning_rate", "ent_coef", "vf_coef", "failure_penalty"):
            values[name] = check_number(name, getattr(self, name), minimum=0)
        for name in ("gamma", "gae_lambda"):
            values[name] = check_number(name, getattr(self, name), minimum=0, maximum=1)
        for name in ("env_coef", "score_coef"):
            values[name] = check_number(name, getattr(self, name))
        values["action_mode"] = check_choice("action_mode", self.action_mode, codec.ACTION_MODES)
        values["allow_escalate"] = check_bool("allow_escalate", self.allow_escalate)
        values["overrides"] = check_mapping("overrides", self.overrides, allow_none=False)
        check_ppo_batches(
            values["n_steps"] * values["n_envs"],
            values["batch_size"],
            f"n_steps={values['n_steps']} x n_envs={values['n_envs']}",
        )
        for name, value in values.items():  # plain Python values, saved with the model
            object.__setattr__(self, name, value)


#: Validation plateaus by 600k steps on easy and hard; medium still gains to 1.5M.
#: Easy's failure penalty: see `sb3` (its grader makes failures nearly free).
PRESETS: dict[str, Preset] = {
    "easy": Preset(timesteps=600_000, failure_penalty=4.0),
    "medium": Preset(timesteps=1_500_000),
    "hard": Preset(timesteps=600_000),
}


def env_kwargs(preset: Preset) -> dict[str, Any]:
    """The `TriageVecEnv` options a preset fixes (the same for validation)."""
    return {
        "action_mode": preset.action_mode,
        "allow_escalate": preset.allow_escalate,
        "env_coef": preset.env_coef,
        "score_coef": preset.score_coef,
        "failure_penalty": preset.failure_penalty,
        **preset.overrides,
    }


def _schedule(start: float, end: float):
    return lambda progress: end + (start - end) * progress  # progress runs 1 -> 0


def train(
    task: str,
    out: str | Path,
    curve: str | Path | None = None,
    seed: int = TRAIN_SEED,
    verbose: int = 1,
    **changes: Any,
) -> dict[str, Any]:
    """Train on ``task`` with its preset (``changes`` override preset fields),
    save the best validated model to ``out`` and the learning curve to
    ``curve``; returns a summary (times, best validation score).

    Every argument is checked (`Preset` checks the fields, the env the task
    overrides) before anything is trained or written."""
    if not isinstance(task, str) or task not in PRESETS:
        error = ValueError if isinstance(task, str) else TypeError
        raise error(f"task {task!r} is not one of {tuple(PRESETS)}")
    unknown = sorted(set(changes) - {f.name for f in fields(Preset)})
    if unknown:
        allowed = ", ".join(f.name for f in fields(Preset))
        raise TypeError(f"unknown preset field(s) {unknown}; allowed: {allowed}")
    preset = replace(PRESETS[task], **changes)
    seed = check_seed(seed)
    check_int("verbose", verbose, minimum=0)
    out = check_path("out", out)
    curve = check_path("curve", curve, allow_none=True) or out.with_suffix(".csv")
    from sb3_contrib import MaskablePPO

    from .policy import SlotPolicy

    set_single_thread()
    kwargs = env_kwargs(preset)
    env = make_vec_env(task, preset.n_envs, seed, **kwargs)  # checks the overrides too
    out.parent.mkdir(parents=True, exist_ok=True)
    if preset.action_mode == "slot":
        policy: Any = SlotPolicy
        policy_kwargs: dict[str, Any] = {
            "layout": codec.layout(env.config),
            "hidden": preset.hidden,
        }
    else:
        policy = "MlpPolicy"
        policy_kwargs = {"net_arch": [4 * preset.hidden, 4 * preset.hidden]}
    model = MaskablePPO(
        policy,
        env,
        learning_rate=_schedule(preset.learning_rate, preset.final_learning_rate),
        n_steps=preset.n_steps,
        batch_size=preset.batch_size,
        n_epochs=preset.n_epochs,
        gamma=preset.gamma,
        gae_lambda=preset.gae_lambda,
        ent_coef=preset.ent_coef,
        clip_range=preset.clip_range,
        vf_coef=preset.vf_coef,
        max_grad_norm=preset.max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.triage = {
        "format": POLICY_FORMAT,
        "task": task,
        "action_mode": preset.action_mode,
        "allow_escalate": preset.allow_escalate,
        "overrides": dict(preset.overrides),
        "train_seed": seed,
        "preset": asdict(preset),
    }
    callback = ScoreCurveCallback(
        curve,
        task,
        kwargs,
        eval_every=preset.eval_every,
        eval_episodes=preset.eval_episodes,
        best_path=out,
        verbose=verbose,
    )
    start = time.perf_counter()
    cpu_start = time.process_time()
    model.learn(total_timesteps=preset.timesteps, callback=callback)
    if not preset.eval_episodes:  # nothing validated: keep the last model
        model.save(out, include=["triage"])
    return {
        "task": task,
        "out": str(out),
        "curve": str(curve),
        "timesteps": model.num_timesteps,
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu_start,
        "best_val_score": callback.best_score,
        "preset": asdict(preset),
    }


__all__ = ["POLICY_FORMAT", "PRESETS", "Preset", "env_kwargs", "train"]
