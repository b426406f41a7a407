"""The numba backend is the numpy reference, bit for bit."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adaptive_alert_triage import multiagent
from adaptive_alert_triage.gym_env import AlertTriageGymEnv, AlertTriageVectorEnv
from adaptive_alert_triage.sim import fast, get_task
from adaptive_alert_triage.sim.engine import INVESTIGATE, RECORD_OMITS, AlertSim
from adaptive_alert_triage.sim.select import make_sim

pytestmark = pytest.mark.skipif(not fast.available(), reason="numba is not installed")

STATE = (
    "t",
    "adj",
    "layer",
    "service_weight",
    "id_key",
    "excitation",
    "failures",
    "alert_counter",
    "incident_counter",
    "down_until",
    "inc_bool",
    "inc_int",
    "inc_float",
    "alerts",
    "reset_incidents",
    "reset_incident_severity",
    "totals",
    "legal",
    "terminated",
    "truncated",
    "needs_reset",
    "extent",
    "stream_key",
    "episode",
    "episode_key",
)
OUTCOME = (
    "actions",
    "decisions",
    "true_severity",
    "alert_id",
    "components",
    "agent_components",
    "service_events",
    "counts",
    "incidents",
    "incident_severity",
    "reward",
    "agent_reward",
)


def assert_same_state(ref: AlertSim, other: AlertSim, where) -> None:
    for name in STATE:
        assert np.array_equal(getattr(ref, name), getattr(other, name)), f"{where}: {name}"


def assert_same(ref: AlertSim, other: AlertSim, where: str) -> None:
    assert_same_state(ref, other, where)
    assert ref.n_needing_reset == other.n_needing_reset, where
    assert np.array_equal(ref.observe(), other.observe()), f"{where}: observe"
    assert np.array_equal(ref.global_state(), other.global_state()), f"{where}: state"
    for b in range(ref.B):
        assert ref.visible_view(b) == other.visible_view(b), f"{where}: visible view of env {b}"


def assert_same_outcome(a, b, step: int) -> None:
    """Two steps' outcomes, observations and masks are equal (records a lean
    step omits are None in both)."""
    for name in OUTCOME:
        assert np.array_equal(getattr(a, name), getattr(b, name)), f"step {step}: {name}"
    assert np.array_equal(a.observations, b.observations), step
    assert np.array_equal(a.action_masks, b.action_masks), step


def run_pair(
    config, batch: int, steps: int, seed: int, on_illegal: str = "raise", hold: bool = False
) -> int:
    ref, twin = AlertSim(config, batch), fast.FastAlertSim(config, batch)
    seeds = [seed + i for i in range(batch)]
    ref.reset(seeds)
    twin.reset(seeds)
    assert_same(ref, twin, "reset")
    rng = np.random.default_rng(seed)
    resets = 0
    for step in range(steps):
        if ref.needs_reset.any():
            ids = np.flatnonzero(ref.needs_reset)
            if len(ids) == batch:  # every env: the twin's one-call path
                ref.reset()
                twin.reset()
            else:
                ref.reset(None, ids)
                twin.reset(None, ids)
            resets += len(ids)
            assert_same(ref, twin, f"reset at {step}")
        if on_illegal == "noop":
            actions = rng.integers(0, ref.n_actions, size=(batch, ref.A))
        else:
            actions = np.array(
                [[rng.choice(np.flatnonzero(row)) for row in ref.legal[b]] for b in range(batch)]
            )
        observe = (False, True, "team")[step % 3]
        active = rng.random(batch) < 0.8 if hold else None
        # Two steps in five ask for lean or minimal records (each a different
        # compiled step).
        records = {2: "minimal", 4: "lean"}.get(step % 5, "full")
        a = ref.step(
            actions, on_illegal=on_illegal, observe=observe, active=active, records=records
        )
        # Every other step writes into the twin's reused record buffers: stale
        # values left from the step before would show up as a mismatch.
        b = twin.step(
            actions,
            on_illegal=on_illegal,
            observe=observe,
            active=active,
            reuse_records=step % 2 == 1,
            records=records,
        )
        for name in OUTCOME:
            if name in RECORD_OMITS[records]:
                assert getattr(a, name) is None and getattr(b, name) is None, name
                continue
            assert np.array_equal(getattr(a, name), getattr(b, name)), f"step {step}: {name}"
        if observe:
            assert np.array_equal(a.observations, b.observations), f"step {step}"
            assert np.array_equal(a.action_masks, b.action_masks), f"step {step}"
            assert np.array_equal(a.observations, ref.observe(team=observe == "team")), step
        else:
            assert a.observations is None and b.observations is None
        assert_same(ref, twin, f"step {step}")
    return resets


@pytest.mark.parametrize("batch", [1, 3])
def test_twin_matches_reference_over_episodes(task_id, batch):
    resets = run_pair(get_task(task_id), batch, steps=220, seed=11 * batch)
    assert resets >= batch  # the comparison spans episode boundaries


def test_twin_matches_reference_when_masked_actions_become_noops():
    run_pair(get_task("hard"), 2, steps=120, seed=5, on_illegal="noop")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    params=st.fixed_dictionaries(
        {
            "n_investigators": st.integers(1, 4),
            "investigation_budget": st.integers(0, 4),
            "n_services": st.integers(2, 14),
            "n_slots": st.integers(1, 10),
            "queue_capacity": st.integers(10, 30),
            "base_incident_rate": st.floats(0.0, 4.0),
            "noise_rate": st.floats(0.0, 5.0),
            "cascade_prob": st.floats(0.0, 1.0),
            "critical_share": st.floats(0.0, 1.0),
            "damage_rate": st.floats(0.0, 0.6),
            "cascade_delay_max": st.integers(2, 4),
            "max_steps": st.integers(5, 25),
            "failure_threshold": st.integers(0, 5),
        }
    ),
)
def test_twin_matches_reference_for_any_task(seed, params):
    depth = 1 + seed % min(3, params["n_services"])
    config = get_task("medium").replace(graph_depth=depth, **params)
    run_pair(config, 2, steps=40, seed=seed)


def test_backend_selection():
    cfg = get_task("easy")
    assert type(make_sim(cfg, backend="numpy")) is AlertSim
    assert isinstance(make_sim(cfg, backend="numba"), fast.FastAlertSim)
    assert isinstance(make_sim(cfg), fast.FastAlertSim)  # auto picks numba when installed
    with pytest.raises(ValueError, match="backend 'gpu' is not one of"):
        make_sim(cfg, backend="gpu")
    assert multiagent.parallel_env("easy", backend="numpy").backend == "numpy"
    assert multiagent.parallel_env("easy").backend == "numba"


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_rejected_actions_change_nothing(backend):
    sim = make_sim(get_task("medium"), backend=backend)
    sim.reset([3])
    before = {name: np.copy(getattr(sim, name)) for name in STATE}
    desk_investigates = np.zeros((1, sim.A), dtype=np.int64)
    desk_investigates[0, -1] = 1 + INVESTIGATE
    with pytest.raises(ValueError, match=r"action 1 of agent 3 \(env 0\) is masked"):
        sim.step(desk_investigates)
    with pytest.raises(ValueError, match="action 99 is out of range"):
        sim.step(np.full((1, sim.A), 99))
    with pytest.raises(ValueError, match="actions must have shape"):
        sim.step(np.zeros((2, sim.A), dtype=np.int64))
    with pytest.raises(TypeError, match="actions must be integers"):
        sim.step(np.zeros((1, sim.A)))
    allowed = r"records must be one of \('full', 'lean', 'minimal'\), got"
    with pytest.raises(ValueError, match=f"{allowed} 'none'"):
        sim.step(np.zeros((1, sim.A), dtype=np.int64), records="none")
    with pytest.raises(ValueError, match=f"{allowed} None"):
        sim.step(np.zeros((1, sim.A), dtype=np.int64), records=None)
    with pytest.raises(TypeError, match="masks must be a bool, got 'no'"):
        sim.step(np.zeros((1, sim.A), dtype=np.int64), observe=True, masks="no")
    for name, value in before.items():
        assert np.array_equal(getattr(sim, name), value), name
    # The generator was not touched either: the next step matches a fresh twin's.
    twin = make_sim(get_task("medium"), backend=backend)
    twin.reset([3])
    noop = np.zeros((1, sim.A), dtype=np.int64)
    assert np.array_equal(sim.step(noop).components, twin.step(noop).components)
    assert np.array_equal(sim.alerts, twin.alerts)


def test_reused_records_are_one_set_of_buffers_that_a_rejected_step_leaves_alone():
    sim = fast.FastAlertSim(get_task("medium"), 1)
    sim.reset([3])
    noop = np.zeros((1, sim.A), dtype=np.int64)
    first = sim.step(noop, reuse_records=True)
    kept = first.copy()
    desk_investigates = noop.copy()
    desk_investigates[0, -1] = 1 + INVESTIGATE
    with pytest.raises(ValueError, match="is masked"):
        sim.step(desk_investigates, reuse_records=True)
    for name in OUTCOME[1:]:
        assert np.array_equal(getattr(first, name), getattr(kept, name)), name
    second = sim.step(noop, reuse_records=True)
    for name in OUTCOME[1:]:
        assert getattr(second, name) is getattr(first, name), name
    fresh = sim.step(noop)
    assert all(getattr(fresh, name) is not getattr(first, name) for name in OUTCOME)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_visible_view_of_an_env_outside_the_batch_is_an_index_error(backend):
    sim = make_sim(get_task("easy"), batch_size=2, backend=backend)
    sim.reset([1, 2])
    assert sim.visible_view(1)[0] > 0
    with pytest.raises(IndexError):
        sim.visible_view(2)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_step_after_end_needs_reset(backend):
    sim = make_sim(get_task("easy").replace(max_steps=2), backend=backend)
    sim.reset([0])
    noop = np.zeros((1, sim.A), dtype=np.int64)
    sim.step(noop)
    out = sim.step(noop)
    assert out.truncated[0] and sim.n_needing_reset == 1
    with pytest.raises(RuntimeError, match=r"envs \[0\] need reset"):
        sim.step(noop)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_forcing_past_the_end_is_refused_not_a_crash(backend):
    """Even with needs_reset forced off, an ended env refuses to step."""
    sim = make_sim(get_task("easy").replace(max_steps=12), backend=backend)
    sim.reset([0])
    noop = np.zeros((1, sim.A), dtype=np.int64)
    with pytest.raises(RuntimeError, match="has ended"):
        for _ in range(40):
            sim.needs_reset[:] = False
            sim.n_needing_reset = 0
            sim.step(noop)


@pytest.mark.parametrize("task_id", ["easy", "hard"])
def test_autoreset_in_the_kernel_matches_the_reference(task_id):
    """step_autoreset: the twin resets ended envs inside its compiled step; the
    reference resets them in Python and holds them. Same states, same rows.
    A second pair steps with lean or minimal records, and every other step
    without a copy of the masks (``masks=False``): the same transition, and
    the same rows except the omitted ones."""
    batch = 5
    config = get_task(task_id)
    ref, twin = AlertSim(config, batch), fast.FastAlertSim(config, batch)
    lean_ref, lean_twin = AlertSim(config, batch), fast.FastAlertSim(config, batch)
    for sim in (ref, twin, lean_ref, lean_twin):
        sim.reset(list(range(batch)))
    rng = np.random.default_rng(3)
    resets = 0
    for step in range(160):
        actions = (rng.random(ref.legal.shape) * ref.legal).argmax(axis=2)
        resets += int(ref.needs_reset.sum())
        a, stepped_a = ref.step_autoreset(actions, observe=True)
        b, stepped_b = twin.step_autoreset(actions, observe=True)
        with_masks = step % 2 == 0
        level = "minimal" if step % 3 == 1 else "lean"
        leans = [
            sim.step_autoreset(actions, observe=True, records=level, masks=with_masks)
            for sim in (lean_ref, lean_twin)
        ]
        assert np.array_equal(stepped_a, stepped_b), step
        assert_same_outcome(a, b, step)
        assert_same(ref, twin, f"step {step}")
        for (lean, stepped), sim in zip(leans, (lean_ref, lean_twin)):
            assert np.array_equal(stepped, stepped_a), step
            for name in OUTCOME:
                if name in RECORD_OMITS[level]:
                    assert getattr(lean, name) is None, name
                else:
                    assert np.array_equal(getattr(lean, name), getattr(a, name)), (step, name)
            assert np.array_equal(lean.observations, a.observations), step
            if with_masks:
                assert np.array_equal(lean.action_masks, a.action_masks), step
            else:
                assert lean.action_masks is None, step
            assert np.array_equal(sim.legal, a.action_masks), step  # still readable
            assert_same(ref, sim, f"lean, step {step}")
    assert resets >= batch  # the run spans autoresets


def test_a_batch_large_enough_to_prefetch_matches_the_reference():
    """From `PREFETCH_FROM_BATCH` envs on, the kernel hints each env's state
    ahead of use: a path of its own, held to the reference like the rest."""
    batch = fast.PREFETCH_FROM_BATCH
    config = get_task("hard")
    ref, twin = AlertSim(config, batch), fast.FastAlertSim(config, batch)
    for sim in (ref, twin):
        sim.reset(list(range(batch)))
    rng = np.random.default_rng(8)
    resets = 0
    for step in range(40):
        actions = (rng.random(ref.legal.shape) * ref.legal).argmax(axis=2)
        resets += int(ref.needs_reset.sum())
        # The vector envs' calls: no copy of the masks, on odd steps; minimal
        # records (the team view's) on every third.
        level = "minimal" if step % 3 == 0 else "lean"
        options = {"observe": "team", "records": level, "masks": step % 2 == 0}
        a, _ = ref.step_autoreset(actions, **options)
        b, _ = twin.step_autoreset(actions, **options)
        assert (a.action_masks is None) == (step % 2 == 1), step
        for name in RECORD_OMITS[level]:
            assert getattr(a, name) is None and getattr(b, name) is None, (step, name)
        assert_same_outcome(a, b, step)
        assert_same_state(ref, twin, f"step {step}")
    assert resets > batch  # the run spans autoresets


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_rejected_autoreset_step_resets_nothing(backend):
    """The actions are checked before the ended envs are reset: a rejected call
    leaves every env as it was, and the next call is the one a sim that never
    saw it makes."""
    config = get_task("medium").replace(max_steps=2)
    sim, twin = make_sim(config, 2, backend), make_sim(config, 2, backend)
    noop = np.zeros((2, sim.A), dtype=np.int64)
    for each in (sim, twin):
        each.reset([4, 5])
        for _ in range(2):  # env 0 ends; env 1 is held at t=0
            each.step(noop, active=np.array([True, False]))
    assert sim.needs_reset.tolist() == [True, False]
    before = {name: np.copy(getattr(sim, name)) for name in STATE}
    desk_investigates = noop.copy()
    desk_investigates[1, -1] = 1 + INVESTIGATE
    with pytest.raises(ValueError, match=r"agent 3 \(env 1\) is masked"):
        sim.step_autoreset(desk_investigates)
    with pytest.raises(ValueError, match=r"records must be one of \(.*\), got 'some'"):
        sim.step_autoreset(noop, records="some")
    with pytest.raises(ValueError, match="observe must be False, True or 'team'"):
        sim.step_autoreset(noop, observe="all")
    with pytest.raises(TypeError, match="masks must be a bool, got 0"):
        sim.step_autoreset(noop, observe=True, masks=0)
    for name, value in before.items():
        assert np.array_equal(getattr(sim, name), value), name
    a, stepped_a = sim.step_autoreset(noop)
    b, stepped_b = twin.step_autoreset(noop)
    assert stepped_a.tolist() == stepped_b.tolist() == [False, True]
    for name in OUTCOME:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert_same(twin, sim, "after the rejected call")


def test_counter_streams_match_their_vectorised_draws():
    """The kernel's one-at-a-time uniforms are the reference's block draws."""
    from adaptive_alert_triage.sim.rng import block_uniforms

    keys = np.array([0, 1, 2**63 + 5, 2**64 - 1], dtype=np.uint64)
    block = block_uniforms(keys, 7, 50)
    for k, key in enumerate(keys):
        for i in range(50):
            assert fast._u(key, 7, i) == block[k, i]
    assert ((block >= 0.0) & (block < 1.0)).all()


def test_twin_matches_reference_when_envs_are_held_still():
    run_pair(get_task("hard"), 4, steps=200, seed=8, hold=True)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_held_envs_do_not_change(backend):
    sim = make_sim(get_task("medium"), batch_size=3, backend=backend)
    sim.reset([1, 2, 3])
    before = {name: np.copy(getattr(sim, name)) for name in STATE}
    actions = np.zeros((3, sim.A), dtype=np.int64)
    active = np.array([True, False, True])
    out = sim.step(actions, active=active, observe=True)
    for name, value in before.items():
        if name not in ("legal",):
            assert np.array_equal(getattr(sim, name)[1], value[1]), name
    assert int(sim.t[0]) == 1 and int(sim.t[1]) == 0
    assert out.reward[1] == 0 and (out.status[1] == 0).all() and not out.service_events[1].any()
    assert np.array_equal(out.observations[1], sim.observe()[1])
    with pytest.raises(ValueError, match="active must be a bool array"):
        sim.step(actions, active=np.array([1, 0, 1]))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copied_sim_continues_the_same_trajectory_on_its_own_arrays(backend, how):
    """Vector-env wrappers (SuperSuit, multiprocessing) pickle or deep-copy their
    envs; the numba backend then binds its kernel to the copy's own arrays."""
    import copy
    import pickle

    sim = make_sim(get_task("hard"), 3, backend)
    sim.reset([5, 6, 7])
    rng = np.random.default_rng(1)

    def actions(s: AlertSim) -> np.ndarray:
        return (rng.random(s.legal.shape) * s.legal).argmax(-1)

    for _ in range(9):
        sim.step_autoreset(actions(sim))
    twin = pickle.loads(pickle.dumps(sim)) if how == "pickle" else copy.deepcopy(sim)
    assert_same(sim, twin, "right after the copy")
    for name in AlertSim._VIEWS:  # the copy's named fields are views of its own arrays
        assert not np.shares_memory(getattr(twin, name), getattr(sim, name)), name
    assert np.shares_memory(twin.inc_damage, twin.inc_float)
    assert np.shares_memory(twin.noise_total, twin.totals)
    before = sim.alerts.copy()
    first = actions(twin)
    twin.step_autoreset(first)  # the copy moves alone: the original stays put
    assert np.array_equal(sim.alerts, before)
    sim.step_autoreset(first)
    for step in range(120):  # past autoresets: every env of "hard" ends within 50 steps
        assert_same(sim, twin, f"step {step}")
        chosen = actions(sim)
        out, _ = sim.step_autoreset(chosen, observe=True)
        twin_out, _ = twin.step_autoreset(chosen, observe=True)
        assert np.array_equal(out.observations, twin_out.observations)
        assert np.array_equal(out.reward, twin_out.reward)


# ---------------------------------------------------------------- actions outside the space
def _error(call) -> str | None:
    try:
        call()
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_actions_of_an_env_being_autoreset_must_still_be_in_the_space(backend):
    """Its action is ignored, but a value outside the space is still garbage."""
    v = AlertTriageVectorEnv(1, "easy", max_steps=1, backend=backend)
    v.reset(seed=0)
    v.step(np.zeros((1, v.sim.A), dtype=np.int64))  # ends the episode
    with pytest.raises(ValueError, match=r"action -5 is out of range; allowed 0\.\.32"):
        v.step(np.array([[-5, 999, 7]]))
    with pytest.raises(ValueError, match="action 999 is out of range"):
        v.step(np.array([[0, 999, 0]]))
    # In range but masked (the desk investigating) is fine: it is ignored.
    _, reward, *_ = v.step(np.array([[0, 0, 1 + INVESTIGATE]]))
    assert reward[0] == 0.0 and int(v.sim.t[0]) == 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_held_rows_are_range_checked_and_a_rejected_call_changes_nothing(backend):
    config = get_task("medium").replace(max_steps=2)
    sim, twin = make_sim(config, 2, backend), make_sim(config, 2, backend)
    noop = np.zeros((2, sim.A), dtype=np.int64)
    held_bad = noop.copy()
    held_bad[1, 2] = 10**6
    for each in (sim, twin):
        each.reset([4, 5])
    with pytest.raises(ValueError, match="action 1000000 is out of range"):
        sim.step(held_bad, active=np.array([True, False]))
    for each in (sim, twin):
        for _ in range(2):  # env 0 ends; env 1 is held at t=0
            each.step(noop, active=np.array([True, False]))
    before = {name: np.copy(getattr(sim, name)) for name in STATE}
    ended_bad = noop.copy()
    ended_bad[0, 0] = -1
    with pytest.raises(ValueError, match="action -1 is out of range"):
        sim.step_autoreset(ended_bad)
    for name, value in before.items():
        assert np.array_equal(getattr(sim, name), value), name
    a, _ = sim.step_autoreset(noop)
    b, _ = twin.step_autoreset(noop)
    for name in OUTCOME:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_autoreset_needs_every_env_reset_again_after_its_streams_are_forgotten(backend):
    """The check that every env has had a reset is kept once it passes; only
    `forget_streams` (which leaves envs without a stream) brings it back."""
    sim = make_sim(get_task("easy"), 3, backend)
    noop = np.zeros((3, sim.A), dtype=np.int64)
    message = "step_autoreset\\(\\) called before every env was reset"
    with pytest.raises(RuntimeError, match=message):
        sim.step_autoreset(noop)
    sim.reset([7, None], env_ids=[0, 2])  # env 1 has never been reset
    with pytest.raises(RuntimeError, match=message):
        sim.step_autoreset(noop)
    sim.reset([8], env_ids=[1])
    _, stepped = sim.step_autoreset(noop)
    assert stepped.all() and int(sim.t.min()) == 1
    sim.forget_streams()
    with pytest.raises(RuntimeError, match=message):
        sim.step_autoreset(noop)
    assert int(sim.t.min()) == 1  # refused before anything changed
    sim.reset()
    _, stepped = sim.step_autoreset(noop)
    assert stepped.all() and int(sim.t.max()) == 1


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_an_unsigned_action_beyond_int64_is_named_as_given(backend):
    big = 2**63 + 5
    env = AlertTriageGymEnv("easy", backend=backend)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=f"action {big} is out of range; allowed 0..32"):
        env.step(np.array([big, 0, 0], np.uint64))
    v = AlertTriageVectorEnv(1, "easy", max_steps=1, backend=backend)
    v.reset(seed=0)
    v.step(np.zeros((1, 3), dtype=np.uint64))  # ends: the next step autoresets it
    with pytest.raises(ValueError, match=f"action {big} is out of range"):
        v.step(np.array([[0, big, 0]], np.uint64))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    dtype=st.sampled_from([np.int8, np.int64, np.uint8, np.uint64]),
    held=st.lists(st.booleans(), min_size=2, max_size=2),
    autoreset=st.booleans(),
)
def test_both_backends_refuse_the_same_first_action_outside_the_space(data, dtype, held, autoreset):
    """Any integer dtype, held rows or not: both backends name the first
    out-of-range value (row-major) as the caller gave it, or both step."""
    config = get_task("medium")
    n_actions = 1 + 4 * config.n_slots
    info = np.iinfo(dtype)
    actions = data.draw(
        hnp.arrays(dtype, (2, config.n_agents), elements=st.integers(max(info.min, -3), info.max))
        | hnp.arrays(
            dtype, (2, config.n_agents), elements=st.integers(max(info.min, -1), n_actions)
        )
    )
    active = ~np.array(held)
    bad = actions[(actions < 0) | (actions >= n_actions)]
    errors = []
    for backend in ("numpy", "numba"):
        sim = make_sim(config, 2, backend)
        sim.reset([1, 2])
        if autoreset:
            sim.needs_reset[:] = held  # ended envs the call resets first
            sim.n_needing_reset = int(sim.needs_reset.sum())
            call = functools.partial(sim.step_autoreset, actions, on_illegal="noop")
        else:
            call = functools.partial(sim.step, actions, on_illegal="noop", active=active)
        errors.append(_error(call))
    allowed = f"allowed 0..{n_actions - 1}"
    expected = f"action {int(bad[0])} is out of range; {allowed}" if len(bad) else None
    assert errors == [expected, expected]
