"""`PPOAgent`: a trained MaskablePPO policy as a single-agent `Agent`.

It rebuilds the gym face's observation vector from the `Observation` it is
given (`train.codec.observation_vector`), asks the policy for its masked,
deterministic action, and turns that into `Action` decisions with the same
codec the training adapter used, so the policy makes here exactly the
decisions it made in training.

``PPOAgent()`` (the built-in ``ppo`` of ``alert-triage evaluate``) loads
``ppo_<task>.zip`` for the task of the env it is bound to, from the directory
in ``ALERT_TRIAGE_POLICIES`` or else the repository's ``policies/``.
``PPOAgent("hard")`` names the task, ``PPOAgent("path/to/model.zip")`` a file.
torch and SB3 are imported only when a policy loads; without the ``[train]``
extra, making a `PPOAgent` raises an ImportError naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..models import Action
from ..sim.config import TASKS, TaskConfig, get_task
from ..train import codec
from ..train._deps import require_train
from .single import Agent

POLICY_DIR_ENV = "ALERT_TRIAGE_POLICIES"
_REPO_POLICIES = Path(__file__).resolve().parents[3] / "policies"


def policy_dir() -> Path:
    """Where ``ppo_<task>.zip`` files are looked up."""
    return Path(os.environ.get(POLICY_DIR_ENV) or _REPO_POLICIES)


def policy_path(task_id: str) -> Path:
    return policy_dir() / f"ppo_{task_id}.zip"


class PPOAgent(Agent):
    """A saved MaskablePPO policy, acting deterministically under masks.

    ``path_or_task``: None (the bound env's task, looked up in `policy_dir`), a
    task name, or the path of a ``.zip`` saved by ``examples/train_sb3.py``.
    `bind(env)` reads the env's task config (and loads the policy when it was
    not given by path); without `bind`, the task the policy was trained on
    supplies the config.
    """

    def __init__(self, path_or_task: str | Path | None = None, device: str = "cpu") -> None:
        require_train()
        self.source = path_or_task
        self.device = device
        self.model: Any = None
        self.meta: dict[str, Any] = {}
        self.config: TaskConfig | None = None
        self.path: Path | None = None

    # ------------------------------------------------------------------ loading
    def _resolve(self, task_id: str | None) -> Path:
        source = self.source
        if source is None or (isinstance(source, str) and source in TASKS):
            task = source or task_id
            if task is None:
                raise ValueError(
                    "PPOAgent() needs bind(env) (or a task or path) to find its policy"
                )
            path = policy_path(task)
            if not path.is_file():
                raise ValueError(
                    f"no trained policy for task {task!r}: {path} does not exist; train one "
                    f"with: python examples/train_sb3.py --task {task} --out {path}"
                )
            return path
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"policy file {str(path)!r} does not exist")
        return path

    def load(self, task_id: str | None = None) -> None:
        """Load the policy (once per file)."""
        path = self._resolve(task_id)
        if self.model is not None and path == self.path:
            return
        import torch
        from sb3_contrib import MaskablePPO

        torch.set_num_threads(1)  # one observation per call: threads only add overhead
        self.model = MaskablePPO.load(path, device=self.device)
        self.meta = dict(getattr(self.model, "triage", None) or {})
        self.path = path
        if self.meta.get("format", codec.POLICY_FORMAT) != codec.POLICY_FORMAT:
            raise ValueError(
                f"policy {path} has format {self.meta['format']}, this package reads "
                f"format {codec.POLICY_FORMAT}; retrain it with examples/train_sb3.py"
            )
        if self.config is None:
            self.config = get_task(self.meta.get("task", task_id or "hard"))
        self._check()

    def _check(self) -> None:
        expected = codec.base_dim(self.config)
        shape = self.model.observation_space.shape
        if shape != (expected,):
            raise ValueError(
                f"policy {self.path} expects observations of shape {shape}, but task "
                f"{self.config.task_id!r} gives ({expected},); it was trained on task "
                f"{self.meta.get('task', '?')!r}"
            )

    # ------------------------------------------------------------------ Agent API
    def bind(self, env: Any) -> None:
        """Adopt the env's task config, and load the matching policy."""
        self.config = env.config
        self.load(getattr(env, "task_id", None))

    def act(self, observation: Any) -> list[Action]:
        if self.model is None:
            self.load()
        config = self.config
        vector = codec.observation_vector(observation, config)
        n_visible = min(len(observation.alerts), config.n_slots)
        present = np.zeros((1, config.n_slots), dtype=bool)
        present[0, :n_visible] = True
        mode = self.meta.get("action_mode", "slot")
        if mode == "slot":
            masks = codec.slot_masks(present, self.meta.get("allow_escalate", False))
        else:
            masks = _member_masks(present[0], config)
        action, _ = self.model.predict(vector[None], deterministic=True, action_masks=masks)
        action = np.asarray(action).reshape(1, -1)
        row = (
            codec.slot_choices_to_members(action, present, config)[0]
            if mode == "slot"
            else action[0]
        )
        decisions = codec.member_row_to_decisions(row)
        codec.check_assignable(decisions, config)
        alerts = observation.alerts
        return [Action(alert_id=alerts[slot].id, action_type=verb) for slot, verb in decisions]


def _member_masks(present: np.ndarray, config: TaskConfig) -> np.ndarray:
    """The native per-member masks (investigators, then the desk), flattened."""
    from ..sim.engine import ROLE_VERBS

    roles = [0] * config.n_investigators + [1]
    masks = np.zeros((len(roles), 1 + config.n_slots * 4), dtype=bool)
    masks[:, 0] = True
    for member, role in enumerate(roles):
        verbs = ROLE_VERBS[role]
        masks[member, 1:] = (present[:, None] & verbs[None, :]).reshape(-1)
    return masks.reshape(1, -1)


__all__ = ["POLICY_DIR_ENV", "PPOAgent", "policy_dir", "policy_path"]
