"""What the simulator promises: the budget, arbitration, ids, determinism,
rewards and cascades."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_alert_triage import multiagent
from adaptive_alert_triage.agents.teams import GreedyTeam, OracleTeam, RandomTeam, TriageTeam
from adaptive_alert_triage.sim import TaskConfig, get_task
from adaptive_alert_triage.sim.engine import (
    ESCALATE,
    INVESTIGATE,
    STATUS_DENIED_BUDGET,
    STATUS_DENIED_CONFLICT,
    STATUS_GRANTED,
    AlertSim,
)
from adaptive_alert_triage.sim.topology import build_layered_dag

from .conftest import random_masked_actions, rollout


def play(env, team, seed: int) -> tuple[float, list]:
    """One episode of a team policy; returns the team return and the outcomes."""
    obs, _ = env.reset(seed=seed)
    team.reset(seed)
    total, outcomes = 0.0, []
    while env.agents:
        obs, rewards, *_ = env.step(team.act(obs, env))
        total += next(iter(rewards.values()))
        outcomes.append(env.last_outcome)
    return total, outcomes


def granted_claims(outcome) -> np.ndarray:
    claim = (outcome.verb == INVESTIGATE) | (outcome.verb == ESCALATE)
    return ((outcome.status == STATUS_GRANTED) & claim).sum(axis=1)


# ---------------------------------------------------------------- budget and arbitration
@pytest.mark.parametrize("task_id", ["medium", "hard"])
def test_greedy_team_hits_the_budget_and_never_exceeds_it(task_id):
    env = multiagent.parallel_env(task_id)
    denied = 0
    for seed in range(3):
        _, outcomes = play(env, GreedyTeam(), seed)
        for out in outcomes:
            assert granted_claims(out)[0] <= env.config.investigation_budget
            denied += int((out.status == STATUS_DENIED_BUDGET).sum())
    assert denied > 0, "in medium and hard a greedy team must hit K"


def test_easy_budget_does_not_bind_for_the_whole_team():
    cfg = get_task("easy")
    assert cfg.investigation_budget >= cfg.n_agents
    env = multiagent.parallel_env("easy")
    _, outcomes = play(env, GreedyTeam(), 0)
    assert all((out.status != STATUS_DENIED_BUDGET).all() for out in outcomes)


def test_denied_alert_stays_queued_and_denial_is_reported():
    env = multiagent.parallel_env("medium", investigation_budget=1)
    env.reset(seed=4)
    sim = env.sim
    # Everyone claims a different slot: exactly one claim can be granted.
    while sim.queue_length[0] < 4:
        env.step({})
    ids_before = {r["id"] for r in sim.queue_records(0)}
    actions = {f"investigator_{i}": 1 + i * 4 + INVESTIGATE for i in range(3)}
    actions["escalation_desk"] = 1 + 3 * 4 + ESCALATE
    _, _, _, _, infos = env.step(actions)
    statuses = [infos[a]["status"] for a in actions]
    assert statuses.count("granted") == 1
    assert statuses.count("denied") == 3
    assert {infos[a]["reason"] for a in actions if infos[a]["status"] == "denied"} == {"budget"}
    ids_after = {r["id"] for r in sim.queue_records(0)}
    for agent in actions:
        if infos[agent]["status"] == "denied":
            assert infos[agent]["decision"]["alert_id"] in ids_after
            assert infos[agent]["decision"]["alert_id"] in ids_before


def test_conflicting_decisions_on_one_alert_grant_exactly_one():
    env = multiagent.parallel_env("medium")
    env.reset(seed=2)
    actions = {f"investigator_{i}": 1 + INVESTIGATE for i in range(3)}
    actions["escalation_desk"] = 1 + ESCALATE
    _, _, _, _, infos = env.step(actions)
    assert sorted(i["status"] for i in infos.values()) == ["denied"] * 3 + ["granted"]
    assert {i["reason"] for i in infos.values() if i["status"] == "denied"} == {"conflict"}


def test_arbitration_is_deterministic_given_the_seed():
    def winners(seed):
        env = multiagent.parallel_env("hard")
        env.reset(seed=seed)
        out = []
        for _ in range(25):
            if not env.agents:
                break
            actions = {a: 1 + INVESTIGATE for a in env.agents if a.startswith("investigator")}
            actions["escalation_desk"] = 1 + ESCALATE
            _, _, _, _, infos = env.step(actions)
            out.append(tuple(i["status"] for i in infos.values()))
        return out

    first = winners(11)
    assert first == winners(11)
    # The priority order is drawn per step, so the winner of slot 0 varies.
    assert len(set(first)) > 1


def test_sim_status_codes_cover_every_decision():
    sim = AlertSim(get_task("hard"))
    sim.reset([0])
    rng = np.random.default_rng(0)
    for _ in range(60):
        if sim.needs_reset.any():
            sim.reset()
        legal = sim.legal[0]
        actions = np.array([[rng.choice(np.flatnonzero(row)) for row in legal]])
        out = sim.step(actions)
        decided = out.actions > 0
        assert np.array_equal(out.status > 0, decided)
        assert set(np.unique(out.status[decided])) <= {
            STATUS_GRANTED,
            STATUS_DENIED_BUDGET,
            STATUS_DENIED_CONFLICT,
        }


# ---------------------------------------------------------------- ids
def test_alert_ids_are_unique_and_opaque(task_id):
    env = multiagent.parallel_env(task_id)
    seen: dict[str, tuple] = {}

    def record(e):
        for rec in e.sim.queue_records(0):
            key = (rec["service"], rec["alert_type"], rec["visible_severity"])
            assert seen.setdefault(rec["id"], key) == key, "one id named two alerts"

    env.reset(seed=0)
    rollout(env, seed=0, steps=200, hook=record)
    assert len(seen) > 50
    ids = list(seen)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    # Arrival order is not visible in the ids: they are not sorted.
    assert ids != sorted(ids)


# ---------------------------------------------------------------- determinism
def test_interleaving_state_and_render_never_change_a_trajectory(task_id):
    alone = rollout(multiagent.parallel_env(task_id), seed=77, steps=120, action_seed=3)

    other = multiagent.parallel_env(task_id, render_mode="rgb_array")
    other.reset(seed=5)
    other_rng = np.random.default_rng(1)
    state = {"obs": other.reset(seed=5)[0]}

    def meddle(env):
        env.state()
        env.sim.global_state()
        env.sim.queue_records(0)
        if not other.agents:
            state["obs"], _ = other.reset()
        state["obs"], *_ = other.step(random_masked_actions(state["obs"], other_rng))
        other.render()

    watched = multiagent.parallel_env(task_id, render_mode="ansi")
    busy = rollout(
        watched, seed=77, steps=120, action_seed=3, hook=lambda e: (meddle(e), e.render())
    )
    assert len(alone) == len(busy)
    for x, y in zip(alone, busy):
        assert data_equivalence(x, y)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_kept_outcomes_stay_as_their_step_left_them(backend):
    """`last_outcome` is the env's own copy: later steps (which reuse the
    sim's record buffers) never change an outcome kept from an earlier one."""
    env = multiagent.parallel_env("hard", backend=backend)
    lone = AlertSim(get_task("hard"))
    obs, _ = env.reset(seed=4)
    lone.reset([4])
    rng = np.random.default_rng(4)
    kept, expected = [], []
    while env.agents:
        actions = random_masked_actions(obs, rng)
        obs, *_ = env.step(actions)
        kept.append(env.last_outcome)
        assert env.last_outcome is kept[-1]  # one copy per step, however often read
        row = np.array([[actions[a] for a in env.possible_agents]])
        expected.append(lone.step(row))
    assert len(kept) > 3
    for step, (out, want) in enumerate(zip(kept, expected)):
        for name in ("decisions", "components", "service_events", "counts", "incidents"):
            assert np.array_equal(getattr(out, name), getattr(want, name)), (step, name)


def test_batched_sim_rows_match_lone_sims():
    cfg = get_task("hard")
    seeds = [3, 1, 4]
    batch = AlertSim(cfg, batch_size=3)
    batch.reset(seeds)
    lone = [AlertSim(cfg) for _ in seeds]
    for sim, seed in zip(lone, seeds):
        sim.reset([seed])
    rng = np.random.default_rng(0)
    for _ in range(40):
        if batch.needs_reset.any():
            break
        actions = np.array(
            [[rng.choice(np.flatnonzero(row)) for row in batch.legal[b]] for b in range(3)]
        )
        out = batch.step(actions)
        for b, sim in enumerate(lone):
            o = sim.step(actions[b : b + 1])
            assert np.array_equal(o.components, out.components[b : b + 1])
            assert np.array_equal(o.status, out.status[b : b + 1])
            assert np.array_equal(sim.alerts, batch.alerts[b : b + 1])
            assert np.array_equal(sim.observe(), batch.observe()[b : b + 1])


# ---------------------------------------------------------------- rewards
@pytest.mark.parametrize("reward_mode", ["team", "individual"])
def test_reward_is_exactly_the_sum_of_components(task_id, reward_mode):
    env = multiagent.parallel_env(task_id, reward_mode=reward_mode)
    obs, _ = env.reset(seed=8)
    rng = np.random.default_rng(8)
    nonzero = 0
    for _ in range(150):
        if not env.agents:
            obs, _ = env.reset()
        obs, rewards, *_ = env.step(random_masked_actions(obs, rng))
        out = env.last_outcome
        team = out.components[0].sum()
        assert out.reward[0] == team
        if reward_mode == "team":
            assert all(r == team for r in rewards.values())
        else:
            per_agent = out.agent_components[0].sum(axis=1)
            assert [rewards[a] for a in env.possible_agents] == per_agent.tolist()
            assert sum(rewards.values()) == pytest.approx(team)
        nonzero += team != 0
    assert nonzero > 10


def test_custom_reward_values_are_used():
    base = multiagent.parallel_env("easy")
    doubled = multiagent.parallel_env(
        "easy", rewards={name: 2 * v for name, v in get_task("easy").rewards.items()}
    )
    a = rollout(base, seed=5, steps=40)
    b = rollout(doubled, seed=5, steps=40)
    rewards_a = [step[2]["investigator_0"] for step in a if len(step) == 6]
    rewards_b = [step[2]["investigator_0"] for step in b if len(step) == 6]
    assert rewards_b == [2 * r for r in rewards_a]
    assert any(rewards_a)


def test_ignoring_noise_and_investigating_critical_pay_the_table():
    env = multiagent.parallel_env("easy")
    env.reset(seed=3)
    sim = env.sim
    seen = set()
    for _ in range(200):
        if not env.agents:
            env.reset()
        records = sim.queue_records(0)[: sim.N]
        actions = {}
        for slot, rec in enumerate(records[:2]):
            verb = 1 if rec["is_noise"] else INVESTIGATE  # IGNORE noise, else investigate
            actions[f"investigator_{slot}"] = 1 + slot * 4 + verb
        _, _, _, _, infos = env.step(actions)
        comps = env.last_outcome.agent_components[0]
        for i, agent in enumerate(actions):
            outcome = infos[agent]["outcome"]
            share = comps[i]
            if outcome == "false_positive_ignored":
                assert share[2] == 3.0
            if outcome == "resolved_critical":
                assert share[0] == 10.0
            if outcome == "wasted_on_false_positive":
                assert share[3] == -2.0
            seen.add(outcome)
    assert {"false_positive_ignored", "resolved_critical"} <= seen


# ---------------------------------------------------------------- cascades
def test_failures_cascade_only_along_the_hidden_graph():
    env = multiagent.parallel_env("hard", cascade_prob=1.0, failure_threshold=10_000)
    env.reset(seed=1)
    n_cascades = 0
    for _ in range(400):
        if not env.agents:
            env.reset()
        adj = env.sim.adj[0].copy()
        env.step({})  # nobody acts: failures pile up
        out = env.last_outcome
        reachable = (out.failures[0].astype(int) @ adj) > 0
        assert not (out.cascades[0] & ~reachable).any()
        n_cascades += int(out.cascades[0].sum())
    assert n_cascades > 0


def test_no_cascades_without_edges_or_probability():
    for env in (
        multiagent.parallel_env("easy", failure_threshold=10_000),
        multiagent.parallel_env(
            "hard", failure_threshold=10_000, topology={"edges": []}, cascade_prob=1.0
        ),
    ):
        env.reset(seed=0)
        for _ in range(200):
            if not env.agents:
                env.reset()
            env.step({})
            assert not env.last_outcome.cascades.any()


def test_a_fixed_topology_is_used_as_given():
    edges = [[0, 1], [1, 2], [2, 3]]
    env = multiagent.parallel_env("hard", n_services=4, graph_depth=4, topology={"edges": edges})
    env.reset(seed=0)
    expected = np.zeros((4, 4), dtype=bool)
    for u, v in edges:
        expected[u, v] = True
    assert np.array_equal(env.sim.adj[0], expected)
    assert env.sim.layer[0].tolist() == [0, 1, 2, 3]


def test_drawn_graph_is_a_dag_with_the_task_depth():
    sim = AlertSim(get_task("hard"))
    for seed in range(10):
        sim.reset([seed])
        adj, layer = sim.adj[0], sim.layer[0]
        u, v = np.nonzero(adj)
        assert (layer[u] < layer[v]).all()
        assert layer.max() == get_task("hard").graph_depth - 1


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.integers(1, n),
            st.integers(1, 5),
            st.permutations(range(n)),
            st.integers(0, 2**32 - 1),
        )
    )
)
def test_layered_dag_fills_every_layer_evenly_and_links_each_service_to_the_layer_above(
    case,
):
    n, depth, max_dependencies, order, seed = case
    u = np.random.default_rng(seed).random((n, 2 + max_dependencies))
    adj = np.zeros((n, n), dtype=bool)
    layer = np.full(n, -1, dtype=np.int64)  # what it leaves unwritten stays -1
    assert build_layered_dag(np.array(order), u, depth, max_dependencies, adj, layer) is None
    sizes = np.bincount(layer, minlength=depth)
    assert layer.min() == 0 and layer.max() == depth - 1
    # Cut in order, as evenly as possible, the larger layers first.
    assert sizes.max() - sizes.min() <= 1 and (np.diff(sizes) <= 0).all()
    assert [layer[s] for s in order] == sorted(layer.tolist())
    parents, children = np.nonzero(adj)
    assert (layer[parents] < layer[children]).all()
    in_degree = adj.sum(axis=0)
    assert (in_degree <= max_dependencies).all()
    for v in range(n):
        above = adj[:, v] & (layer == layer[v] - 1)
        assert above.any() == (layer[v] > 0) and (in_degree[v] == 0) == (layer[v] == 0)


# ---------------------------------------------------------------- the estate
def test_queue_is_never_empty_while_running(task_id):
    env = multiagent.parallel_env(task_id)
    rollout(
        env,
        seed=0,
        steps=300,
        hook=lambda e: e.agents and (e.sim.queue_length[0] > 0 or pytest.fail("empty queue")),
    )


def test_false_positive_share_is_realistic(task_id):
    env = multiagent.parallel_env(task_id)
    for team in (RandomTeam(0), TriageTeam()):
        noise = total = 0
        for seed in range(15):
            play(env, team, seed)
            noise += int(env.sim.noise_total[0])
            total += int(env.sim.alerts_total[0])
        assert 0.3 <= noise / total <= 0.6, (task_id, type(team).__name__, noise / total)


def test_partial_observability_matters_and_teams_are_ordered(task_id):
    env = multiagent.parallel_env(task_id)
    seeds = range(20)
    mean = {}
    for name, team in (
        ("random", RandomTeam(0)),
        ("triage", TriageTeam()),
        ("oracle", OracleTeam()),
    ):
        mean[name] = np.mean([play(env, team, s)[0] for s in seeds])
    assert mean["random"] < mean["triage"] < mean["oracle"]
    # Thresholding the visible severity falls measurably short of the truth.
    assert mean["oracle"] - mean["triage"] > 0.1 * abs(mean["oracle"])


def test_careless_team_is_overwhelmed_on_hard_and_a_good_one_is_not():
    env = multiagent.parallel_env("hard")
    greedy = [play(env, GreedyTeam(), s) for s in range(10)]
    triage = [play(env, TriageTeam(), s) for s in range(10)]
    terminated = sum(outs[-1].terminated[0] for _, outs in greedy)
    survived = sum(outs[-1].truncated[0] for _, outs in triage)
    assert terminated >= 5
    assert survived >= 8


def test_escalation_resolves_after_its_delay_while_damage_continues():
    cfg = TaskConfig(
        task_id="probe",
        n_services=1,
        graph_depth=1,
        critical_share=1.0,
        noise_rate=0.0,
        base_incident_rate=50.0,
        escalation_delay=3,
        damage_rate=0.05,
        max_steps=30,
    )
    env = multiagent.parallel_env(scenario=cfg)
    env.reset(seed=0)
    sim = env.sim
    assert sim.inc_active[0, 0]
    _, _, _, _, infos = env.step({"escalation_desk": 1 + ESCALATE})
    assert infos["escalation_desk"]["outcome"] == "escalated"
    damage = [sim.inc_damage[0, 0]]
    for _ in range(2):
        env.step({})
        assert sim.inc_active[0, 0]
        damage.append(sim.inc_damage[0, 0])
    assert damage[0] < damage[1] < damage[2]
    env.step({})
    out = env.last_outcome
    assert out.escalations_resolved[0, 0]
    assert out.agent_components[0, -1, 0] == 10.0  # credited to the desk


def test_incident_records_are_consistent(task_id):
    """Each incident becomes visible once and closes at most once; an
    investigation that resolved it is the step it closed."""
    env = multiagent.parallel_env(task_id, failure_threshold=10_000)
    _, outcomes = play(env, TriageTeam(), 4)
    seen, closed = {}, set()
    for out in outcomes:
        inc = out.incidents[0]
        for s in np.flatnonzero(out.first_alerts[0]):
            uid = int(inc[s, 1])
            assert uid not in seen
            seen[uid] = float(out.incident_severity[0, s])
            assert (inc[s, 2] & 1) == (seen[uid] >= 0.7)  # FLAG_CRITICAL matches the truth
        for s in np.flatnonzero(inc[:, 0] >= 0):
            uid = int(inc[s, 0])
            assert uid not in closed
            closed.add(uid)
        resolved_here = set(inc[out.resolved[0], 0].tolist())
        for a in np.flatnonzero(np.isin(out.outcome[0], (1, 2))):  # resolved_critical / minor
            assert int(out.incident[0, a]) in resolved_here
    assert seen and closed
