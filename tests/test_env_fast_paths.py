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


def _validated_twin(model):
    """The same model built through validation, for a field-by-field comparison."""
    return type(model).model_validate(model.model_dump())


def test_unvalidated_models_are_indistinguishable_from_validated_ones(task_id):
    """The step builds its Observation, Alerts and Reward without validation;
    they still equal validated twins in every part pydantic compares, dumps
    or pickles."""
    import pickle

    env = AdaptiveAlertTriageEnv(task_id=task_id)
    agent = RandomAgent(9)
    observation, done = env.reset(seed=3), False
    models = [observation]
    while not done:
        observation, reward, done, _ = env.step(agent.act(observation))
        models += [observation, reward]
    for model in models:
        for m in [model, *getattr(model, "alerts", [])]:
            twin = _validated_twin(m)
            assert m == twin and m.model_dump() == twin.model_dump()
            assert list(m.__dict__) == list(twin.__dict__)  # declared field order
            assert m.model_fields_set == twin.model_fields_set
            assert (m.__pydantic_extra__, m.__pydantic_private__) == (None, None)
            assert pickle.loads(pickle.dumps(m)) == twin
            assert repr(m) == repr(twin)


def _plain_infos(env, out) -> dict:
    """The PettingZoo infos of an outcome, written out the straightforward way."""
    from adaptive_alert_triage.sim.config import ACTION_TYPES
    from adaptive_alert_triage.sim.engine import (
        D_OUTCOME,
        D_SLOT,
        D_STATUS,
        D_VERB,
        DENIAL_REASONS,
        N_FAILED,
        OUTCOME_NAMES,
        STATUS_NAMES,
        format_alert_id,
    )

    infos = {}
    for i, agent in enumerate(env.possible_agents):
        d = out.decisions[0, i]
        infos[agent] = {
            "action": int(out.actions[0, i]),
            "decision": None
            if d[D_SLOT] < 0
            else {
                "slot": int(d[D_SLOT]),
                "action_type": ACTION_TYPES[int(d[D_VERB])],
                "alert_id": format_alert_id(int(out.alert_id[0, i])),
            },
            "status": STATUS_NAMES[int(d[D_STATUS])],
            "reason": DENIAL_REASONS[int(d[D_STATUS])],
            "outcome": OUTCOME_NAMES[int(d[D_OUTCOME])],
            "team_failures": int(out.counts[0, N_FAILED]),
        }
    return infos


def _types(value):
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value)


@pytest.mark.parametrize("reward_mode", ["team", "individual"])
def test_parallel_step_dicts_equal_plain_ones(task_id, reward_mode):
    """The PettingZoo step reads env 0's records with `item` and whole-array
    `tolist`; its dicts equal ones written out with plain indexing, types
    included."""
    from adaptive_alert_triage.multiagent import parallel_env
    from adaptive_alert_triage.sim.engine import N_TERMINATED, N_TRUNCATED

    env = parallel_env(task_id, reward_mode=reward_mode, masked_action="noop")
    rng = np.random.default_rng(4)
    steps = 0
    for seed in range(3):
        observations, _ = env.reset(seed=seed)
        while env.agents:
            actions = {
                agent: int(rng.integers(env.sim.n_actions))
                if rng.random() < 0.2  # masked now and then: status "masked"
                else int(rng.choice(np.flatnonzero(obs["action_mask"])))
                for agent, obs in observations.items()
            }
            observations, rewards, terminations, truncations, infos = env.step(actions)
            out = env.last_outcome
            plain = _plain_infos(env, out)
            assert infos == plain and _types(infos) == _types(plain)
            if reward_mode == "team":
                expected = dict.fromkeys(env.possible_agents, float(out.reward[0]))
            else:
                expected = dict(zip(env.possible_agents, map(float, out.agent_reward[0])))
            assert rewards == expected and _types(rewards) == _types(expected)
            done = bool(out.counts[0, N_TERMINATED]), bool(out.counts[0, N_TRUNCATED])
            assert terminations == dict.fromkeys(env.possible_agents, done[0])
            assert truncations == dict.fromkeys(env.possible_agents, done[1])
            for i, agent in enumerate(env.possible_agents):
                assert np.array_equal(observations[agent]["observation"], out.observations[0, i])
                assert np.array_equal(observations[agent]["action_mask"], out.action_masks[0, i])
            steps += 1
    assert steps > 20
