"""The single-agent wrapper's fast paths give the values of the plain ones.

`AdaptiveAlertTriageEnv.step` converts each outcome once and feeds only the
acting members' rows to the grader and ``info``; the graders find incident
cells with list methods and report ``(score, passed)`` at once; reward totals
are summed when read. Each test here recomputes the same values the plain way
(`Grader.update` on the whole outcome, `step_info`, running sums) and asks for
exact equality, step by step.
"""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_alert_triage.agents.single import RandomAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv, step_info
from adaptive_alert_triage.models import Action, Alert, trusted, trusted_pieces
from adaptive_alert_triage.sim.config import REWARD_COMPONENTS
from adaptive_alert_triage.tasks import GRADERS, get_grader
from adaptive_alert_triage.tasks.base import _cells


class _TeamAgent:
    """Sometimes several decisions in one step (up to the team's limits), to
    exercise the multi-decision path as well as the single one."""

    def __init__(self, env: AdaptiveAlertTriageEnv, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.single = RandomAgent(seed)

    def act(self, observation):
        alerts = observation.alerts
        if len(alerts) < 2 or self.rng.random() < 0.5:
            return self.single.act(observation)
        picks = self.rng.choice(len(alerts), size=min(len(alerts), 3), replace=False)
        verbs = ["ESCALATE", "INVESTIGATE", "DELAY"]
        return [
            Action(alert_id=alerts[int(p)].id, action_type=verb) for p, verb in zip(picks, verbs)
        ]


def _episodes(task_id: str, grader_id: str | None = None, seeds=range(4)):
    """Yield (env, info) after every step of a few seeded episodes."""
    env = AdaptiveAlertTriageEnv(task_id=task_id, grader=grader_id)
    for seed in seeds:
        agent = _TeamAgent(env, seed)
        observation, done = env.reset(seed=seed), False
        yield env, None
        while not done:
            observation, _, done, info = env.step(agent.act(observation))
            yield env, info


@pytest.mark.parametrize("grader_id", sorted(GRADERS))
def test_fed_grader_equals_one_updated_with_whole_outcomes(task_id, grader_id):
    """The env feeds its grader only the acting members' rows; a grader given
    every row by `update` keeps the same ledger, counts and score."""
    shadow = get_grader(grader_id)
    steps = 0
    for env, info in _episodes(task_id, grader_id):
        if info is None:
            shadow = get_grader(grader_id, env.config.failure_threshold)
            shadow.begin(env.sim.reset_incidents[0], env.sim.reset_incident_severity[0])
            continue
        shadow.update(env.team.last_outcome)
        assert shadow.ledger == env.grader.ledger
        assert shadow.metrics() == env.grader.metrics()
        assert (info["task_score"], info["task_passed"]) == (shadow.score, shadow.passed)
        steps += 1
    assert steps > 40


def test_result_is_score_and_passed(task_id):
    for env, _ in _episodes(task_id):
        assert env.grader.result() == (env.grader.score, env.grader.passed)


def test_result_follows_a_subclass_own_passed():
    class Strict(GRADERS["easy"]):
        @property
        def passed(self) -> bool:
            return False

    grader = Strict()
    grader.correct = grader.graded = 1
    assert grader.result() == (1.0, False)


def test_info_equals_step_info_on_the_same_outcome(task_id):
    """The env's info, built from the acting members' rows, equals `step_info`
    (the Gymnasium face's) on the whole outcome."""
    for env, info in _episodes(task_id):
        if info is None:
            continue
        out = env.team.last_outcome
        plain = step_info(
            out, out.actions[0] != 0, env.grader, env._names, env.cumulative_reward, env.sim
        )
        assert plain == info
        assert [type(v) for v in plain.values()] == [type(v) for v in info.values()]


def test_reward_totals_are_the_running_sums(task_id):
    env = AdaptiveAlertTriageEnv(task_id=task_id)
    agent = RandomAgent(5)
    observation, done = env.reset(seed=2), False
    running = dict.fromkeys(REWARD_COMPONENTS, 0.0)
    assert env.reward_totals == running
    while not done:
        observation, reward, done, _ = env.step(agent.act(observation))
        for name, part in reward.components.items():
            running[name] += part
        assert env.reward_totals == running  # exactly: the same sums in the same order
        assert env.state().reward_totals == running
    env.reward_totals["system_failure"] = 1e9  # a copy: the env's totals are unchanged
    assert env.reward_totals == running


def test_cells_finds_the_incident_entries():
    rng = np.random.default_rng(0)
    for _ in range(500):
        column = [-1] * int(rng.integers(1, 25))
        k = int(rng.integers(0, len(column) + 1))
        at = rng.choice(len(column), size=k, replace=False)
        for i, uid in zip(at, rng.choice(10_000, size=k, replace=False)):
            column[int(i)] = int(uid)
        assert _cells(column) == [i for i, uid in enumerate(column) if uid >= 0]


def test_unknown_alert_ids_are_rejected_with_the_valid_ones():
    env = AdaptiveAlertTriageEnv(task_id="medium")
    observation = env.reset(seed=4)
    gone = observation.alerts[0].id
    observation, *_ = env.step(Action(alert_id=gone, action_type="IGNORE"))
    assert gone not in [a.id for a in observation.alerts]  # decided, so dequeued
    valid = ", ".join(a.id for a in observation.alerts)
    for bad in (gone, gone.upper(), "0x" + gone[2:], " " + gone, "none"):
        with pytest.raises(ValueError, match=f"unknown alert_id {bad!r}.*valid ids are: {valid}$"):
            env.step(Action(alert_id=bad, action_type="DELAY"))
    with pytest.raises(ValueError, match="unknown alert_id"):
        env.step([Action(alert_id=gone, action_type="DELAY")])


def test_returned_observations_never_change(task_id):
    """Later steps (and resets) leave every returned observation as it was."""
    env = AdaptiveAlertTriageEnv(task_id=task_id)
    agent = RandomAgent(1)
    kept = []
    for seed in (0, 1):
        observation, done = env.reset(seed=seed), False
        kept.append((observation, observation.model_dump()))
        while not done:
            observation, _, done, _ = env.step(agent.act(observation))
            kept.append((observation, observation.model_dump()))
    assert all(obs.model_dump() == dump for obs, dump in kept)
    alerts = [id(a) for obs, _ in kept for a in obs.alerts]
    assert len(alerts) == len(set(alerts)), "no Alert object is returned twice"


def test_trusted_pieces_build_what_trusted_builds():
    fields = {
        "id": "0123456789abcdef",
        "visible_severity": 0.5,
        "confidence": 0.25,
        "alert_type": "DISK",
        "age": 3,
        "service": "auth",
    }
    new, set_dict, set_fields_set, set_extra, set_private, fields_set = trusted_pieces(Alert)
    alert = new(Alert)
    set_dict(alert, dict(fields))
    set_fields_set(alert, fields_set)
    set_extra(alert, None)
    set_private(alert, None)
    assert alert == trusted(Alert, dict(fields)) == Alert(**fields)
    assert alert.model_fields_set == set(Alert.model_fields)
