"""A slot-structured actor-critic for MaskablePPO.

Why not an MLP over the flat vector: every visible slot needs the same
judgement (real or noise? critical? the top-K claim this step?), and an MLP
must learn it separately for each of the 8-12 slot positions, from slot
contents that shift position every step. `SlotNet` scores every slot with
shared weights, from the slot's own features, the globals, the slots on the
same service (one service holds at most one incident, so its alerts are
evidence about one thing), the whole queue, and a soft rank of the slot's
priority among all slots and among its service's slots (what "claim the K
best, one per service" needs). The actor emits one row of choice logits per
slot, matching the ``action_mode="slot"`` face; the critic pools the slots.

The observation layout is the gym face's (see `adaptive_alert_triage.gym_env`);
`SlotPolicy` takes it as ``layout`` (`codec.layout`), saved with the model.
"""

from __future__ import annotations

from typing import Any

from ._deps import require_train

require_train()

import torch  # noqa: E402
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy  # noqa: E402
from torch import nn  # noqa: E402

_N_TYPES = 6
_SERVICE = 3 + _N_TYPES + 1  # the service / (n_services - 1) column of a slot


class SlotEncoder(nn.Module):
    """Per-slot embeddings (B, N, H) and a pooled summary (B, 3H + G + 1)."""

    def __init__(self, layout: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.n = layout["n_slots"]
        self.s = layout["n_services"]
        self.f = layout["slot_features"]
        self.g = layout["global_features"]
        ctx = self.g + 1
        self.embed = nn.Sequential(nn.Linear(self.f + 1 + ctx, hidden), nn.ReLU())
        self.priority = nn.Linear(hidden, 1)
        self.mix = nn.Sequential(
            nn.Linear(4 * hidden + 2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.pooled_dim = 3 * hidden + ctx

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, f = obs.shape[0], self.n, self.f
        slots = obs[:, : n * f].reshape(b, n, f)
        glob = obs[:, n * f : n * f + self.g]
        down = obs[:, n * f + self.g :]
        present = slots[:, :, 0]
        service = torch.round(slots[:, :, _SERVICE] * max(self.s - 1, 1)).long()
        service = service.clamp(0, self.s - 1)
        service_down = torch.gather(down, 1, service) * present
        ctx = torch.cat([glob, down.mean(dim=1, keepdim=True)], dim=1)
        x = torch.cat([slots, service_down[:, :, None], ctx[:, None, :].expand(b, n, -1)], dim=2)
        h = self.embed(x) * present[:, :, None]
        pair = present[:, :, None] * present[:, None, :]
        same = (service[:, :, None] == service[:, None, :]).float() * pair
        by_service = same @ h / same.sum(dim=2, keepdim=True).clamp(min=1.0)
        count = present.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = h.sum(dim=1) / count
        top = (h - (1.0 - present[:, :, None]) * 1e4).max(dim=1).values.clamp(min=0.0)
        q = self.priority(h).squeeze(2)
        above = torch.sigmoid(4.0 * (q[:, None, :] - q[:, :, None]))  # [i, j]: j ranks above i
        rank_all = ((above * pair).sum(dim=2) - 0.5 * present) / self.n
        rank_same = (above * same).sum(dim=2) - 0.5 * present
        z = torch.cat(
            [
                h,
                by_service,
                mean[:, None, :].expand(b, n, -1),
                top[:, None, :].expand(b, n, -1),
                rank_all[:, :, None],
                rank_same[:, :, None],
            ],
            dim=2,
        )
        z = self.mix(z) * present[:, :, None]
        pooled = torch.cat(
            [z.sum(dim=1) / count, z.max(dim=1).values, z.sum(dim=1) / self.n, ctx], dim=1
        )
        return z, pooled, present


class SlotNet(nn.Module):
    """SB3's ``mlp_extractor`` slot: the actor's latent is already the logits
    (B, N * n_choices); the critic's is a pooled vector for ``value_net``."""

    def __init__(self, layout: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.n_choices = layout["n_choices"]
        self.actor = SlotEncoder(layout, hidden)
        self.critic = SlotEncoder(layout, hidden)
        self.logits = nn.Linear(hidden, self.n_choices)
        self.value = nn.Sequential(nn.Linear(self.critic.pooled_dim, hidden), nn.ReLU())
        self.latent_dim_pi = layout["n_slots"] * self.n_choices
        self.latent_dim_vf = hidden

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        z, _, _ = self.actor(features)
        return self.logits(z).reshape(features.shape[0], -1)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        _, pooled, _ = self.critic(features)
        return self.value(pooled)


class SlotPolicy(MaskableActorCriticPolicy):
    """MaskableActorCriticPolicy with `SlotNet` in place of the MLP extractor.

    ``layout`` (`codec.layout`) says how to parse observations; ``hidden`` is
    the slot embedding width. Both are saved with the model."""

    def __init__(
        self,
        observation_space,
        action_space,
        lr_schedule,
        layout: dict[str, int] | None = None,
        hidden: int = 64,
        **kwargs: Any,
    ) -> None:
        if layout is None:
            raise ValueError("SlotPolicy needs the observation layout (codec.layout(config))")
        self.layout = dict(layout)
        self.hidden = int(hidden)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = SlotNet(self.layout, self.hidden)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # The extractor already emits the logits: no extra linear layer, and the
        # logits start near uniform (SB3's 0.01 gain for action heads).
        self.action_net = nn.Identity()
        nn.init.orthogonal_(self.mlp_extractor.logits.weight, gain=0.01)
        nn.init.zeros_(self.mlp_extractor.logits.bias)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(layout=self.layout, hidden=self.hidden)
        return data


__all__ = ["SlotEncoder", "SlotNet", "SlotPolicy"]
