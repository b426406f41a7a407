"""PettingZoo's own test suite, for every task."""

from __future__ import annotations

import functools
import types

import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

from adaptive_alert_triage import multiagent
from adaptive_alert_triage.sim.engine import ESCALATE

from .conftest import rollout

pytestmark = pytest.mark.filterwarnings(
    # By design: Dict observations with an action mask, the agent names,
    # and the suite's own dummy reset option.
    "ignore:Observation space for each agent probably should be:UserWarning",
    "ignore:Observation is not a NumPy array:UserWarning",
    "ignore:We recommend agents to be named:UserWarning",
    "ignore:reset options:UserWarning",
)


def test_parallel_api(task_id):
    parallel_api_test(multiagent.parallel_env(task_id), num_cycles=300)


def test_parallel_seed(task_id):
    # The suite samples actions without their masks, so masked ones become NOOPs.
    parallel_seed_test(functools.partial(multiagent.parallel_env, task_id, masked_action="noop"))


def test_aec_seed(task_id):
    seed_test(functools.partial(multiagent.env, task_id=task_id))


def test_aec_api(task_id):
    api_test(multiagent.env(task_id=task_id), num_cycles=300)


def test_max_cycles(task_id):
    module = types.SimpleNamespace(
        parallel_env=functools.partial(multiagent.parallel_env, task_id, masked_action="noop"),
        env=functools.partial(multiagent.env, task_id=task_id, masked_action="noop"),
    )
    max_cycles_test(module)


def test_render(task_id):
    render_test(
        functools.partial(multiagent.env, task_id=task_id),
        custom_tests={"ansi": lambda text: "slot" in text and "failures" in text},
    )


def test_state(task_id):
    state_test(
        multiagent.env(task_id=task_id, masked_action="noop"), multiagent.parallel_env(task_id)
    )


def test_long_seeded_runs_are_identical(task_id):
    """parallel_seed_test in 1.27 compares one step; compare 400 steps, across resets."""
    a = rollout(multiagent.parallel_env(task_id), seed=123, steps=400, action_seed=9)
    b = rollout(multiagent.parallel_env(task_id), seed=123, steps=400, action_seed=9)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert data_equivalence(x, y)


def test_different_seeds_differ(task_id):
    a = rollout(multiagent.parallel_env(task_id), seed=1, steps=30)
    b = rollout(multiagent.parallel_env(task_id), seed=2, steps=30)
    assert not all(data_equivalence(x, y) for x, y in zip(a, b))


def test_registered_with_pettingzoo():
    par = pettingzoo.make("parallel", "AdaptiveAlertTriage-v0", task_id="hard")
    assert isinstance(par, multiagent.AlertTriageParallelEnv)
    assert par.config.task_id == "hard"
    aec = pettingzoo.make("aec", "AdaptiveAlertTriage-v0", task_id="easy", max_cycles=7)
    assert aec.unwrapped.config.max_steps == 7


# ---------------------------------------------------------------- the AEC env's input checks
#: (action, error, message) an investigator's turn refuses. Slot 0 always holds
#: an alert, so ESCALATE on it is masked by the investigator's role.
BAD_AEC_ACTIONS = [
    (999, ValueError, "action 999 for investigator_0 is out of range"),
    (-1, ValueError, "action -1 for investigator_0 is out of range"),
    (True, TypeError, "must be an int"),
    (1.5, TypeError, "must be an int"),
    ("3", TypeError, "must be an int"),
    (1 + ESCALATE, ValueError, "masked action for investigator_0"),
]


def _same_aec(a, b) -> None:
    assert a.agent_selection == b.agent_selection
    for agent in a.agents:
        assert data_equivalence(a.observe(agent), b.observe(agent)), agent
        assert a.rewards[agent] == b.rewards[agent]
    assert np.array_equal(a.state(), b.state())


@pytest.mark.parametrize("make", [multiagent.env, multiagent.raw_env])
def test_aec_refuses_a_bad_action_on_the_call_that_supplies_it(make):
    """Each bad action raises on its own turn and stores nothing: the env then
    plays on exactly as a twin that never saw it (the stock wrapper stored it
    and failed at the last agent's turn, and at every turn after)."""
    aec, twin = make(task_id="medium"), make(task_id="medium")
    aec.reset(seed=4)
    twin.reset(seed=4)
    for bad, error, match in BAD_AEC_ACTIONS:
        with pytest.raises(error, match=match):
            aec.step(bad)
        assert aec.agent_selection == "investigator_0"
    aec.step(1)  # investigator_0 investigates slot 0
    twin.step(1)
    with pytest.raises(ValueError, match="action 999 for investigator_1 is out of range"):
        aec.step(999)
    for _ in aec.possible_agents[1:]:  # the rest NOOP; the last turn steps the env
        aec.step(0)
        twin.step(0)
    assert int(aec.unwrapped.sim.t[0]) == 1
    assert aec.infos["investigator_0"]["status"] == "granted"
    _same_aec(aec, twin)


def test_aec_with_masked_actions_as_noops_accepts_them():
    aec = multiagent.env(task_id="medium", masked_action="noop")
    aec.reset(seed=4)
    with pytest.raises(ValueError, match="out of range"):
        aec.step(999)  # still outside the space
    for agent in aec.possible_agents:
        aec.step(1 + ESCALATE if agent == "investigator_0" else 0)
    assert aec.infos["investigator_0"]["status"] == "masked"


def test_aec_agents_that_are_done_take_only_none():
    aec = multiagent.raw_env(task_id="easy", max_cycles=1)
    aec.reset(seed=0)
    for _ in aec.possible_agents:
        aec.step(0)
    assert all(aec.truncations.values())
    with pytest.raises(ValueError, match="is done: its action must be None, got 0"):
        aec.step(0)
    for _ in aec.possible_agents:
        aec.step(None)
    assert aec.agents == []
    with pytest.raises(RuntimeError, match="after the episode ended"):
        aec.step(None)


def test_raw_aec_step_before_reset_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="before reset"):
        multiagent.raw_env(task_id="easy").step(0)
