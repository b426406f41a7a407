"""Bad input gets a clear error; tasks and scenarios are data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adaptive_alert_triage import multiagent
from adaptive_alert_triage.sim import TASKS, TaskConfig, get_task
from adaptive_alert_triage.sim.config import INT_RANGES
from adaptive_alert_triage.sim.engine import INVESTIGATE, STATUS_GRANTED, AlertSim
from adaptive_alert_triage.sim.incidents import poisson_cdf

from .conftest import random_masked_actions


# ---------------------------------------------------------------- illegal input
def test_step_before_reset_is_an_error():
    env = multiagent.parallel_env("easy")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step({})
    with pytest.raises(RuntimeError, match="before reset"):
        env.state()


def test_step_after_the_end_is_an_error():
    env = multiagent.parallel_env("easy", max_cycles=2)
    env.reset(seed=0)
    env.step({})
    env.step({})
    assert env.agents == []
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step({})


def test_unknown_agent_is_an_error():
    env = multiagent.parallel_env("easy")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown agent 'investigator_9'"):
        env.step({"investigator_9": 0})
    with pytest.raises(ValueError, match="unknown agent"):
        env.action_space("nobody")


@pytest.mark.parametrize("bad", [-1, 10_000, 33])
def test_out_of_range_action_is_an_error(bad):
    env = multiagent.parallel_env("easy")  # 8 slots: actions 0..32
    env.reset(seed=0)
    with pytest.raises(ValueError, match=f"action {bad} for investigator_0 is out of range"):
        env.step({"investigator_0": bad})


@pytest.mark.parametrize("bad", [1.5, "3", [1], True, False, np.bool_(True)])
def test_non_integer_action_is_an_error(bad):
    env = multiagent.parallel_env("easy")
    env.reset(seed=0)
    with pytest.raises(TypeError, match="must be an int"):
        env.step({"investigator_0": bad})


def test_a_bool_action_is_refused_and_changes_nothing():
    """Python counts True as 1; an action of True is still no action anyone meant."""
    env = multiagent.parallel_env("easy")
    twin = multiagent.parallel_env("easy")
    env.reset(seed=2)
    twin.reset(seed=2)
    with pytest.raises(TypeError, match="got the bool True"):
        env.step({"investigator_0": True})
    assert int(env.sim.t[0]) == 0
    obs, rewards, *_ = env.step({"investigator_0": 1})
    twin_obs, twin_rewards, *_ = twin.step({"investigator_0": 1})
    assert rewards == twin_rewards
    assert all(np.array_equal(obs[a]["observation"], twin_obs[a]["observation"]) for a in obs)


def test_numpy_integer_actions_are_accepted():
    env = multiagent.parallel_env("easy")
    env.reset(seed=0)
    env.step({"investigator_0": np.int64(0), "escalation_desk": np.array(0)})


def _masked_action(env, agent: str) -> int:
    obs = env._observations(env.sim.observe()[0], env.sim.legal[0].copy())[agent]
    return int(np.flatnonzero(obs["action_mask"] == 0)[0])


def test_masked_action_is_an_error_by_default():
    env = multiagent.parallel_env("medium")
    env.reset(seed=0)
    # The desk may not INVESTIGATE: its mask forbids it even on a present slot.
    with pytest.raises(ValueError, match="masked action for escalation_desk"):
        env.step({"escalation_desk": 1 + INVESTIGATE})
    # An empty slot is masked for everyone.
    bad = _masked_action(env, "investigator_0")
    with pytest.raises(ValueError, match="not allowed by its action_mask"):
        env.step({"investigator_0": bad})
    # The failed calls changed nothing: the env still steps from step 0.
    env.step({})
    assert int(env.sim.t[0]) == 1


def test_masked_action_can_become_noop():
    env = multiagent.parallel_env("medium", masked_action="noop")
    ref = multiagent.parallel_env("medium")
    env.reset(seed=3)
    ref.reset(seed=3)
    _, rewards, _, _, infos = env.step({"escalation_desk": 1 + INVESTIGATE})
    _, ref_rewards, _, _, _ = ref.step({})
    assert infos["escalation_desk"]["status"] == "masked"
    assert infos["escalation_desk"]["decision"] is None
    assert rewards == ref_rewards
    assert np.array_equal(env.state(), ref.state())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task_id": "impossible"}, ValueError, "unknown task_id 'impossible'"),
        ({"render_mode": "vr"}, ValueError, "render_mode 'vr'"),
        ({"reward_mode": "selfish"}, ValueError, "reward_mode 'selfish'"),
        ({"masked_action": "ignore"}, ValueError, "masked_action 'ignore'"),
        ({"investigation_budget": -1}, ValueError, "investigation_budget=-1 is out of range"),
        ({"noise_rate": "lots"}, TypeError, "noise_rate must be a number"),
        ({"n_investigators": 2.5}, TypeError, "n_investigators must be an int"),
        (
            {"cascade_prob": 1.5},
            ValueError,
            r"cascade_prob=1.5 is out of range; allowed \[0.0, 1.0\]",
        ),
        ({"warp_speed": 9}, TypeError, r"unknown task parameter\(s\) \['warp_speed'\]"),
        ({"rewards": {"bonus": 1}}, ValueError, r"unknown reward components \['bonus'\]"),
        ({"topology": {"edges": [[0, 1], [1, 0]]}}, ValueError, "cycle"),
        ({"topology": {"edges": [[0, 99]]}}, ValueError, "names service 99"),
        ({"seed": "7"}, TypeError, "seed must be a non-negative int or None, got '7'"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int or None, got -1"),
    ],
)
def test_bad_construction_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        multiagent.parallel_env(**kwargs)


def test_max_cycles_and_max_steps_must_agree():
    with pytest.raises(ValueError, match="max_cycles=5 and max_steps=10 conflict"):
        multiagent.parallel_env("easy", max_cycles=5, max_steps=10)
    assert multiagent.parallel_env("easy", max_cycles=7, max_steps=7).config.max_steps == 7
    assert multiagent.parallel_env("easy", max_cycles=6).config.max_steps == 6
    assert multiagent.parallel_env("easy", max_steps=8).config.max_steps == 8


def test_bad_reset_arguments():
    env = multiagent.parallel_env("easy")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        env.reset(seed=-3)
    with pytest.raises(TypeError, match="options must be a dict"):
        env.reset(options=[1])
    with pytest.warns(UserWarning, match=r"reset options \['live'\] are not used"):
        env.reset(options={"live": True})


def test_render_without_mode_warns_and_returns_none():
    env = multiagent.parallel_env("easy")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert env.render() is None


def test_rgb_render_is_an_image_that_changes():
    env = multiagent.parallel_env("hard", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    for _ in range(5):
        env.step({})
    second = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert first.shape == second.shape and not np.array_equal(first, second)


# ---------------------------------------------------------------- scenarios as data
def test_scenario_files_load(tmp_path):
    spec = {"base": "hard", "n_services": 8, "graph_depth": 3, "max_steps": 25}
    json_path = tmp_path / "storm.json"
    json_path.write_text(json.dumps(spec))
    yaml_path = tmp_path / "storm.yaml"
    yaml_path.write_text(yaml.safe_dump(spec))
    for path in (json_path, yaml_path, str(yaml_path)):
        env = multiagent.parallel_env(scenario=path)
        assert env.config.n_services == 8
        assert env.config.investigation_budget == get_task("hard").investigation_budget
        env.reset(seed=0)
        assert env.sim.layer[0].max() == 2


def test_scenario_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        multiagent.parallel_env(scenario=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.txt"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"must end in \.json, \.yaml or \.yml"):
        multiagent.parallel_env(scenario=bad)
    with pytest.raises(TypeError, match="a scenario must be a mapping"):
        TaskConfig.from_dict([1, 2])


def test_overrides_apply_on_top_of_a_task():
    env = multiagent.parallel_env("medium", n_investigators=5, investigation_budget=3)
    assert env.possible_agents[-1] == "escalation_desk"
    assert len(env.possible_agents) == 6
    assert env.config.investigation_budget == 3


def test_task_presets_match_their_story():
    easy, medium, hard = TASKS["easy"], TASKS["medium"], TASKS["hard"]
    assert easy.cascade_prob == 0 and easy.investigation_budget >= easy.n_agents
    assert medium.investigation_budget < medium.n_agents
    assert hard.investigation_budget < hard.n_agents
    assert hard.graph_depth > medium.graph_depth > easy.graph_depth
    assert hard.failure_threshold < medium.failure_threshold
    assert all(20 <= t.max_steps <= 50 for t in TASKS.values())


# ---------------------------------------------------------------- properties
task_params = st.fixed_dictionaries(
    {
        "n_investigators": st.integers(1, 5),
        "investigation_budget": st.integers(0, 6),
        "n_services": st.integers(2, 16),
        "n_slots": st.integers(1, 12),
        "base_incident_rate": st.floats(0.0, 5.0),
        "noise_rate": st.floats(0.0, 6.0),
        "cascade_prob": st.floats(0.0, 1.0),
        "severity_noise": st.floats(0.0, 0.5),
        "queue_capacity": st.integers(12, 40),
        "escalation_delay": st.integers(1, 4),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=task_params, seed=st.integers(0, 2**31 - 1), depth=st.integers(1, 4))
def test_invariants_hold_for_any_task(params, seed, depth):
    depth = min(depth, params["n_services"])
    env = multiagent.parallel_env("medium", graph_depth=depth, max_cycles=25, **params)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    space = env.observation_space("escalation_desk")
    k = params["investigation_budget"]
    while env.agents:
        for agent, o in obs.items():
            assert space.contains(o), agent
        obs, *_ = env.step(random_masked_actions(obs, rng))
        out = env.last_outcome
        claims = (out.status == STATUS_GRANTED) & np.isin(out.verb, (0, 2))
        assert claims.sum() <= k
        assert out.reward[0] == out.components[0].sum()
        sim = env.sim
        present = sim.alerts[0, :, 0] > 0.5
        assert present.sum() <= params["queue_capacity"]
        assert (present[: present.sum()]).all(), "the queue is compact, in arrival order"
        vis = sim.alerts[0, present, 6]
        assert ((vis >= 0) & (vis <= 1)).all()
        assert int(sim.failures[0]) >= 0
    assert env.sim.alerts_total[0] >= env.sim.noise_total[0]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 5))
def test_each_batch_row_follows_its_lone_trajectory(seed, batch):
    cfg = get_task("medium")
    seeds = [seed + i for i in range(batch)]
    together = AlertSim(cfg, batch_size=batch)
    together.reset(seeds)
    alone = AlertSim(cfg)
    alone.reset([seeds[-1]])
    rng = np.random.default_rng(seed)
    for _ in range(cfg.max_steps):
        actions = np.array(
            [[rng.choice(np.flatnonzero(row)) for row in together.legal[b]] for b in range(batch)]
        )
        out = together.step(actions)
        mine = alone.step(actions[-1:])
        assert np.array_equal(mine.components, out.components[-1:])
        assert np.array_equal(alone.global_state(), together.global_state()[-1:])
        if out.terminated.any() or out.truncated.any():
            break


# ---------------------------------------------------------------- false-positive noise
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.floats(0.0, 100.0), cap=st.integers(0, 256))
@example(rate=0.8, cap=172)  # k! beyond a float
@example(rate=100.0, cap=256)  # rate**k beyond a float
@example(rate=0.0, cap=256)
def test_noise_cdf_is_valid_for_every_allowed_rate_and_cap(rate, cap):
    cdf = poisson_cdf(rate, cap)
    assert cdf.shape == (cap,) and np.isfinite(cdf).all()
    assert (cdf >= 0).all() and (np.diff(cdf) >= 0).all()
    assert cap == 0 or (cdf[0] == math.exp(-rate) and cdf[-1] <= 1.0 + 1e-12)
    env = multiagent.parallel_env(
        "easy", noise_rate=rate, max_noise_per_step=cap, max_cycles=3, masked_action="noop"
    )
    env.reset(seed=0)
    while env.agents:
        env.step({})
    assert int(env.sim.t[0]) == 3


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.0, 100.0))
@example(rate=0.8)
@example(rate=1.6)
@example(rate=1.8)
@example(rate=100.0)
def test_noise_cdf_keeps_its_bits_wherever_the_direct_formula_is_finite(rate):
    """Every configuration that worked before keeps its CDF, so its draws and
    trajectories: the log-space form only replaces terms that overflowed."""
    for cap in range(257):
        try:
            direct = np.cumsum([math.exp(-rate) * rate**k / math.factorial(k) for k in range(cap)])
        except OverflowError:
            continue
        assert poisson_cdf(rate, cap).tobytes() == direct.tobytes(), cap


def test_the_config_ranges_keep_times_and_incident_numbers_in_int32():
    """The core holds times and incident numbers in int32. An episode opens at
    most one incident per service per step (and per interval between steps,
    for ingested alerts), plus its opening arrivals; a time is at most the
    last step plus a delay. Raising a range past this must change the dtypes."""
    limit = np.iinfo(np.int32).max
    steps, services = INT_RANGES["max_steps"][1], INT_RANGES["n_services"][1]
    delays = ("recovery_steps", "cascade_delay_max", "escalation_delay")
    assert 2 * services * (steps + 1) <= limit
    assert steps + 1 + max(INT_RANGES[name][1] for name in delays) <= limit
    sim = AlertSim(get_task("hard"))
    assert sim.inc_int.dtype == np.int32 and sim.down_until.dtype == np.int32
