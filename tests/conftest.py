"""Shared helpers for the tests."""

from __future__ import annotations

import numpy as np
import pytest

TASK_IDS = ("easy", "medium", "hard")


def random_masked_actions(observations, rng: np.random.Generator) -> dict[str, int]:
    """One uniformly random legal action per agent, from the agent's own mask."""
    return {
        agent: int(rng.choice(np.flatnonzero(obs["action_mask"])))
        for agent, obs in observations.items()
    }


def rollout(env, seed: int, steps: int, action_seed: int = 0, hook=None) -> list:
    """Play random masked actions for up to ``steps`` steps (resetting with the
    env's own stream at episode ends) and return everything the env returned."""
    rng = np.random.default_rng(action_seed)
    obs, infos = env.reset(seed=seed)
    trace = [(obs, infos)]
    for _ in range(steps):
        if not env.agents:
            obs, infos = env.reset()
            trace.append((obs, infos))
        actions = random_masked_actions(obs, rng)
        out = env.step(actions)
        obs = out[0]
        trace.append((actions, *out))
        if hook is not None:
            hook(env)
    return trace


@pytest.fixture(params=TASK_IDS)
def task_id(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def client(server):
    """An HTTP client of the module's own live ``server`` fixture."""
    import httpx  # the [server] extra's; imported here so core-only runs need none

    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c
