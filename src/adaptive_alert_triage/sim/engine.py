"""State arrays and one transition: decisions in, outcome records out.

Every array has a leading env axis ``B``; a single environment is a batch of
one, so every face shares this one transition. The team is ``A`` agents:
``n_investigators`` investigators (indices ``0..A-2``) and the escalation desk
(index ``A-1``).

Actions are integers in ``[0, 1 + n_slots * 4)``: 0 is NOOP and
``1 + slot * 4 + verb`` applies ``verb`` (INVESTIGATE, IGNORE, ESCALATE, DELAY)
to the alert in visible queue slot ``slot``. The queue is kept in arrival
order, so slot 0 is always the oldest alert.

Arbitration (deterministic given the seed), applied to one step's decisions:
1. Each step a priority order over the agents is drawn from the env's own
   random stream (a uniformly random permutation).
2. Going down that order, a decision on an alert that a higher-priority agent
   already decided this step is denied (reason ``conflict``).
3. INVESTIGATE and ESCALATE are claims on the K budget. Claims are granted in
   priority order while budget remains; the rest are denied (reason
   ``budget``). A denied alert stays queued, untouched.
4. Among granted claims on alerts of the same incident, the highest-priority
   one takes the incident; the others are redundant (wasted slots).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from .config import ACTION_TYPES, REWARD_COMPONENTS, TaskConfig
from .incidents import (
    CASCADE_SEVERITY,
    CASCADE_TYPE_CDF,
    CRITICAL_SEVERITY,
    MINOR_SEVERITY,
    N_TYPES,
    NOISE_CONFIDENCE,
    NOISE_SEVERITY,
    NOISE_TYPE_CDF,
    REAL_CONFIDENCE,
    RELATED_TYPE,
    ROOT_TYPE_CDF,
    DrawLayout,
    categorical,
    poisson_cdf,
    uniform,
)
from .rng import (
    SQRT3,
    block_uniforms,
    episode_draws,
    episode_key,
    reset_uniforms,
    stream_key_from_seed,
)
from .topology import build_layered_dag, fixed_topology


def check_seed(seed: object) -> int | None:
    """``seed`` as a Python int (or None), the one rule every face applies:
    ints and numpy ints, not bools (a bool is an int to Python, never a seed
    anyone meant), and not negative (PCG64 takes none)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be a non-negative int or None, got {seed!r} ({type(seed).__name__})"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


INVESTIGATE, IGNORE, ESCALATE, DELAY = range(4)
N_VERBS = len(ACTION_TYPES)

ROLE_INVESTIGATOR, ROLE_DESK = 0, 1
#: Verbs each role may use (rows: role; columns: verb).
ROLE_VERBS = np.array(
    [
        [True, True, False, True],  # investigator: INVESTIGATE, IGNORE, DELAY
        [False, True, True, True],  # desk: IGNORE, ESCALATE, DELAY
    ]
)

# Decision status codes.
STATUS_NAMES = ("noop", "granted", "denied", "denied", "masked")
STATUS_NOOP, STATUS_GRANTED, STATUS_DENIED_BUDGET, STATUS_DENIED_CONFLICT, STATUS_MASKED = range(5)
DENIAL_REASONS = (None, None, "budget", "conflict", "masked_action_replaced_by_noop")

# Decision outcome codes.
OUTCOME_NAMES = (
    "none",
    "resolved_critical",
    "resolved_minor",
    "wasted_on_false_positive",
    "redundant",
    "escalated",
    "false_positive_ignored",
    "critical_ignored",
    "minor_ignored",
    "already_handled",
    "delayed",
)
(
    OUT_NONE,
    OUT_RESOLVED_CRITICAL,
    OUT_RESOLVED_MINOR,
    OUT_WASTED,
    OUT_REDUNDANT,
    OUT_ESCALATED,
    OUT_NOISE_IGNORED,
    OUT_CRITICAL_IGNORED,
    OUT_MINOR_IGNORED,
    OUT_ALREADY_HANDLED,
    OUT_DELAYED,
) = range(len(OUTCOME_NAMES))

# Reward component indices (same order as REWARD_COMPONENTS).
(
    C_CRITICAL,
    C_CASCADE,
    C_FP_IGNORED,
    C_UNNECESSARY,
    C_MISSED,
    C_FAILURE,
) = range(len(REWARD_COMPONENTS))

# Columns of the alert table.
AL_ACTIVE, AL_COUNTER, AL_SERVICE, AL_INCIDENT, AL_TYPE = 0, 1, 2, 3, 4
AL_TRUE_SEV, AL_VIS_SEV, AL_CONF, AL_BIRTH, AL_GROUP, AL_NOISE = 5, 6, 7, 8, 9, 10
N_ALERT_FIELDS = 11

# Fields of the packed incident arrays (one open incident per service).
IB_ACTIVE, IB_CRITICAL, IB_CASCADE, IB_ALERTED = range(4)
II_UID, II_GROUP, II_TYPE, II_SILENT_UNTIL, II_ESCALATED_UNTIL, II_ESCALATOR = range(6)
IF_SEVERITY, IF_DAMAGE = range(2)

SLOT_FEATURES = 3 + N_TYPES + 3  # present, severity, confidence, type, age, service, same-service
GLOBAL_FEATURES = 7
ROLE_FEATURES = 2

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def alert_id_from_counter(counter: np.ndarray | int, key: np.ndarray | int) -> np.ndarray:
    """Opaque, unique alert ids: a keyed 64-bit bijection of the episode counter.

    The mixer is MurmurHash3's 64-bit finaliser, which is invertible, so
    distinct counters always give distinct ids, while the ids carry no visible
    trace of arrival order.
    """
    with np.errstate(over="ignore"):
        x = np.asarray(counter, dtype=np.uint64) ^ np.asarray(key, dtype=np.uint64)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return x & _M64


def format_alert_id(raw: int) -> str:
    """The public id of a raw alert id (a Python or numpy integer)."""
    return "%016x" % raw  # noqa: UP031 - printf formatting is the fastest here, per alert


# Columns of StepOutcome.decisions (int64), .service_events (bool) and .counts (int64).
D_SLOT, D_VERB, D_STATUS, D_OUTCOME, D_INCIDENT, D_GROUP, D_SERVICE, D_TYPE, D_NOISE = range(9)
N_DECISION_FIELDS = 9
E_FAILED, E_CASCADE, E_ESCALATION_RESOLVED, E_SELF_RESOLVED, E_RESOLVED, E_FIRST_ALERT = range(6)
N_SERVICE_EVENTS = 6
# Columns of StepOutcome.incidents (int64): the incident that closed on a
# service this step, the incident whose first alert arrived, and its flags.
I_CLOSED, I_FIRST_ALERT, I_FIRST_FLAGS = range(3)
N_INCIDENT_FIELDS = 3
FLAG_CRITICAL, FLAG_CASCADE = 1, 2
(
    N_NEW_ALERTS,
    N_NEW_NOISE,
    N_DROPPED,
    N_DROPPED_REAL,
    N_NOISE_CLEARED,
    N_FAILED,
    N_TERMINATED,
    N_TRUNCATED,
    N_DENIED,
) = range(9)
N_COUNTS = 9


@dataclasses.dataclass
class StepOutcome:
    """What one transition did, as a few packed arrays over (B, ...), with named
    views. Everything downstream (rewards, graders, infos) is computed from
    these records.

    Per decision (B, A): ``slot`` and ``verb`` (-1 for NOOP), ``status``
    (STATUS_*), ``outcome`` (OUT_*), and the decided alert's ``alert_id`` and
    hidden truth (``true_severity``, ``is_noise``, ``incident``, ``group``,
    ``service``, ``alert_type``; -1 where there is none), and ``agent_reward``.
    Per service (B, S): ``failures``, ``cascades`` (cascade incidents started),
    ``escalations_resolved``, ``self_resolved``, ``resolved`` (by an
    investigation), ``first_alerts``, and in ``incidents`` the uid of the
    incident that closed (-1 if none), the uid of the incident whose first alert
    arrived (-1 if none) with its FLAG_* bits, and in ``incident_severity`` that
    incident's true severity. Per env (B,): ``new_alerts``,
    ``new_noise``, ``dropped_alerts`` / ``dropped_real`` (arrivals that found
    the queue full: reported, never silent), ``noise_cleared``, ``n_failed``,
    ``terminated``, ``truncated``, ``denied`` (claims denied for the budget K)
    and the team ``reward``. Rewards are exactly
    the sums of their components. A step with ``records="lean"`` leaves the
    fields `LEAN_OMITS` names as None, and ``records="minimal"`` those
    `MINIMAL_OMITS` names.
    """

    actions: np.ndarray  # (B, A) the actions as applied (masked ones replaced by 0)
    decisions: np.ndarray  # (B, A, N_DECISION_FIELDS) int64
    true_severity: np.ndarray  # (B, A) float64
    alert_id: np.ndarray  # (B, A) uint64 raw id of the decided alert (0 for NOOP)
    components: np.ndarray  # (B, C) team reward by component
    agent_components: np.ndarray  # (B, A, C) individual credit; sums to components
    service_events: np.ndarray  # (B, S, N_SERVICE_EVENTS) bool
    counts: np.ndarray  # (B, N_COUNTS) int64
    incidents: np.ndarray  # (B, S, N_INCIDENT_FIELDS) int64
    incident_severity: np.ndarray  # (B, S) float64, for first_alerts
    reward: np.ndarray  # (B,) team reward = components.sum(axis=1)
    agent_reward: np.ndarray  # (B, A) individual rewards = agent_components.sum(axis=2)
    # With step(..., observe=True): what every agent sees next, and its mask.
    observations: np.ndarray | None = None  # (B, A, obs_dim) float32
    action_masks: np.ndarray | None = None  # (B, A, n_actions) int8

    def copy(self) -> StepOutcome:
        """An outcome that owns every array (from one whose records are reused
        buffers, see `AlertSim.step`)."""
        return StepOutcome(
            *(
                None if value is None else value.copy()
                for value in (getattr(self, f.name) for f in dataclasses.fields(self))
            )
        )

    slot = property(lambda self: self.decisions[:, :, D_SLOT])
    verb = property(lambda self: self.decisions[:, :, D_VERB])
    status = property(lambda self: self.decisions[:, :, D_STATUS])
    outcome = property(lambda self: self.decisions[:, :, D_OUTCOME])
    incident = property(lambda self: self.decisions[:, :, D_INCIDENT])
    group = property(lambda self: self.decisions[:, :, D_GROUP])
    service = property(lambda self: self.decisions[:, :, D_SERVICE])
    alert_type = property(lambda self: self.decisions[:, :, D_TYPE])
    is_noise = property(lambda self: self.decisions[:, :, D_NOISE] > 0)
    failures = property(lambda self: self.service_events[:, :, E_FAILED])
    cascades = property(lambda self: self.service_events[:, :, E_CASCADE])
    escalations_resolved = property(lambda self: self.service_events[:, :, E_ESCALATION_RESOLVED])
    self_resolved = property(lambda self: self.service_events[:, :, E_SELF_RESOLVED])
    resolved = property(lambda self: self.service_events[:, :, E_RESOLVED])
    first_alerts = property(lambda self: self.service_events[:, :, E_FIRST_ALERT])
    new_alerts = property(lambda self: self.counts[:, N_NEW_ALERTS])
    new_noise = property(lambda self: self.counts[:, N_NEW_NOISE])
    dropped_alerts = property(lambda self: self.counts[:, N_DROPPED])
    dropped_real = property(lambda self: self.counts[:, N_DROPPED_REAL])
    noise_cleared = property(lambda self: self.counts[:, N_NOISE_CLEARED])
    n_failed = property(lambda self: self.counts[:, N_FAILED])
    terminated = property(lambda self: self.counts[:, N_TERMINATED] > 0)
    truncated = property(lambda self: self.counts[:, N_TRUNCATED] > 0)
    denied = property(lambda self: self.counts[:, N_DENIED])


#: Per-env state a step may change (held envs get theirs back).
HELD_STATE = (
    "t",
    "excitation",
    "failures",
    "alert_counter",
    "incident_counter",
    "down_until",
    "inc_bool",
    "inc_int",
    "inc_float",
    "alerts",
    "totals",
    "terminated",
    "truncated",
    "needs_reset",
    "extent",
)


#: The records that ``step(..., records="lean")`` leaves out (None).
LEAN_OMITS = (
    "true_severity",
    "alert_id",
    "agent_components",
    "service_events",
    "incidents",
    "incident_severity",
    "agent_reward",
)
#: The records that ``step(..., records="minimal")`` leaves out: the per-member
#: decisions too, so what is left is the team's (components, counts, reward).
MINIMAL_OMITS = ("decisions", *LEAN_OMITS)
#: The records each ``records=`` level leaves out.
RECORD_OMITS = {"full": (), "lean": LEAN_OMITS, "minimal": MINIMAL_OMITS}


def neutralize(out: StepOutcome, held: np.ndarray) -> None:
    """Make the outcome rows of ``held`` envs say that nothing happened."""
    out.actions[held] = 0
    out.decisions[held] = -1
    out.decisions[held, :, D_STATUS] = 0
    out.decisions[held, :, D_OUTCOME] = 0
    out.decisions[held, :, D_NOISE] = 0
    out.true_severity[held] = 0.0
    out.alert_id[held] = 0
    out.components[held] = 0.0
    out.agent_components[held] = 0.0
    out.service_events[held] = False
    out.counts[held] = 0
    out.incidents[held] = -1
    out.incident_severity[held] = 0.0
    out.reward[held] = 0.0
    out.agent_reward[held] = 0.0


class AlertSim:
    """A batch of ``batch_size`` independent alert-triage environments."""

    def __init__(self, config: TaskConfig, batch_size: int = 1) -> None:
        if not isinstance(config, TaskConfig):
            raise TypeError(f"config must be a TaskConfig, got {type(config).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = config
        self.B = int(batch_size)
        self.S = config.n_services
        self.Q = config.queue_capacity
        self.N = config.n_slots
        self.A = config.n_agents
        self.M = config.max_noise_per_step
        self.K = config.investigation_budget
        self.n_actions = 1 + self.N * N_VERBS
        self.roles = np.array([ROLE_INVESTIGATOR] * config.n_investigators + [ROLE_DESK])
        self.layout = DrawLayout(config)
        self._reward_vector = np.array(config.reward_vector)
        self._noise_cdf = poisson_cdf(config.noise_rate, self.M)
        # P(no cascade | n failed parents), tabulated so every backend agrees bit for bit.
        self._survive = (1.0 - config.cascade_prob) ** np.arange(self.S + 1)
        # Verb legality for each agent, laid out like the action space.
        self._agent_verbs = ROLE_VERBS[self.roles]  # (A, 4)
        self._role_features = np.eye(ROLE_FEATURES, dtype=np.float32)[self.roles]
        self._bi = np.arange(self.B)[:, None]
        # Each env's random stream (see `rng`): its key, and the episode it is in.
        self.stream_key = np.zeros(self.B, dtype=np.uint64)
        self.episode = np.full(self.B, -1, dtype=np.int64)  # -1: never reset
        self._every_env_started = False  # see `_require_started`
        self.episode_key = np.zeros(self.B, dtype=np.uint64)
        # A scenario's fixed dependency graph, or None to draw one per episode.
        self._fixed_graph = (
            None if config.topology is None else fixed_topology(config.topology, self.S)
        )
        self.base_dim = self.N * SLOT_FEATURES + GLOBAL_FEATURES + self.S
        self.obs_dim = self.base_dim + ROLE_FEATURES
        self.state_dim = (
            self.N * SLOT_FEATURES
            + GLOBAL_FEATURES
            + self.S
            + self.N * 3
            + self.S * 5
            + self.S * self.S
        )
        self._allocate()
        self.needs_reset = np.ones(self.B, dtype=bool)
        self.n_needing_reset = self.B  # kept in step with needs_reset, cheap to test

    # ------------------------------------------------------------------ setup
    def _allocate(self) -> None:
        B, S, Q = self.B, self.S, self.Q
        self.t = np.zeros(B, dtype=np.int64)
        self.adj = np.zeros((B, S, S), dtype=bool)
        self.layer = np.zeros((B, S), dtype=np.int64)
        self.service_weight = np.full((B, S), 1.0 / S)
        self.id_key = np.zeros(B, dtype=np.uint64)
        self.excitation = np.zeros(B)
        self.failures = np.zeros(B, dtype=np.int64)
        self.alert_counter = np.zeros(B, dtype=np.int64)
        self.incident_counter = np.zeros(B, dtype=np.int64)
        # Times and incident numbers are int32: half the cache lines of int64
        # for the state a vector step reads most (2-6% of a B=4096 step in
        # paired runs, `benchmarks/ab_vector.py --paired`). Nothing here can
        # reach 2**31: a time is at most max_steps plus a delay, and an episode
        # opens at most two incidents per service per step, one by its arrivals
        # and one by ingested alerts (the config's INT_RANGES; a test holds them
        # to it).
        self.down_until = np.zeros((B, S), dtype=np.int32)
        # The open incident of each service, packed by dtype; the named fields
        # are views, so a compiled backend can take three arrays.
        self.inc_bool = np.zeros((B, S, 4), dtype=bool)
        self.inc_int = np.full((B, S, 6), -1, dtype=np.int32)
        self.inc_float = np.zeros((B, S, 2))
        self.alerts = np.zeros((B, Q, N_ALERT_FIELDS))
        # Rows at and past extent[b] of env b's queue are all zeros (an upper
        # bound on the queue's last occupied row, so loops can stop there).
        self.extent = np.zeros(B, dtype=np.int64)
        self.legal = np.zeros((B, self.A, self.n_actions), dtype=np.int8)
        self.terminated = np.zeros(B, dtype=bool)
        self.truncated = np.zeros(B, dtype=bool)
        # Episode totals, for the ends of episodes and for graders.
        # First-alert records of the alerts already firing when an episode opens
        # (same layout as StepOutcome.incidents / incident_severity).
        self.reset_incidents = np.full((B, S, 3), -1, dtype=np.int64)
        self.reset_incident_severity = np.zeros((B, S))
        self.totals = np.zeros((B, 2), dtype=np.int64)
        self._bind_views()

    # Named views of the packed arrays: name -> (packed array, column). A copy
    # (pickle, deepcopy: vector-env wrappers make both) leaves them out and binds
    # them over its own arrays, where copied views would be detached arrays that
    # writes never reach.
    _VIEWS: ClassVar[dict[str, tuple[str, int]]] = {
        "inc_active": ("inc_bool", IB_ACTIVE),
        "inc_critical": ("inc_bool", IB_CRITICAL),
        "inc_cascade": ("inc_bool", IB_CASCADE),
        "inc_alerted": ("inc_bool", IB_ALERTED),
        "inc_uid": ("inc_int", II_UID),
        "inc_group": ("inc_int", II_GROUP),
        "inc_type": ("inc_int", II_TYPE),
        "inc_silent_until": ("inc_int", II_SILENT_UNTIL),
        "inc_escalated_until": ("inc_int", II_ESCALATED_UNTIL),
        "inc_escalator": ("inc_int", II_ESCALATOR),
        "inc_severity": ("inc_float", IF_SEVERITY),
        "inc_damage": ("inc_float", IF_DAMAGE),
        "alerts_total": ("totals", 0),
        "noise_total": ("totals", 1),
    }

    def _bind_views(self) -> None:
        for name, (packed, column) in self._VIEWS.items():
            setattr(self, name, getattr(self, packed)[..., column])

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._VIEWS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_views()

    def reset(
        self,
        seeds: Sequence[int | None] | None = None,
        env_ids: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        """Start new episodes in ``env_ids`` (all envs by default).

        A seed gives the env a new random stream (its key drawn from PCG64
        seeded with it) and starts its episode 0; ``None`` moves the env to the
        next episode of the stream it has (a stream from OS entropy the first
        time).
        """
        ids = np.arange(self.B) if env_ids is None else np.asarray(env_ids, dtype=np.int64)
        if seeds is None:
            seeds = [None] * len(ids)
        if len(seeds) != len(ids):
            raise ValueError(f"got {len(seeds)} seeds for {len(ids)} envs")
        seeds = [check_seed(seed) for seed in seeds]
        for env, seed in zip(ids.tolist(), seeds):
            if seed is not None or self.episode[env] < 0:
                self.stream_key[env] = stream_key_from_seed(seed)
                self.episode[env] = 0
            else:
                self.episode[env] += 1
            with np.errstate(over="ignore"):
                self.episode_key[env] = episode_key(self.stream_key[env], self.episode[env])
        self._reset_rows(ids)
        self.n_needing_reset = int(self.needs_reset.sum())

    def forget_streams(self) -> None:
        """Every env needs a reset and has no stream: the next seedless reset
        draws a fresh one from OS entropy, as it does in a new sim."""
        self.episode[:] = -1
        self._every_env_started = False
        self.needs_reset[:] = True
        self.n_needing_reset = self.B

    def _reset_rows(self, ids: np.ndarray) -> None:
        """Open the episode whose key is in ``episode_key`` in each env of ``ids``
        and set their action masks (the compiled backend does both per env)."""
        for b in ids.tolist():
            self._reset_env(b)
        self._refresh_legal()

    def _reset_env(self, b: int) -> None:
        cfg = self.config
        S = self.S
        width = 2 + cfg.max_dependencies
        flat, u_weight, id_keys = reset_uniforms(self.episode_key[b : b + 1], S, width)
        order = np.empty(S, dtype=np.int64)
        u_graph = np.empty((S, width))
        # Some services are busier than others (Dirichlet weights).
        episode_draws(flat[0], u_weight[0], width, order, u_graph, self.service_weight[b])
        self.id_key[b] = id_keys[0]
        if self._fixed_graph is None:
            self.adj[b] = False
            build_layered_dag(
                order, u_graph, cfg.graph_depth, cfg.max_dependencies, self.adj[b], self.layer[b]
            )
        else:
            self.adj[b], self.layer[b] = self._fixed_graph
        self.t[b] = 0
        self.excitation[b] = 0.0
        self.failures[b] = 0
        self.alert_counter[b] = 0
        self.incident_counter[b] = 0
        self.down_until[b] = 0
        self.inc_bool[b] = False  # no open incidents
        self.inc_int[b] = -1  # no ids, groups, types, timers or escalators
        self.inc_float[b] = 0.0
        self.alerts[b] = 0.0
        self.extent[b] = 0
        self.terminated[b] = False
        self.truncated[b] = False
        self.totals[b] = 0
        self.needs_reset[b] = False
        # The shift opens with what is already firing: one step of the
        # arrival process (block 0 of the episode), with no decisions to apply.
        u, z = self._draws(self.episode_key[b : b + 1], 0)
        arrived = self._arrivals(
            np.array([b]), u, z, np.zeros((1, S), dtype=bool), np.zeros((1, S), dtype=bool)
        )
        first_uid, first_flags, first_severity = arrived[-1]
        self.reset_incidents[b, :, I_CLOSED] = -1
        self.reset_incidents[b, :, I_FIRST_ALERT] = first_uid[0]
        self.reset_incidents[b, :, I_FIRST_FLAGS] = first_flags[0]
        self.reset_incident_severity[b] = first_severity[0]

    def _draws(self, keys: np.ndarray, block) -> tuple[np.ndarray, np.ndarray]:
        """One block of uniforms per key, and the normals made from its
        ``severity_noise`` part (one per service)."""
        u = block_uniforms(keys, block, self.layout.n_uniform)
        q = u[:, self.layout["severity_noise"]].reshape(len(keys), self.S, 4)
        z = ((q[:, :, 0] + q[:, :, 1]) + (q[:, :, 2] + q[:, :, 3]) - 2.0) * SQRT3
        return u, z

    @staticmethod
    def _check_observe(observe):
        if observe not in (False, True, "team"):
            raise ValueError(f"observe must be False, True or 'team', got {observe!r}")
        return observe

    def _check_active(self, active) -> np.ndarray | None:
        """None when every env steps; else the bool mask of envs held still."""
        if active is None:
            return None
        active = np.asarray(active)
        if active.shape != (self.B,) or active.dtype != bool:
            raise ValueError(
                f"active must be a bool array of shape {(self.B,)}, got "
                f"{active.dtype} {active.shape}"
            )
        return None if active.all() else ~active

    # ------------------------------------------------------------------ views
    @property
    def queue_length(self) -> np.ndarray:
        return (self.alerts[:, :, AL_ACTIVE] > 0.5).sum(axis=1)

    def down(self) -> np.ndarray:
        """(B, S) services in an outage now."""
        return self.down_until > self.t[:, None]

    def slot_present(self) -> np.ndarray:
        return self.alerts[:, : self.N, AL_ACTIVE] > 0.5

    def alert_ids(self, counters: np.ndarray) -> np.ndarray:
        """Raw uint64 ids for alert counters of shape (B, ...)."""
        key = self.id_key.reshape((self.B,) + (1,) * (np.ndim(counters) - 1))
        return alert_id_from_counter(counters.astype(np.int64).astype(np.uint64), key)

    def _refresh_legal(self) -> None:
        present = self.slot_present()  # (B, N)
        legal = present[:, None, :, None] & self._agent_verbs[None, :, None, :]
        self.legal[:, :, 1:] = legal.reshape(self.B, self.A, self.N * N_VERBS)
        self.legal[:, :, 0] = 1

    def _base_features(self) -> np.ndarray:
        """(B, D_base) float32: what every agent sees, before its role."""
        cfg = self.config
        B, N, S = self.B, self.N, self.S
        slots = self.alerts[:, :N]
        present = slots[:, :, AL_ACTIVE]
        out = np.zeros((B, N * SLOT_FEATURES + GLOBAL_FEATURES + S), dtype=np.float32)
        f = out[:, : N * SLOT_FEATURES].reshape(B, N, SLOT_FEATURES)
        f[:, :, 0] = present
        f[:, :, 1] = slots[:, :, AL_VIS_SEV]
        f[:, :, 2] = slots[:, :, AL_CONF]
        types = slots[:, :, AL_TYPE].astype(np.int64)
        f[:, :, 3 : 3 + N_TYPES] = (types[:, :, None] == np.arange(N_TYPES)) * present[:, :, None]
        age = (self.t[:, None] - slots[:, :, AL_BIRTH]) / cfg.max_steps
        f[:, :, 3 + N_TYPES] = np.minimum(age, 1.0) * present
        service = slots[:, :, AL_SERVICE]
        f[:, :, 4 + N_TYPES] = service / max(S - 1, 1) * present
        same = (service[:, :, None] == service[:, None, :]) & (present[:, None, :] > 0.5)
        f[:, :, 5 + N_TYPES] = (same.sum(axis=2) - 1).clip(0, None) / max(N - 1, 1) * present
        g = out[:, N * SLOT_FEATURES :]
        down = self.down()
        qlen = self.queue_length
        g[:, 0] = self.system_load()
        g[:, 1] = qlen / self.Q
        g[:, 2] = np.maximum(qlen - N, 0) / self.Q
        g[:, 3] = np.maximum(cfg.max_steps - self.t, 0) / cfg.max_steps
        g[:, 4] = 1.0 if self.K > 0 else 0.0  # budget left at decision time (all of K)
        g[:, 5] = min(self.K / self.A, 1.0)
        g[:, 6] = np.minimum(self.failures / (cfg.failure_threshold + 1), 1.0)
        g[:, GLOBAL_FEATURES:] = down
        return out

    def visible_view(self, b: int = 0) -> tuple[int, list, list, float, int]:
        """What a decision maker sees of env ``b``, as plain Python values:
        (number of visible alerts, their raw ids, their rows [visible severity,
        confidence, type, age, service], system load, queue length)."""
        n, ids, fields, load, queue_length = self.visible_arrays(b)
        return n, ids, fields.tolist(), load, queue_length

    def visible_arrays(self, b: int = 0) -> tuple[int, list, np.ndarray, float, int]:
        """`visible_view` with the rows as an (n, 5) float array, for a face
        that converts only some of them (the alerts it has not seen before).
        The array may be a buffer that the next call overwrites."""
        rows = self.alerts[b, : self.N]
        n = int((rows[:, AL_ACTIVE] > 0.5).sum())
        rows = rows[:n]
        ids = alert_id_from_counter(
            rows[:, AL_COUNTER].astype(np.int64).astype(np.uint64), self.id_key[b]
        )
        fields = np.stack(
            [
                rows[:, AL_VIS_SEV],
                rows[:, AL_CONF],
                rows[:, AL_TYPE],
                self.t[b] - rows[:, AL_BIRTH],
                rows[:, AL_SERVICE],
            ],
            axis=1,
        )
        load = float(self.system_load()[b])
        return n, ids.tolist(), fields, load, int(self.queue_length[b])

    def system_load(self) -> np.ndarray:
        """(B,) visible load: impaired share of the estate blended with queue pressure."""
        impaired = np.minimum(self.inc_damage * self.inc_active + self.down(), 1.0)
        # A sequential sum (cumsum), so a compiled backend can match it exactly.
        impaired = np.cumsum(impaired, axis=1)[:, -1] / self.S
        return np.clip(0.2 + 0.6 * impaired + 0.2 * self.queue_length / self.Q, 0.0, 1.0)

    def observe(self, team: bool = False) -> np.ndarray:
        """(B, A, obs_dim) float32: every agent's observation; with ``team``,
        (B, 1, base_dim): the shared view alone, without the role features."""
        base = self._base_features()
        if team:
            return base[:, None, :]
        obs = np.empty((self.B, self.A, self.obs_dim), dtype=np.float32)
        obs[:, :, : base.shape[1]] = base[:, None, :]
        obs[:, :, base.shape[1] :] = self._role_features
        return obs

    def global_state(self) -> np.ndarray:
        """(B, state_dim) float32 for centralised critics. It includes the hidden
        truth: true severities and noise flags of the visible slots, incident
        state per service, and the dependency graph."""
        B, N, S = self.B, self.N, self.S
        base = self._base_features()
        slots = self.alerts[:, :N]
        present = slots[:, :, AL_ACTIVE] > 0.5
        svc = slots[:, :, AL_SERVICE].astype(np.int64)
        slot_truth = np.stack(
            [
                slots[:, :, AL_TRUE_SEV],
                slots[:, :, AL_NOISE],
                np.take_along_axis(self.inc_cascade, svc, axis=1)
                & present
                & (slots[:, :, AL_NOISE] < 0.5),
            ],
            axis=2,
        ).reshape(B, N * 3)
        services = np.stack(
            [
                self.inc_active,
                self.inc_critical & self.inc_active,
                np.minimum(self.inc_damage, 1.0) * self.inc_active,
                (self.inc_escalated_until >= 0) & self.inc_active,
                self.down(),
            ],
            axis=2,
        ).reshape(B, S * 5)
        return np.concatenate(
            [base, slot_truth, services, self.adj.reshape(B, S * S)], axis=1, dtype=np.float32
        )

    # ------------------------------------------------------------------ step
    def step(
        self,
        actions: np.ndarray,
        on_illegal: str = "raise",
        observe: bool = False,
        active: np.ndarray | None = None,
        *,
        reuse_records: bool = False,
        records: str = "full",
        masks: bool = True,
    ) -> StepOutcome:
        """Advance every env by one time step.

        ``actions`` has shape (B, A). ``on_illegal`` is ``"raise"`` (a masked
        action is a ValueError) or ``"noop"`` (it becomes NOOP, reported with
        status ``masked``). ``observe=True`` also returns the next observations
        and action masks in the outcome (``"team"``: only the shared view, see
        `observe`). ``active`` (bool, (B,)) holds the envs
        it marks False still: they neither change nor draw, their actions are
        ignored and their outcome rows are neutral (NEXT_STEP autoreset uses
        this). A rejected call changes nothing.

        ``reuse_records=True`` lets a backend write the records (everything but
        the observations and masks) into buffers that the next step overwrites:
        for callers that read a step's records at once, it saves allocating
        them. This reference always returns fresh arrays, which keeps that
        contract too.

        ``records="lean"`` returns only the team's records and each member's
        decision (the actions, decisions, components, counts and team reward); the
        fields named in `LEAN_OMITS` are None. The compiled backend then skips
        making them (about 8% of a vector step on hard); the transition is the
        same. The agents view steps this way. ``records="minimal"`` leaves out
        the per-member decisions as well (`MINIMAL_OMITS`): the records of a
        consumer that reads only the team's (about 6% of a vector step on hard
        in the compiled backend). The team's vector env steps this way.

        ``masks=False`` leaves ``action_masks`` None even when observing: the
        masks stay readable in ``legal``, and a caller that reads them there
        (the vector envs) saves a copy of them per step.
        """
        observe = self._check_observe(observe)
        omits = RECORD_OMITS[self._check_records(records)]
        self._check_masks(masks)
        held = self._check_active(active)
        if held is None:
            out = self._step_all(actions, on_illegal, observe)
        else:
            out = self._step_held(actions, on_illegal, observe, held)
        for name in omits:
            setattr(out, name, None)
        if not masks:
            out.action_masks = None
        return out

    def _step_held(self, actions, on_illegal: str, observe, held: np.ndarray) -> StepOutcome:
        saved = {name: getattr(self, name)[held].copy() for name in HELD_STATE}
        out = self._step_all(actions, on_illegal, observe=False, held=held)
        for name, value in saved.items():
            getattr(self, name)[held] = value
        self.n_needing_reset = int(self.needs_reset.sum())
        self._refresh_legal()
        neutralize(out, held)
        if observe:
            out.observations = self.observe(team=observe == "team")
            out.action_masks = self.legal.copy()
        return out

    @staticmethod
    def _check_masks(masks) -> None:
        if not isinstance(masks, (bool, np.bool_)):
            raise TypeError(f"masks must be a bool, got {masks!r} ({type(masks).__name__})")

    @staticmethod
    def _check_records(records) -> str:
        """The level, a key of `RECORD_OMITS`."""
        if not isinstance(records, str) or records not in RECORD_OMITS:
            raise ValueError(f"records must be one of {tuple(RECORD_OMITS)}, got {records!r}")
        return records

    def step_autoreset(
        self,
        actions: np.ndarray,
        on_illegal: str = "raise",
        observe: bool = False,
        *,
        records: str = "full",
        masks: bool = True,
    ) -> tuple[StepOutcome, np.ndarray]:
        """NEXT_STEP autoreset: envs that ended are reset (the next episode of
        their stream) and held, with neutral outcome rows and their first
        observation; the others step. Returns the outcome and the (B,) mask of
        envs that stepped. ``records`` and ``masks`` as in `step`. A rejected
        call changes nothing: the actions are checked before any env is reset."""
        self._require_started()
        self._check_observe(observe)
        self._check_records(records)
        self._check_masks(masks)
        ended = self.needs_reset.copy()
        options = {"records": records, "masks": masks}
        if not ended.any():
            return self.step(actions, on_illegal, observe, **options), ~ended
        self._checked_actions(actions, on_illegal, held=ended)
        self.reset(None, np.flatnonzero(ended))
        return self.step(actions, on_illegal, observe, active=~ended, **options), ~ended

    def _require_started(self) -> None:
        """Raise unless every env has had a reset. Once all have, only
        `forget_streams` undoes that, so the answer is kept: a minimum over the
        B episode numbers cost a large batch about 20 µs a step."""
        if self._every_env_started:
            return
        if self.episode.min() < 0:
            raise RuntimeError("step_autoreset() called before every env was reset()")
        self._every_env_started = True

    def _checked_actions(
        self, actions, on_illegal: str, held: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``actions`` as int64, with the rows of ``held`` envs zeroed, and the
        mask of the masked ones; raises if they cannot be applied (before
        anything changes). The range is checked in the given dtype, before the
        cast (a uint64 beyond int64 would wrap), and on held rows too: an
        ignored action must still be one of the space's; their masks are not
        checked (a held env's mask is not the one its action was chosen on)."""
        B, A = self.B, self.A
        actions = np.asarray(actions)
        if actions.shape != (B, A):
            raise ValueError(f"actions must have shape {(B, A)}, got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
        if on_illegal not in ("raise", "noop"):
            raise ValueError(f"on_illegal must be 'raise' or 'noop', got {on_illegal!r}")
        if actions.min() < 0 or actions.max() >= self.n_actions:
            bad = actions[(actions < 0) | (actions >= self.n_actions)]
            raise ValueError(
                f"action {int(bad[0])} is out of range; allowed 0..{self.n_actions - 1}"
            )
        actions = actions.astype(np.int64)
        if held is not None:
            actions[held] = 0
        legal = np.take_along_axis(self.legal, actions[:, :, None], axis=2)[:, :, 0] > 0
        masked = ~legal
        if masked.any() and on_illegal == "raise":
            b, a = np.argwhere(masked)[0]
            raise ValueError(
                f"action {int(actions[b, a])} of agent {int(a)} (env {int(b)}) is masked: "
                f"its slot is empty or its role may not use that verb"
            )
        return actions, masked

    def _step_all(
        self,
        actions: np.ndarray,
        on_illegal: str = "raise",
        observe: bool = False,
        held: np.ndarray | None = None,
    ) -> StepOutcome:
        B, A, S, K = self.B, self.A, self.S, self.K
        cfg = self.config
        if self.n_needing_reset:
            raise RuntimeError(
                f"envs {np.flatnonzero(self.needs_reset).tolist()} need reset() before step()"
            )
        actions, masked = self._checked_actions(actions, on_illegal, held)
        if masked.any():
            actions = np.where(masked, 0, actions)

        over = (self.t >= cfg.max_steps) | (self.failures > cfg.failure_threshold)
        if over.any():
            raise RuntimeError(f"env {int(np.flatnonzero(over)[0])} has ended: reset() it")
        # One block of randomness per env: block t + 1 of its episode.
        u, z = self._draws(self.episode_key, self.t + 1)
        L = self.layout
        bi = self._bi
        t = self.t

        # ---- 1. decode and arbitrate
        decided = actions > 0
        slot = np.where(decided, (actions - 1) // N_VERBS, 0)
        verb = np.where(decided, (actions - 1) % N_VERBS, -1)
        rank = u[:, L["priority"]].argsort(axis=1).argsort(axis=1)
        higher = rank[:, None, :] < rank[:, :, None]  # [b, a, c]: c outranks a
        same_alert = (
            decided[:, :, None] & decided[:, None, :] & (slot[:, :, None] == slot[:, None, :])
        )
        conflict = (same_alert & higher).any(axis=2)
        claim = decided & ~conflict & ((verb == INVESTIGATE) | (verb == ESCALATE))
        claims_above = (claim[:, None, :] & higher).sum(axis=2)
        granted_claim = claim & (claims_above < K)
        denied_budget = claim & ~granted_claim
        granted = decided & ~conflict & ~denied_budget

        rows = self.alerts[bi, slot]  # (B, A, F)
        noise = rows[:, :, AL_NOISE] > 0.5
        svc = rows[:, :, AL_SERVICE].astype(np.int64)
        live = (
            self.inc_active[bi, svc]
            & (self.inc_uid[bi, svc] == rows[:, :, AL_INCIDENT].astype(np.int64))
            & ~noise
        )
        critical = self.inc_critical[bi, svc] & live
        cascade = self.inc_cascade[bi, svc] & live
        pending = (self.inc_escalated_until[bi, svc] >= 0) & live

        real_claim = granted_claim & live
        same_incident = (
            real_claim[:, :, None] & real_claim[:, None, :] & (svc[:, :, None] == svc[:, None, :])
        )
        takes = real_claim & ~(same_incident & higher).any(axis=2)
        resolves = takes & (verb == INVESTIGATE)
        escalates = takes & (verb == ESCALATE) & ~pending
        wasted = granted_claim & noise
        redundant = granted_claim & ~noise & ~resolves & ~escalates
        ignores = granted & (verb == IGNORE)
        handled_now = np.zeros((B, S), dtype=bool)
        hb, ha = np.nonzero(resolves | escalates)
        handled_now[hb, svc[hb, ha]] = True
        handled = (handled_now[bi, svc] | pending) & live
        ign_noise = ignores & noise
        ign_handled = ignores & ~noise & (handled | ~live)
        ign_critical = ignores & critical & ~ign_handled
        ign_minor = ignores & ~noise & ~ign_handled & ~critical

        outcome = np.zeros((B, A), dtype=np.int8)
        outcome[resolves & critical] = OUT_RESOLVED_CRITICAL
        outcome[resolves & ~critical] = OUT_RESOLVED_MINOR
        outcome[escalates] = OUT_ESCALATED
        outcome[wasted] = OUT_WASTED
        outcome[redundant] = OUT_REDUNDANT
        outcome[ign_noise] = OUT_NOISE_IGNORED
        outcome[ign_critical] = OUT_CRITICAL_IGNORED
        outcome[ign_minor] = OUT_MINOR_IGNORED
        outcome[ign_handled] = OUT_ALREADY_HANDLED
        outcome[granted & (verb == DELAY)] = OUT_DELAYED
        status = np.zeros((B, A), dtype=np.int8)
        status[granted] = STATUS_GRANTED
        status[denied_budget] = STATUS_DENIED_BUDGET
        status[conflict] = STATUS_DENIED_CONFLICT
        status[masked] = STATUS_MASKED

        credit = np.zeros((B, A, len(REWARD_COMPONENTS)))
        credit[:, :, C_CRITICAL] = resolves & critical
        credit[:, :, C_CASCADE] = resolves & cascade
        credit[:, :, C_FP_IGNORED] = ign_noise
        credit[:, :, C_UNNECESSARY] = wasted | redundant
        credit[:, :, C_MISSED] = ign_critical

        # Record the decided alerts' truth before the table changes.
        present_dec = decided & (rows[:, :, AL_ACTIVE] > 0.5)
        rec_id = np.where(present_dec, self.alert_ids(rows[:, :, AL_COUNTER]), np.uint64(0))
        rec_truth = np.where(present_dec, rows[:, :, AL_TRUE_SEV], 0.0)
        rec_incident = np.where(present_dec & ~noise, rows[:, :, AL_INCIDENT], -1).astype(np.int64)
        rec_group = np.where(present_dec & ~noise, rows[:, :, AL_GROUP], -1).astype(np.int64)
        rec_service = np.where(present_dec, svc, -1)
        rec_type = np.where(present_dec, rows[:, :, AL_TYPE], -1).astype(np.int64)

        # ---- 2. apply decisions
        closes = granted & (verb != DELAY)
        cb, ca = np.nonzero(closes)
        self.alerts[cb, slot[cb, ca], AL_ACTIVE] = 0.0
        resolved_now = np.zeros((B, S), dtype=bool)
        rb, ra = np.nonzero(resolves)
        resolved_now[rb, svc[rb, ra]] = True
        eb, ea = np.nonzero(escalates)
        self.inc_escalated_until[eb, svc[eb, ea]] = t[eb] + cfg.escalation_delay
        self.inc_escalator[eb, svc[eb, ea]] = ea

        # ---- 3. specialists finish escalations that are due
        due = (
            self.inc_active
            & (self.inc_escalated_until >= 0)
            & (self.inc_escalated_until <= t[:, None])
            & ~resolved_now
        )
        db, ds = np.nonzero(due)
        if db.size:
            who = self.inc_escalator[db, ds]
            np.add.at(credit, (db, who, C_CRITICAL), self.inc_critical[db, ds])
            np.add.at(credit, (db, who, C_CASCADE), self.inc_cascade[db, ds])

        # ---- 4. incidents advance
        active = self.inc_active & ~resolved_now & ~due
        factor = np.where(self.inc_critical, 1.0, cfg.minor_damage_factor)
        self.inc_damage += active * (cfg.damage_rate * self.inc_severity * factor)
        self_resolved = (
            active
            & ~self.inc_critical
            & (self.inc_escalated_until < 0)
            & (u[:, L["self_resolve"]] < cfg.minor_resolve_prob)
        )
        failed = active & ~self_resolved & (self.inc_damage >= 1.0)
        closed = resolved_now | due | self_resolved | failed
        closed_uid = np.where(closed, self.inc_uid, -1)
        self.inc_active &= ~closed
        self.inc_escalated_until[closed] = -1
        self.inc_escalator[closed] = -1
        # Close the queued alerts of every incident that ended.
        al_svc = self.alerts[:, :, AL_SERVICE].astype(np.int64)
        ended = np.take_along_axis(closed, al_svc, axis=1) & (self.alerts[:, :, AL_NOISE] < 0.5)
        self.alerts[:, :, AL_ACTIVE] *= ~ended
        # Failures: outage, and cascades along the hidden graph.
        n_failed = failed.sum(axis=1)
        self.failures += n_failed
        outage_end = t[:, None] + 1 + cfg.recovery_steps
        self.down_until[:] = np.where(failed, outage_end, self.down_until)  # stays int32
        unattributed = np.zeros((B, len(REWARD_COMPONENTS)))
        unattributed[:, C_FAILURE] = n_failed
        cascades = np.zeros((B, S), dtype=bool)
        if cfg.cascade_prob > 0 and n_failed.any():
            parents = np.einsum("bu,buv->bv", failed.astype(np.float64), self.adj)
            p = 1.0 - self._survive[parents.astype(np.int64)]
            cascades = (parents > 0) & (u[:, L["cascade"]] < p)
        # Noise alerts that stop flapping clear themselves.
        clear = (
            (self.alerts[:, :, AL_NOISE] > 0.5)
            & (self.alerts[:, :, AL_ACTIVE] > 0.5)
            & (u[:, L["noise_clear"]] < cfg.noise_clear_prob)
        )
        noise_cleared = clear.sum(axis=1)
        self.alerts[:, :, AL_ACTIVE] *= ~clear
        parent_group = np.where(failed[:, :, None] & self.adj, self.inc_group[:, :, None], -1).max(
            axis=1
        )

        # ---- 5. arrivals: new incidents, alerts and noise
        self.t = t = t + 1
        arrived = self._arrivals(np.arange(B), u, z, cascades, failed, parent_group)
        new_alerts, new_noise, dropped, dropped_real, started_cascades, first = arrived
        first_uid, first_flags, first_severity = first

        # ---- 6. rewards and episode ends
        counts = credit.sum(axis=1) + unattributed
        components = counts * self._reward_vector
        agent_components = (credit + unattributed[:, None, :] / A) * self._reward_vector
        self.terminated = self.failures > cfg.failure_threshold
        self.truncated = (t >= cfg.max_steps) & ~self.terminated
        self.needs_reset = self.terminated | self.truncated
        self.n_needing_reset = int(self.needs_reset.sum())
        self._refresh_legal()
        decisions = np.stack(
            [
                np.where(decided, slot, -1),
                verb,
                status,
                outcome,
                rec_incident,
                rec_group,
                rec_service,
                rec_type,
                noise & present_dec,
            ],
            axis=2,
        ).astype(np.int64)
        events = np.stack(
            [failed, started_cascades, due, self_resolved, resolved_now, first_uid >= 0], axis=2
        )
        incidents = np.stack([closed_uid, first_uid, first_flags], axis=2).astype(np.int64)
        counts = np.stack(
            [
                new_alerts,
                new_noise,
                dropped,
                dropped_real,
                noise_cleared,
                n_failed,
                self.terminated,
                self.truncated,
                (status == STATUS_DENIED_BUDGET).sum(axis=1),
            ],
            axis=1,
        ).astype(np.int64)
        return StepOutcome(
            actions=actions,
            decisions=decisions,
            true_severity=rec_truth,
            alert_id=rec_id,
            components=components,
            agent_components=agent_components,
            service_events=events,
            counts=counts,
            incidents=incidents,
            incident_severity=first_severity,
            reward=components.sum(axis=1),
            agent_reward=agent_components.sum(axis=2),
            observations=self.observe(team=observe == "team") if observe else None,
            action_masks=self.legal.copy() if observe else None,
        )

    def _arrivals(
        self,
        envs: np.ndarray,
        u: np.ndarray,
        z: np.ndarray,
        cascades: np.ndarray,
        failed: np.ndarray,
        parent_group: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Start incidents, emit their alerts and the noise, and queue them.

        ``envs`` are the batch rows being advanced; ``u``, ``z``, ``cascades``,
        ``failed`` and ``parent_group`` are given for those rows only.
        """
        cfg = self.config
        L = self.layout
        S, M, Q = self.S, self.M, self.Q
        n = len(envs)
        t = self.t[envs]
        down = self.down_until[envs] > t[:, None]
        inc_active = self.inc_active[envs]
        # Cascade incidents start on dependents that are up and quiet.
        cascades = cascades & ~inc_active & ~down
        # Root incidents: a self-exciting (Hawkes-like) rate spread over services.
        rate = cfg.base_incident_rate + self.excitation[envs]
        x = rate[:, None] * self.service_weight[envs]
        p = x / (1.0 + x)  # per-service start probability; ~x for small x
        roots = ~inc_active & ~down & ~cascades & (u[:, L["arrive"]] < p)
        started = roots | cascades
        n_started = started.sum(axis=1)
        self.excitation[envs] = cfg.storm_decay * self.excitation[envs] + cfg.storm_jump * n_started
        if started.any():
            uid = self.incident_counter[envs][:, None] + np.cumsum(started, axis=1) - 1
            self.incident_counter[envs] += n_started
            is_critical = cascades | (u[:, L["critical"]] < cfg.critical_share)
            sev_u = u[:, L["severity"]]
            severity = np.where(
                cascades,
                uniform(sev_u, CASCADE_SEVERITY),
                np.where(
                    is_critical, uniform(sev_u, CRITICAL_SEVERITY), uniform(sev_u, MINOR_SEVERITY)
                ),
            )
            itype = np.where(
                cascades,
                categorical(u[:, L["incident_type"]], CASCADE_TYPE_CDF),
                categorical(u[:, L["incident_type"]], ROOT_TYPE_CDF),
            )
            delay_span = cfg.cascade_delay_max - cfg.cascade_delay_min + 1
            delay = cfg.cascade_delay_min + np.minimum(
                (u[:, L["cascade_delay"]] * delay_span).astype(np.int64), delay_span - 1
            )
            group = uid if parent_group is None else np.where(cascades, parent_group, uid)
            e = envs[:, None]
            sel = started
            self.inc_active[envs] = inc_active | started
            for arr, value in (
                (self.inc_uid, uid),
                (self.inc_group, group),
                (self.inc_type, itype),
                (self.inc_severity, severity),
                (self.inc_critical, is_critical),
                (self.inc_cascade, cascades),
                (self.inc_damage, 0.0),
                (self.inc_silent_until, np.where(cascades, t[:, None] + delay, t[:, None])),
                (self.inc_alerted, False),
                (self.inc_escalated_until, -1),
                (self.inc_escalator, -1),
            ):
                arr[e, np.arange(S)] = np.where(sel, value, arr[e, np.arange(S)])

        # Alerts from incidents: the first as soon as an incident is awake,
        # then one with probability emit_prob per step until it ends.
        awake = self.inc_active[envs] & (self.inc_silent_until[envs] <= t[:, None])
        was_alerted = self.inc_alerted[envs]
        emit = awake & (~was_alerted | (u[:, L["emit"]] < cfg.emit_prob))
        first = emit & ~was_alerted
        self.inc_alerted[envs] |= emit
        flags = self.inc_critical[envs] * FLAG_CRITICAL + self.inc_cascade[envs] * FLAG_CASCADE
        first_records = (
            np.where(first, self.inc_uid[envs], -1),
            np.where(first, flags, 0),
            np.where(first, self.inc_severity[envs], 0.0),
        )
        inc_type = self.inc_type[envs]
        sev = self.inc_severity[envs]
        real = np.zeros((n, S, self.alerts.shape[2]))
        real[:, :, AL_ACTIVE] = emit
        real[:, :, AL_SERVICE] = np.arange(S)
        real[:, :, AL_INCIDENT] = self.inc_uid[envs]
        real[:, :, AL_TYPE] = np.where(
            u[:, L["alert_type"]] < cfg.primary_type_prob, inc_type, RELATED_TYPE[inc_type]
        )
        real[:, :, AL_TRUE_SEV] = sev
        real[:, :, AL_VIS_SEV] = np.clip(sev + cfg.severity_noise * z, 0.0, 1.0)
        real[:, :, AL_CONF] = uniform(u[:, L["confidence"]], REAL_CONFIDENCE)
        real[:, :, AL_GROUP] = self.inc_group[envs]
        # False positives from flapping monitors, tied to no incident.
        n_noise = (u[:, L["noise_count"]] >= self._noise_cdf).sum(axis=1)
        queue_after = (self.alerts[envs, :, AL_ACTIVE] > 0.5).sum(axis=1) + emit.sum(axis=1)
        if cfg.ensure_nonempty_queue and M > 0:
            n_noise = np.where(queue_after + n_noise == 0, 1, n_noise)
        fake = np.zeros((n, M, self.alerts.shape[2]))
        fake[:, :, AL_ACTIVE] = np.arange(M) < n_noise[:, None]
        fake[:, :, AL_SERVICE] = np.minimum((u[:, L["noise_service"]] * S).astype(np.int64), S - 1)
        fake[:, :, AL_INCIDENT] = -1
        fake[:, :, AL_TYPE] = categorical(u[:, L["noise_type"]], NOISE_TYPE_CDF)
        fake[:, :, AL_VIS_SEV] = uniform(u[:, L["noise_severity"]], NOISE_SEVERITY)
        fake[:, :, AL_CONF] = uniform(u[:, L["noise_confidence"]], NOISE_CONFIDENCE)
        fake[:, :, AL_GROUP] = -1
        fake[:, :, AL_NOISE] = 1.0
        new = np.concatenate([real, fake], axis=1)
        is_new = new[:, :, AL_ACTIVE] > 0.5
        new[:, :, AL_COUNTER] = self.alert_counter[envs][:, None] + np.cumsum(is_new, axis=1) - 1
        new[:, :, AL_BIRTH] = t[:, None]
        n_new = is_new.sum(axis=1)
        self.alert_counter[envs] += n_new
        self.alerts_total[envs] += n_new
        self.noise_total[envs] += n_noise
        # Queue in arrival order: survivors first (in their order), then arrivals.
        merged = np.concatenate([self.alerts[envs], new], axis=1)
        order = np.argsort(merged[:, :, AL_ACTIVE] < 0.5, axis=1, kind="stable")
        merged = np.take_along_axis(merged, order[:, :, None], axis=1)
        overflow = merged[:, Q:]
        over_active = overflow[:, :, AL_ACTIVE] > 0.5
        dropped = over_active.sum(axis=1)
        dropped_real = (over_active & (overflow[:, :, AL_NOISE] < 0.5)).sum(axis=1)
        # Empty rows are all zeros, so nothing stale can reach an observation.
        kept = merged[:, :Q]
        self.alerts[envs] = kept * (kept[:, :, AL_ACTIVE : AL_ACTIVE + 1] > 0.5)
        self.extent[envs] = (kept[:, :, AL_ACTIVE] > 0.5).sum(axis=1)
        return n_new, n_noise, dropped, dropped_real, cascades, first_records

    # ------------------------------------------------------------------ truth
    def queue_records(self, b: int) -> list[dict]:
        """Every queued alert of env ``b`` with its hidden truth, in queue order."""
        rows = self.alerts[b]
        rows = rows[rows[:, AL_ACTIVE] > 0.5]
        ids = alert_id_from_counter(
            rows[:, AL_COUNTER].astype(np.int64).astype(np.uint64), self.id_key[b]
        )
        out = []
        for row, raw in zip(rows.tolist(), ids.tolist()):
            out.append(
                {
                    "id": format_alert_id(raw),
                    "service": int(row[AL_SERVICE]),
                    "alert_type": int(row[AL_TYPE]),
                    "visible_severity": row[AL_VIS_SEV],
                    "confidence": row[AL_CONF],
                    "age": int(self.t[b] - row[AL_BIRTH]),
                    "true_severity": row[AL_TRUE_SEV],
                    "is_noise": row[AL_NOISE] > 0.5,
                    "incident": int(row[AL_INCIDENT]),
                    "group": int(row[AL_GROUP]),
                }
            )
        return out
