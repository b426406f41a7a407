"""Training learned policies (the ``[train]`` extra: torch, stable-baselines3,
sb3-contrib).

* `train.codec`: observation vector and slot action codec, numpy only.
* `train.sb3`: `TriageVecEnv` / `make_vec_env`, an SB3 VecEnv over the native
  batched core; `ScoreCurveCallback`; `validate`.
* `train.policy`: `SlotPolicy`, a slot-structured MaskablePPO policy.
* `train.run`: per-task presets and `train(task, out, ...)`.
* `train.shared`: one parameter-shared MaskablePPO policy for every agent of
  the multi-agent env, through SuperSuit.
* `train.torchrl`: the multi-agent env in TorchRL's `PettingZooWrapper`,
  grouped by role with masks, and a small MAPPO.
* `train.rllib`: RLlib PPO with one module per role (the ``[rllib]`` extra),
  or one shared module over the native agents vector env.

The adapters check their arguments (counts, seeds, finite coefficients,
switches) with the package's shared `_checks`, before any work or any file
written.

Importing this package is cheap; the submodules that need torch import it
themselves and raise an ImportError naming the ``[train]`` extra without it.
"""

from ._deps import TRAIN_HINT, require_train, train_available

__all__ = ["TRAIN_HINT", "require_train", "train_available"]
