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

Loading is all or nothing: a policy is kept only once it has passed every
check (a readable MaskablePPO file, this package's policy format, and
observation and action spaces that fit the task), and every `bind` checks the
policy against the new env's task, so a rejected policy is never used later.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..models import Action
from ..sim.config import ACTION_TYPES, TASKS, TaskConfig, get_task
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


_DEVICES = "'cpu', 'cuda', 'cuda:<index>', 'auto' or a torch.device of type cpu or cuda"
# What MaskablePPO.load raises for a file that is not one of its policies: an
# AssertionError for a zip without data, KeyError for missing entries, the
# unpickling and torch errors for corrupt weights.
_LOAD_ERRORS = (
    AssertionError,
    EOFError,
    KeyError,
    RuntimeError,
    ValueError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


def _check_device(device: Any) -> Any:
    """``device`` if SB3 can load onto it (it supports cpu and cuda, and "auto"
    for cuda when available), checked now because torch only sees it at load,
    where a typo is a RuntimeError from deep inside torch."""
    torch = sys.modules.get("torch")  # a torch.device means torch is imported
    if torch is not None and isinstance(device, torch.device):
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be {_DEVICES}, got {device!r}")
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be {_DEVICES}, got {device!r}")
    if device not in ("cpu", "cuda", "auto") and not re.fullmatch(r"cuda:[0-9]+", device):
        raise ValueError(f"device must be {_DEVICES}, got {device!r}")
    return device


class PPOAgent(Agent):
    """A saved MaskablePPO policy, acting deterministically under masks.

    ``path_or_task``: None (the bound env's task, looked up in `policy_dir`), a
    task name, or the path of a ``.zip`` saved by ``examples/train_sb3.py``.
    `bind(env)` reads the env's task config, loads the policy (the env's task's
    when none was given) and checks that it fits; without `bind`, the task the
    policy was trained on supplies the config. ``device`` is where the policy
    runs: "cpu", "cuda", "cuda:<index>", "auto" or a cpu/cuda torch.device.
    """

    def __init__(self, path_or_task: str | os.PathLike | None = None, device: Any = "cpu") -> None:
        if path_or_task is not None and not isinstance(path_or_task, (str, os.PathLike)):
            raise TypeError(
                f"path_or_task must be a task name ({', '.join(TASKS)}), the path of a "
                f"policy .zip (str or os.PathLike) or None, got {path_or_task!r}"
            )
        self.device = _check_device(device)
        require_train()
        self.source = path_or_task
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
        """Load the policy (read once per file) and check it against the bound
        config, or without one the config of the task it was trained on.
        Raises ValueError, keeping the agent as it was, if any check fails."""
        self._load(task_id, self.config)

    def _load(self, task_id: str | None, config: TaskConfig | None) -> None:
        """Resolve, read and check into locals, then commit them all at once: a
        policy that fails a check must not be the ``self.model`` a later call
        finds (and skips the checks for)."""
        path = self._resolve(task_id)
        if self.model is not None and path == self.path:
            model, meta = self.model, self.meta
        else:
            model, meta = self._read(path)
        if config is None:
            config = get_task(meta.get("task", task_id or "hard"))
        _check_fits(model, meta, config, path)
        self.model, self.meta, self.path, self.config = model, meta, path, config

    def _read(self, path: Path) -> tuple[Any, dict[str, Any]]:
        """The MaskablePPO model in ``path`` and its triage metadata, checked to
        be in the format this package reads."""
        import torch
        from sb3_contrib import MaskablePPO

        torch.set_num_threads(1)  # one observation per call: threads only add overhead
        try:
            model = MaskablePPO.load(path, device=self.device)
        except _LOAD_ERRORS as exc:
            raise ValueError(
                f"policy file {str(path)!r} is not a MaskablePPO policy saved by "
                f"examples/train_sb3.py ({type(exc).__name__}: {exc})"
            ) from exc
        meta = getattr(model, "triage", None)
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise ValueError(
                f"policy {path} has triage metadata of type {type(meta).__name__}, "
                "not a dict; retrain it with examples/train_sb3.py"
            )
        if meta.get("format", codec.POLICY_FORMAT) != codec.POLICY_FORMAT:
            raise ValueError(
                f"policy {path} has format {meta['format']!r}, this package reads "
                f"format {codec.POLICY_FORMAT}; retrain it with examples/train_sb3.py"
            )
        if meta.get("action_mode", "slot") not in codec.ACTION_MODES:
            raise ValueError(
                f"policy {path} has action_mode {meta['action_mode']!r}; this package "
                f"reads {' or '.join(map(repr, codec.ACTION_MODES))}"
            )
        return model, dict(meta)

    # ------------------------------------------------------------------ Agent API
    def bind(self, env: Any) -> None:
        """Adopt the env's task config and load the matching policy, checked
        against it on every call (a path-given policy may not fit a new task);
        if it does not fit, the agent keeps its previous binding."""
        self._load(getattr(env, "task_id", None), env.config)

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
        decisions = codec.member_row_to_decisions(row, config)
        codec.check_assignable(decisions, config)
        alerts = observation.alerts
        return [Action(alert_id=alerts[slot].id, action_type=verb) for slot, verb in decisions]


def _check_fits(model: Any, meta: dict[str, Any], config: TaskConfig, path: Path) -> None:
    """ValueError unless the policy's observation and action spaces are the
    ones ``config`` gives and takes in the policy's action mode."""
    trained_on = meta.get("task", "?")
    expected = codec.base_dim(config)
    shape = getattr(model.observation_space, "shape", None)
    if shape != (expected,):
        raise ValueError(
            f"policy {path} expects observations of shape {shape}, but task "
            f"{config.task_id!r} gives ({expected},); it was trained on task {trained_on!r}"
        )
    mode = meta.get("action_mode", "slot")
    if mode == "slot":
        wanted = [codec.N_CHOICES] * config.n_slots
    else:
        wanted = [1 + config.n_slots * len(ACTION_TYPES)] * config.n_agents
    nvec = getattr(model.action_space, "nvec", None)
    if nvec is None or np.asarray(nvec).reshape(-1).tolist() != wanted:
        raise ValueError(
            f"policy {path} chooses actions from {model.action_space}, but task "
            f"{config.task_id!r} in {mode!r} mode takes MultiDiscrete({wanted}); it was "
            f"trained on task {trained_on!r}"
        )


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
