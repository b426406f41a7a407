"""Optional compiled backend: the transition of `engine.AlertSim`, in numba.

Install with ``pip install "adaptive-alert-triage[fast]"``. `FastAlertSim` has
the same state arrays, the same random draws and the same outcome records as
the numpy reference; it replaces the per-step array code with one compiled loop
per env, which draws from the env's counter-based stream by address (one number
where it is needed, or a vectorised run of them ahead of branch-free code that
uses some), and it resets envs (``reset`` and ``step_autoreset``) in compiled
code too. The tests check the two backends bit for bit, state and outcome, over
whole episodes of every task. The numpy path stays the reference: change
the model there first, then here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .config import TaskConfig
from .engine import (
    AL_ACTIVE,
    AL_BIRTH,
    AL_CONF,
    AL_COUNTER,
    AL_GROUP,
    AL_INCIDENT,
    AL_NOISE,
    AL_SERVICE,
    AL_TRUE_SEV,
    AL_TYPE,
    AL_VIS_SEV,
    C_CASCADE,
    C_CRITICAL,
    C_FAILURE,
    C_FP_IGNORED,
    C_MISSED,
    C_UNNECESSARY,
    D_GROUP,
    D_INCIDENT,
    D_NOISE,
    D_OUTCOME,
    D_SERVICE,
    D_SLOT,
    D_STATUS,
    D_TYPE,
    D_VERB,
    DELAY,
    E_CASCADE,
    E_ESCALATION_RESOLVED,
    E_FAILED,
    E_FIRST_ALERT,
    E_RESOLVED,
    E_SELF_RESOLVED,
    ESCALATE,
    FLAG_CASCADE,
    FLAG_CRITICAL,
    GLOBAL_FEATURES,
    I_CLOSED,
    I_FIRST_ALERT,
    I_FIRST_FLAGS,
    IB_ACTIVE,
    IB_ALERTED,
    IB_CASCADE,
    IB_CRITICAL,
    IF_DAMAGE,
    IF_SEVERITY,
    IGNORE,
    II_ESCALATED_UNTIL,
    II_ESCALATOR,
    II_GROUP,
    II_SILENT_UNTIL,
    II_TYPE,
    II_UID,
    INVESTIGATE,
    N_ALERT_FIELDS,
    N_COUNTS,
    N_DECISION_FIELDS,
    N_DENIED,
    N_DROPPED,
    N_DROPPED_REAL,
    N_FAILED,
    N_INCIDENT_FIELDS,
    N_NEW_ALERTS,
    N_NEW_NOISE,
    N_NOISE_CLEARED,
    N_SERVICE_EVENTS,
    N_TERMINATED,
    N_TRUNCATED,
    N_VERBS,
    OUT_ALREADY_HANDLED,
    OUT_CRITICAL_IGNORED,
    OUT_DELAYED,
    OUT_ESCALATED,
    OUT_MINOR_IGNORED,
    OUT_NOISE_IGNORED,
    OUT_REDUNDANT,
    OUT_RESOLVED_CRITICAL,
    OUT_RESOLVED_MINOR,
    OUT_WASTED,
    RECORD_OMITS,
    SLOT_FEATURES,
    STATUS_DENIED_BUDGET,
    STATUS_DENIED_CONFLICT,
    STATUS_GRANTED,
    STATUS_MASKED,
    AlertSim,
    StepOutcome,
)
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
)
from .rng import (
    EPISODE_SALT,
    GOLDEN,
    ID_KEY_BLOCK,
    SQRT3,
    TOPOLOGY_BLOCK,
    WEIGHT_BLOCK,
    episode_draws,
    mix64,
)
from .topology import build_layered_dag

try:
    import numba
    from llvmlite import ir as llvm_ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.experimental import structref
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only without the extra
    numba = None

#: From this many envs on, a step asks for the next envs' state ahead of use
#: (`_prefetch_env`). Interleaved A/B on this machine, with the env loop's
#: arrays borrowed (`_borrow`): about 12% faster at B=4096 and 6% at B=1024,
#: where the state outgrows the caches; within noise at 512; 5% slower at
#: 256, where it is mostly cached and the hints are overhead. (Before the
#: borrowing, 1024 gained nothing.)
PREFETCH_FROM_BATCH = 1024
#: How many envs ahead: 1 to 3 did as well; 8 gained nothing.
PREFETCH_AHEAD = 2

# A step's record buffers, for `step(..., reuse_records=True)`, in
# StepOutcome's field order.
RECORD_FIELDS = (
    "out_decisions",
    "out_truth",
    "out_alert_ids",
    "out_components",
    "out_agent_components",
    "out_events",
    "out_counts",
    "out_incidents",
    "out_incident_severity",
    "out_reward",
    "out_agent_reward",
)
#: Which of those a step keeps, by ``records=`` level (`engine.RECORD_OMITS`).
RECORD_KEEPS = {
    level: tuple(
        field.name not in omits
        for field in dataclasses.fields(StepOutcome)[1 : 1 + len(RECORD_FIELDS)]
    )
    for level, omits in RECORD_OMITS.items()
}
# The kernel's working arrays, allocated once with the sim rather than on
# every call (29 small arrays, about 0.6 us of a one-env step). Nothing is
# carried in them from one env or call to the next, except that `same_count`
# (a row of work_service_int) is left zeroed by every use.
WORK_FIELDS = (
    "work_agent_bool",  # (11, A): dec, conflict, claim, granted_claim, granted, ...
    "work_agent_int",  # (4, A): slot, verb, rank, svc
    "work_prio",  # (A,): priority draws
    "work_credit",  # (A, C): reward credit
    "work_service_bool",  # (5, S): handled_now, resolved_now, closed, failed_now, cascades
    "work_service_int",  # (4, S): failed_list, parent_group, same_count, a list of services
    "work_order",  # (S,): a reset's service order
    "work_graph",  # (S, width): a reset's graph draws
    "work_f",  # a reset's uniforms
    "work_slot_flags",  # (4 * N,): each visible slot's presence, once per verb
    "work_u",  # (max(S, Q),): a run of uniforms drawn ahead of the loop that uses them
)
# The kernel's parameters, state arrays and buffers: the fields of
# `KernelState`, which `_step`, `_reset_many` and `_reset_env` take as one
# argument. From Python a call then unboxes one object instead of ~50 arrays
# (about 70 ns each).
KERNEL_FIELDS = (
    "fp",
    "ip",
    "off",
    "tables",
    "graph",
    "fixed_adj",
    "fixed_layer",
    "verb_pattern",
    "reward_vector",
    "survive",
    "t",
    "adj",
    "layer",
    "service_weight",
    "id_key",
    "stream_key",
    "episode",
    "episode_key",
    "excitation",
    "failures",
    "alert_counter",
    "incident_counter",
    "down_until",
    "inc_b",
    "inc_i",
    "inc_f",
    "alerts",
    "extent",
    "totals",
    "legal",
    "terminated",
    "truncated",
    "needs_reset",
    "scratch_events",
    "scratch_counts",
    "reset_incidents",
    "reset_incident_severity",
    "role_features",
    "visible_ids",
    "visible_fields",
    *WORK_FIELDS,
    *RECORD_FIELDS,
)
#: The sim attribute behind each field whose name differs.
KERNEL_SOURCES = {
    "fp": "_fp",
    "ip": "_ip",
    "off": "_off",
    "tables": "_tables",
    "graph": "_graph",
    "fixed_adj": "_fixed_adj",
    "fixed_layer": "_fixed_layer",
    "verb_pattern": "_verb_pattern",
    "reward_vector": "_reward_vector",
    "survive": "_survive",
    "inc_b": "inc_bool",
    "inc_i": "inc_int",
    "inc_f": "inc_float",
    "scratch_events": "_scratch_events",
    "scratch_counts": "_scratch_counts",
    "role_features": "_role_features",
    "visible_ids": "_visible_ids",
    "visible_fields": "_visible_fields",
} | {name: "_" + name for name in (*WORK_FIELDS, *RECORD_FIELDS)}


def available() -> bool:
    """True when numba is installed, so `FastAlertSim` can be used."""
    return numba is not None


# Float parameters, packed so a kernel call has few arguments.
(
    F_BASE_RATE,
    F_STORM_JUMP,
    F_STORM_DECAY,
    F_CRITICAL_SHARE,
    F_EMIT,
    F_PRIMARY,
    F_DAMAGE,
    F_MINOR_FACTOR,
    F_MINOR_RESOLVE,
    F_CASCADE,
    F_NOISE_CLEAR,
    F_SEV_NOISE,
) = range(12)
# Integer parameters.
(
    I_K,
    I_ESC_DELAY,
    I_RECOVERY,
    I_CASC_MIN,
    I_CASC_MAX,
    I_MAX_STEPS,
    I_THRESHOLD,
    I_ENSURE,
    I_ON_ILLEGAL_NOOP,
    I_GRAPH_WIDTH,
) = range(10)
# Offsets of the draw layout, in DrawLayout's order.
(
    U_PRIORITY,
    U_ARRIVE,
    U_CRITICAL,
    U_SEVERITY,
    U_ITYPE,
    U_EMIT,
    U_ATYPE,
    U_CONF,
    U_SELF,
    U_CASCADE,
    U_CASC_DELAY,
    U_NCOUNT,
    U_NSERVICE,
    U_NTYPE,
    U_NSEV,
    U_NCONF,
    U_NCLEAR,
    U_SEVNOISE,
) = range(18)


def _params(config: TaskConfig, layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.array(
        [
            config.base_incident_rate,
            config.storm_jump,
            config.storm_decay,
            config.critical_share,
            config.emit_prob,
            config.primary_type_prob,
            config.damage_rate,
            config.minor_damage_factor,
            config.minor_resolve_prob,
            config.cascade_prob,
            config.noise_clear_prob,
            config.severity_noise,
        ],
        dtype=np.float64,
    )
    i = np.array(
        [
            config.investigation_budget,
            config.escalation_delay,
            config.recovery_steps,
            config.cascade_delay_min,
            config.cascade_delay_max,
            config.max_steps,
            config.failure_threshold,
            int(config.ensure_nonempty_queue),
            0,
            2 + config.max_dependencies,
        ],
        dtype=np.int64,
    )
    offsets = np.array([s.start for s in layout.slices.values()], dtype=np.int64)
    return f, i, offsets


if numba is not None:

    def _jit(inline: bool = False):
        """The kernel's compile options. No divisor in the kernel can be zero
        (each is a size or a validated config value), so numpy's error model,
        which drops the zero checks and the exception exits each one brings
        into its loop, changes no result and saves about a tenth of a step."""
        return njit(cache=True, error_model="numpy", inline="always" if inline else "never")

    # Inlined into `_reset_env`, which passes them borrowed arrays and views:
    # across a call each array argument would be counted in and out again.
    _build_layered_dag = _jit(inline=True)(build_layered_dag)
    _episode_draws = _jit(inline=True)(episode_draws)
    _mix64 = _jit(inline=True)(mix64)

    _C1 = np.uint64(0xFF51AFD7ED558CCD)
    _C2 = np.uint64(0xC4CEB9FE1A85EC53)
    _S33 = np.uint64(33)
    _S32 = np.uint64(32)
    _S11 = np.uint64(11)
    _S1 = np.uint64(1)
    _GOLDEN = GOLDEN
    _SALT = EPISODE_SALT
    _TO_UNIT = 1.0 / 9007199254740992.0

    def _prefetch_intrinsic(write: int):
        """An intrinsic hinting the CPU to fetch the cache line at a byte offset
        into an array's data, to read (0) or to write (1), into every level."""

        @intrinsic
        def prefetch(typingctx, array, offset):
            def codegen(context, builder, signature, args):
                data = context.make_array(signature.args[0])(context, builder, args[0]).data
                i8p, i32 = llvm_ir.IntType(8).as_pointer(), llvm_ir.IntType(32)
                address = builder.gep(builder.bitcast(data, i8p), [args[1]])
                fnty = llvm_ir.FunctionType(llvm_ir.VoidType(), [i8p, i32, i32, i32])
                fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
                builder.call(fn, [address, i32(write), i32(3), i32(1)])
                return context.get_dummy_value()

            return types.void(array, types.intp), codegen

        return prefetch

    _prefetch_read = _prefetch_intrinsic(0)
    _prefetch_write = _prefetch_intrinsic(1)

    @intrinsic
    def _borrow(typingctx, array):
        """The same array without its reference count (no meminfo, no parent).

        numba counts references to an array atomically, and in a function the
        size of `_step` its pruning pass leaves most pairs in place: an array
        read from the kernel state, a view, or an array passed to an inlined
        helper in the env loop each cost a locked increment and decrement,
        about 120 per env-step, and a locked instruction waits for every
        store before it (at B=4096, stores that miss the caches). On a
        borrowed array those calls find no meminfo and return at once (and
        LLVM drops them). Safe where the owner outlives the borrow: `_step`
        and `_reset_env` borrow what their caller and the kernel state hold
        for the whole call, and return none of it."""
        if not isinstance(array, types.Array):
            return None

        def codegen(context, builder, signature, args):
            source = context.make_array(signature.args[0])(context, builder, args[0])
            out = context.make_array(signature.return_type)(context, builder)
            cgutils.copy_struct(out, source)
            out.meminfo = cgutils.get_null_value(out.meminfo.type)
            out.parent = cgutils.get_null_value(out.parent.type)
            return out._getvalue()

        return array(array), codegen

    @_jit(inline=True)
    def _borrow_tables(tables):
        """`_borrow` of each array of `FastAlertSim._tables`."""
        return (
            _borrow(tables[0]),
            _borrow(tables[1]),
            _borrow(tables[2]),
            _borrow(tables[3]),
            _borrow(tables[4]),
        )

    @_jit(inline=True)
    def _prefetch_row(array, b, n_bytes, write):
        """Hint the first ``n_bytes`` of ``array[b]``, line by line."""
        start = b * array.strides[0]
        for offset in range(0, n_bytes, 64):
            if write:
                _prefetch_write(array, start + offset)
            else:
                _prefetch_read(array, start + offset)

    @_jit(inline=True)
    def _prefetch_env(
        b,
        alerts,
        extent,
        inc_i,
        inc_f,
        inc_b,
        down_until,
        service_weight,
        legal,
    ):
        """Hint the state that stepping env b reads (and writes back). Every
        array is walked in env order, but there are about twenty of them,
        with gaps (only a queue's filled rows are read): more streams than the
        hardware prefetcher follows well. The arrays come as arguments, not
        from the kernel state: see `_step` on reference counts."""
        _prefetch_row(alerts, b, extent[b] * alerts.strides[1], True)
        _prefetch_row(inc_i, b, inc_i.strides[0], True)
        _prefetch_row(inc_f, b, inc_f.strides[0], True)
        _prefetch_row(inc_b, b, inc_b.strides[0], True)
        _prefetch_row(down_until, b, down_until.strides[0], False)
        _prefetch_row(service_weight, b, service_weight.strides[0], False)
        _prefetch_row(legal, b, legal.strides[0], True)

    @_jit(inline=True)
    def _prefetch_outputs(b, obs_out, mask_out, observe, copy_masks):
        """Hint the output rows that stepping env b only writes, late in the
        step of the env before: asked for with env b's state, they join about
        60 other lines at once, and the hints wait for the core's miss
        buffers. Alone, half an env later, 3-7% faster at B=4096 in paired
        runs (`ab_vector.py --paired`; docs/performance.md, *Output rows
        hinted late*).
        The decisions' row, when there are decisions, is hinted just before
        (in `_step`, which holds them borrowed)."""
        if observe:
            _prefetch_row(obs_out, b, obs_out.strides[0], True)
        if copy_masks:
            _prefetch_row(mask_out, b, mask_out.strides[0], True)

    @_jit(inline=True)
    def _mix(counter, key):
        x = np.uint64(counter) ^ key
        x ^= x >> _S33
        x *= _C1
        x ^= x >> _S33
        x *= _C2
        x ^= x >> _S33
        return x

    @_jit(inline=True)
    def _episode_key(stream_key, episode):
        """As `rng.episode_key`."""
        return _mix64(stream_key ^ _mix64(np.uint64(episode) * _GOLDEN + _SALT))

    @_jit(inline=True)
    def _u(key, blk, i):
        """The uniform at (blk, i) of the stream ``key`` (as `rng.block_uniforms`)."""
        x = _mix64(key + ((np.uint64(blk) << _S32) + np.uint64(i)) * _GOLDEN)
        return np.float64(x >> _S11) * _TO_UNIT

    @_jit(inline=True)
    def _uniforms(key, blk, start, n, out):
        """The uniforms at (blk, start), ..., (blk, start + n - 1) into ``out``.
        Every draw is a pure function of its address, so a loop can draw a run
        of them ahead of the branch-free code that uses only some: the compiler
        vectorises this loop (eight hashes per instruction with AVX-512),
        where one draw behind a data-dependent branch costs a hash and often
        a mispredicted branch."""
        for i in range(n):
            out[i] = _u(key, blk, start + i)

    @_jit(inline=True)
    def _normal(key, blk, i):
        """The normal made of uniforms i..i+3 (as the reference's ``_draws``)."""
        u0 = _u(key, blk, i)
        u1 = _u(key, blk, i + 1)
        u2 = _u(key, blk, i + 2)
        u3 = _u(key, blk, i + 3)
        return ((u0 + u1) + (u2 + u3) - 2.0) * SQRT3

    @_jit(inline=True)
    def _categorical(u, cdf):
        k = 0
        for j in range(cdf.shape[0]):
            if u >= cdf[j]:
                k += 1
        return k

    @_jit()
    def _validate(actions, running, legal, n_actions, noop_masked):
        """-1 if every action may be applied; else b * A + a of the first bad one,
        offset by B * A when it is masked rather than out of range. Held envs'
        actions are ignored, but must still be in the space (as in the
        reference, which checks the range of every env first)."""
        B, A = actions.shape
        for b in range(B):
            for a in range(A):
                act = actions[b, a]
                if act < 0 or act >= n_actions:
                    return b * A + a
        if noop_masked:
            return -1
        for b in range(B):
            if not running[b]:
                continue
            for a in range(A):
                if legal[b, a, actions[b, a]] == 0:
                    return B * A + b * A + a
        return -1

    @_jit(inline=True)
    def _arrive(
        b,
        blk,
        fp,
        ip,
        off,
        tables,
        t,
        service_weight,
        episode_key,
        excitation,
        alert_counter,
        incident_counter,
        down_until,
        inc_b,
        inc_i,
        inc_f,
        alerts,
        extent,
        totals,
        u_run,
        listed,
        cascades,
        parent_group,
        have_parents,
        events,
        counts,
        incidents,
        incident_severity,
    ):
        """Start incidents, emit their alerts and the noise, and queue them (env
        b, randomness from block ``blk``). Every draw it uses has the address the
        reference reads it from; runs drawn ahead (`_uniforms`) hold some it
        does not use. The arrays come as arguments (``tables`` is the tuple
        of `FastAlertSim._tables`), so that `_step` passes borrowed ones."""
        S = service_weight.shape[1]
        Q = alerts.shape[1]
        M = off[U_NCONF] - off[U_NSEV]
        key = episode_key[b]
        noise_cdf, root_cdf, casc_cdf, noise_type_cdf, related = (
            tables[0],
            tables[1],
            tables[2],
            tables[3],
            tables[4],
        )
        tb = t[b]
        rate = fp[F_BASE_RATE] + excitation[b]
        # Which services start an incident, without a branch: the arrival draws
        # are drawn ahead for every service, and each service is appended to
        # the list (the count moves only when it starts).
        _uniforms(key, blk, off[U_ARRIVE], S, u_run)
        n_started = 0
        for s in range(S):
            free = not (inc_b[b, s, IB_ACTIVE] | (down_until[b, s] > tb))
            casc = cascades[s] & free
            cascades[s] = casc
            x = rate * service_weight[b, s]
            listed[n_started] = s
            n_started += free & (casc | (u_run[s] < x / (1.0 + x)))
        for j in range(n_started):
            s = listed[j]
            casc = cascades[s]
            uid = incident_counter[b] + j
            # Selects, not branches: whether a new incident is critical is
            # nearly a coin flip.
            critical = casc | (_u(key, blk, off[U_CRITICAL] + s) < fp[F_CRITICAL_SHARE])
            su = _u(key, blk, off[U_SEVERITY] + s)
            ut = _u(key, blk, off[U_ITYPE] + s)
            lo = CASC_LO if casc else (CRIT_LO if critical else MINOR_LO)
            width = (
                (CASC_HI - CASC_LO)
                if casc
                else ((CRIT_HI - CRIT_LO) if critical else (MINOR_HI - MINOR_LO))
            )
            sev = lo + width * su
            itype = _categorical(ut, casc_cdf if casc else root_cdf)
            inc_b[b, s, IB_ACTIVE] = True
            inc_i[b, s, II_UID] = uid
            inc_i[b, s, II_GROUP] = parent_group[s] if (casc and have_parents) else uid
            inc_i[b, s, II_TYPE] = itype
            inc_b[b, s, IB_CRITICAL] = critical
            inc_b[b, s, IB_CASCADE] = casc
            if casc:
                span = ip[I_CASC_MAX] - ip[I_CASC_MIN] + 1
                ud = _u(key, blk, off[U_CASC_DELAY] + s)
                inc_i[b, s, II_SILENT_UNTIL] = (
                    tb + ip[I_CASC_MIN] + min(np.int64(ud * span), span - 1)
                )
            else:
                inc_i[b, s, II_SILENT_UNTIL] = tb
            inc_b[b, s, IB_ALERTED] = False
            inc_i[b, s, II_ESCALATED_UNTIL] = -1
            inc_i[b, s, II_ESCALATOR] = -1
            inc_f[b, s, IF_SEVERITY] = sev
            inc_f[b, s, IF_DAMAGE] = 0.0
        incident_counter[b] += n_started
        excitation[b] = fp[F_STORM_DECAY] * excitation[b] + fp[F_STORM_JUMP] * n_started
        if events is not None:
            for s in range(S):
                events[b, s, E_CASCADE] = cascades[s]

        # Survivors first, in order; rows left over are zeroed at the end.
        E = extent[b]
        # Every row is moved down to the first free place, kept or not (a
        # loop of constant length: a few vector moves), and the place moves on
        # only past a kept one: no branch on which alerts were closed. A row
        # written over is one already moved, or one that is not kept.
        n_keep = 0
        for q in range(E):
            for f in range(N_ALERT_FIELDS):
                alerts[b, n_keep, f] = alerts[b, q, f]
            n_keep += alerts[b, n_keep, AL_ACTIVE] > 0.5
        # Arrivals: emitted real alerts in service order, then noise.
        # Which services emit, branch-free like the starts, into the same list.
        _uniforms(key, blk, off[U_EMIT], S, u_run)
        p_emit = fp[F_EMIT]
        n_emit = 0
        for s in range(S):
            alerted = inc_b[b, s, IB_ALERTED]
            awake = inc_b[b, s, IB_ACTIVE] & (inc_i[b, s, II_SILENT_UNTIL] <= tb)
            first = awake & (not alerted)
            emits = awake & (first | (u_run[s] < p_emit))
            inc_b[b, s, IB_ALERTED] = alerted | emits
            listed[n_emit] = s
            n_emit += emits
            if events is None:
                continue
            events[b, s, E_FIRST_ALERT] = first
            if first:
                incidents[b, s, I_FIRST_ALERT] = inc_i[b, s, II_UID]
                crit_flag = FLAG_CRITICAL * inc_b[b, s, IB_CRITICAL]
                incidents[b, s, I_FIRST_FLAGS] = crit_flag + FLAG_CASCADE * inc_b[b, s, IB_CASCADE]
                incident_severity[b, s] = inc_f[b, s, IF_SEVERITY]
            else:
                incidents[b, s, I_FIRST_ALERT] = -1
                incidents[b, s, I_FIRST_FLAGS] = 0
                incident_severity[b, s] = 0.0
        n_noise = 0
        if M > 0:
            un = _u(key, blk, off[U_NCOUNT])
            for j in range(M):
                if un >= noise_cdf[j]:
                    n_noise += 1
        if ip[I_ENSURE] and M > 0 and n_keep + n_emit + n_noise == 0:
            n_noise = 1
        n_new = n_emit + n_noise
        row = n_keep
        k = 0
        dropped = 0
        dropped_real = 0
        for j in range(n_emit):
            s = listed[j]
            if row >= Q:
                dropped += 1
                dropped_real += 1
                k += 1
                continue
            itype = inc_i[b, s, II_TYPE]
            sev = inc_f[b, s, IF_SEVERITY]
            alerts[b, row, AL_ACTIVE] = 1.0
            alerts[b, row, AL_COUNTER] = alert_counter[b] + k
            alerts[b, row, AL_SERVICE] = s
            alerts[b, row, AL_INCIDENT] = inc_i[b, s, II_UID]
            primary = _u(key, blk, off[U_ATYPE] + s) < fp[F_PRIMARY]
            alerts[b, row, AL_TYPE] = itype if primary else related[itype]
            alerts[b, row, AL_TRUE_SEV] = sev
            z = _normal(key, blk, off[U_SEVNOISE] + 4 * s)
            alerts[b, row, AL_VIS_SEV] = min(max(sev + fp[F_SEV_NOISE] * z, 0.0), 1.0)
            alerts[b, row, AL_CONF] = REAL_CONF_LO + (REAL_CONF_HI - REAL_CONF_LO) * _u(
                key, blk, off[U_CONF] + s
            )
            alerts[b, row, AL_BIRTH] = tb
            alerts[b, row, AL_GROUP] = inc_i[b, s, II_GROUP]
            alerts[b, row, AL_NOISE] = 0.0
            row += 1
            k += 1
        for j in range(n_noise):
            if row >= Q:
                dropped += 1
                k += 1
                continue
            alerts[b, row, AL_ACTIVE] = 1.0
            alerts[b, row, AL_COUNTER] = alert_counter[b] + k
            us = _u(key, blk, off[U_NSERVICE] + j)
            alerts[b, row, AL_SERVICE] = min(np.int64(us * S), S - 1)
            alerts[b, row, AL_INCIDENT] = -1.0
            alerts[b, row, AL_TYPE] = _categorical(_u(key, blk, off[U_NTYPE] + j), noise_type_cdf)
            alerts[b, row, AL_TRUE_SEV] = 0.0
            alerts[b, row, AL_VIS_SEV] = NOISE_SEV_LO + (NOISE_SEV_HI - NOISE_SEV_LO) * _u(
                key, blk, off[U_NSEV] + j
            )
            alerts[b, row, AL_CONF] = NOISE_CONF_LO + (NOISE_CONF_HI - NOISE_CONF_LO) * _u(
                key, blk, off[U_NCONF] + j
            )
            alerts[b, row, AL_BIRTH] = tb
            alerts[b, row, AL_GROUP] = -1.0
            alerts[b, row, AL_NOISE] = 1.0
            row += 1
            k += 1
        for q in range(row, E):
            for f in range(N_ALERT_FIELDS):
                alerts[b, q, f] = 0.0
        extent[b] = row
        alert_counter[b] += n_new
        totals[b, 0] += n_new
        totals[b, 1] += n_noise
        counts[b, N_NEW_ALERTS] = n_new
        counts[b, N_NEW_NOISE] = n_noise
        counts[b, N_DROPPED] = dropped
        counts[b, N_DROPPED_REAL] = dropped_real

    @_jit()
    def _reset_env(b, k):
        """Open the episode whose key is ``episode_key[b]`` in env b, as the
        reference's ``_reset_env`` does."""
        # Borrowed, as in `_step`: a reset comes every ~16 env-steps of a
        # random policy, and each array read from the state would otherwise
        # cost a locked increment and decrement here and in the calls below.
        scratch_f, order = _borrow(k.work_f), _borrow(k.work_order)
        u_graph, graph = _borrow(k.work_graph), _borrow(k.graph)
        fixed_adj, fixed_layer = _borrow(k.fixed_adj), _borrow(k.fixed_layer)
        t, adj, layer = _borrow(k.t), _borrow(k.adj), _borrow(k.layer)
        service_weight, id_key = _borrow(k.service_weight), _borrow(k.id_key)
        episode_key, excitation = _borrow(k.episode_key), _borrow(k.excitation)
        failures, down_until = _borrow(k.failures), _borrow(k.down_until)
        alert_counter, incident_counter = _borrow(k.alert_counter), _borrow(k.incident_counter)
        inc_b, inc_i, inc_f = _borrow(k.inc_b), _borrow(k.inc_i), _borrow(k.inc_f)
        alerts, extent, totals = _borrow(k.alerts), _borrow(k.extent), _borrow(k.totals)
        terminated, truncated = _borrow(k.terminated), _borrow(k.truncated)
        needs_reset = _borrow(k.needs_reset)
        scratch_events, scratch_counts = _borrow(k.scratch_events), _borrow(k.scratch_counts)
        reset_incidents = _borrow(k.reset_incidents)
        reset_incident_severity = _borrow(k.reset_incident_severity)
        fp, ip, off = _borrow(k.fp), _borrow(k.ip), _borrow(k.off)
        tables = _borrow_tables(k.tables)
        u_run, listed = _borrow(k.work_u), _borrow(k.work_service_int[3])
        S = service_weight.shape[1]
        width = u_graph.shape[1]
        key = episode_key[b]
        n_graph = S * (1 + width)
        for i in range(n_graph):
            scratch_f[i] = _u(key, TOPOLOGY_BLOCK, i)
        for i in range(2 * S):
            scratch_f[n_graph + i] = _u(key, WEIGHT_BLOCK, i)
        _episode_draws(
            scratch_f[:n_graph], scratch_f[n_graph:], width, order, u_graph, service_weight[b]
        )
        x = _mix64(key + (np.uint64(ID_KEY_BLOCK) << _S32) * _GOLDEN)
        id_key[b] = x >> _S1
        if graph[0] == 1:
            for u in range(S):
                for v in range(S):
                    adj[b, u, v] = fixed_adj[u, v]
                layer[b, u] = fixed_layer[u]
        else:
            for u in range(S):
                for v in range(S):
                    adj[b, u, v] = False
            depth = graph[1]
            _build_layered_dag(order, u_graph, depth, graph[2], adj[b], layer[b])
        t[b] = 0
        excitation[b] = 0.0
        failures[b] = 0
        alert_counter[b] = 0
        incident_counter[b] = 0
        for s in range(S):
            down_until[b, s] = 0
            for f in range(inc_b.shape[2]):
                inc_b[b, s, f] = False
            for f in range(inc_i.shape[2]):
                inc_i[b, s, f] = -1
            for f in range(inc_f.shape[2]):
                inc_f[b, s, f] = 0.0
        for q in range(extent[b]):
            for f in range(alerts.shape[2]):
                alerts[b, q, f] = 0.0
        extent[b] = 0
        terminated[b] = False
        truncated[b] = False
        totals[b, 0] = 0
        totals[b, 1] = 0
        needs_reset[b] = False
        # The step's rows: a reset inside a step comes before that env's use.
        cascades = _borrow(k.work_service_bool[4])
        parent_group = _borrow(k.work_service_int[1])
        for s in range(S):
            cascades[s] = False
            parent_group[s] = -1
        _arrive(
            b,
            0,
            fp,
            ip,
            off,
            tables,
            t,
            service_weight,
            episode_key,
            excitation,
            alert_counter,
            incident_counter,
            down_until,
            inc_b,
            inc_i,
            inc_f,
            alerts,
            extent,
            totals,
            u_run,
            listed,
            cascades,
            parent_group,
            False,
            scratch_events,
            scratch_counts,
            reset_incidents,
            reset_incident_severity,
        )
        for s in range(S):
            reset_incidents[b, s, I_CLOSED] = -1

    @_jit()
    def _step(
        actions,
        running,
        autoreset,
        k,
        decisions,
        truth,
        alert_ids,
        components,
        agent_components,
        events,
        counts,
        incidents,
        incident_severity,
        team_reward,
        agent_reward,
        obs_out,
        mask_out,
    ):
        """One step of every running env; with ``autoreset``, envs that need a
        reset are reset (next episode of their stream) and held. Returns the
        number of envs that need a reset afterwards, or -1 - code when an action
        is rejected (before anything changes).

        Lean records: with ``truth`` None, the records `engine.LEAN_OMITS` names
        must all be None too, and are neither computed nor written; minimal
        ones: ``decisions`` None as well (`engine.MINIMAL_OMITS`). The checks
        are ``is None`` on arguments, so numba compiles a version without
        them; ``_arrive`` tests ``events`` the same way."""
        # Everything the env loop touches is borrowed (see `_borrow`): the
        # kernel state's arrays, the row views taken of them, the arguments.
        fp, ip, off = _borrow(k.fp), _borrow(k.ip), _borrow(k.off)
        tables = _borrow_tables(k.tables)
        verb_pattern, reward_vector = _borrow(k.verb_pattern), _borrow(k.reward_vector)
        survive, slot_flags = _borrow(k.survive), _borrow(k.work_slot_flags)
        t, adj, service_weight = _borrow(k.t), _borrow(k.adj), _borrow(k.service_weight)
        id_key, stream_key = _borrow(k.id_key), _borrow(k.stream_key)
        episode, episode_key = _borrow(k.episode), _borrow(k.episode_key)
        excitation, totals = _borrow(k.excitation), _borrow(k.totals)
        alert_counter, incident_counter = _borrow(k.alert_counter), _borrow(k.incident_counter)
        failures, down_until = _borrow(k.failures), _borrow(k.down_until)
        inc_b, inc_i, inc_f = _borrow(k.inc_b), _borrow(k.inc_i), _borrow(k.inc_f)
        alerts, extent = _borrow(k.alerts), _borrow(k.extent)
        legal, needs_reset = _borrow(k.legal), _borrow(k.needs_reset)
        terminated_out, truncated_out = _borrow(k.terminated), _borrow(k.truncated)
        role_features = _borrow(k.role_features)
        # The records a lean step omits stay as they came: their ``is None``
        # tests must see the arguments themselves.
        actions, running = _borrow(actions), _borrow(running)
        components = _borrow(components)
        if decisions is not None:  # a name of its own, so the test is on the argument
            decision_rows = _borrow(decisions)
        counts, team_reward = _borrow(counts), _borrow(team_reward)
        obs_out, mask_out = _borrow(obs_out), _borrow(mask_out)
        B, A = actions.shape
        S = service_weight.shape[1]
        N = (legal.shape[2] - 1) // 4
        C = reward_vector.shape[0]
        K = ip[I_K]
        noop_masked = ip[I_ON_ILLEGAL_NOOP] == 1
        observe = obs_out.shape[0] == B
        copy_masks = mask_out.shape[0] == B  # observing, and the caller wants them
        prefetch = B >= PREFETCH_FROM_BATCH
        legal_rows = legal.reshape((B, legal.shape[1] * legal.shape[2]))
        mask_rows = mask_out.reshape((mask_out.shape[0], legal_rows.shape[1]))
        wab, wai = _borrow(k.work_agent_bool), _borrow(k.work_agent_int)
        wsb, wsi = _borrow(k.work_service_bool), _borrow(k.work_service_int)
        dec, conflict, claim, granted_claim, granted = wab[0], wab[1], wab[2], wab[3], wab[4]
        noise, live, real_claim, resolves, escalates = wab[5], wab[6], wab[7], wab[8], wab[9]
        masked_now = wab[10]
        slot, verb, rank, svc = wai[0], wai[1], wai[2], wai[3]
        prio, credit, u_run = _borrow(k.work_prio), _borrow(k.work_credit), _borrow(k.work_u)
        handled_now, resolved_now, closed, failed_now = wsb[0], wsb[1], wsb[2], wsb[3]
        cascades = wsb[4]
        failed_list, parent_group, same_count, listed = wsi[0], wsi[1], wsi[2], wsi[3]
        bad = _validate(actions, running, legal, legal.shape[2], noop_masked)
        if bad >= 0:
            return -1 - bad
        for b in range(B):
            if running[b] and (t[b] >= ip[I_MAX_STEPS] or failures[b] > ip[I_THRESHOLD]):
                return -1 - 2 * B * A - b  # it ended (needs_reset was forced off)
        # Accumulated into, so cleared here: after the checks, so a rejected
        # step leaves reused buffers as the last step wrote them.
        if events is not None:
            events[:] = False
        counts[:] = 0
        n_done = 0
        for b in range(B):
            if not running[b]:
                if autoreset and needs_reset[b]:
                    episode[b] += 1
                    episode_key[b] = _episode_key(stream_key[b], episode[b])
                    _reset_env(b, k)
                    _legal(b, alerts, verb_pattern, slot_flags, legal, N)
                _hold(
                    b,
                    decisions,
                    truth,
                    alert_ids,
                    components,
                    agent_components,
                    events,
                    counts,
                    incidents,
                    incident_severity,
                    team_reward,
                    agent_reward,
                )
                for a in range(A):
                    actions[b, a] = 0
                if observe:
                    _observe_env(
                        b,
                        t,
                        alerts,
                        _queue_length(b, alerts, extent),
                        inc_b,
                        inc_f,
                        down_until,
                        failures,
                        role_features,
                        obs_out,
                        ip[I_MAX_STEPS],
                        K,
                        ip[I_THRESHOLD],
                        N,
                        same_count,
                    )
                if copy_masks:
                    _copy_mask(b, legal_rows, mask_rows)
                if needs_reset[b]:
                    n_done += 1
                continue
            if prefetch and b + PREFETCH_AHEAD < B:
                _prefetch_env(
                    b + PREFETCH_AHEAD,
                    alerts,
                    extent,
                    inc_i,
                    inc_f,
                    inc_b,
                    down_until,
                    service_weight,
                    legal,
                )
            tb = t[b]
            key = episode_key[b]
            blk = tb + 1
            _uniforms(key, blk, off[U_PRIORITY], A, prio)
            for a in range(A):
                act = actions[b, a]
                masked = legal[b, a, act] == 0
                if masked and noop_masked:
                    act = 0
                    actions[b, a] = 0
                dec[a] = act > 0
                slot[a] = (act - 1) // N_VERBS if act > 0 else 0
                verb[a] = (act - 1) % N_VERBS if act > 0 else -1
                if decisions is not None:  # read only for the outcome rows
                    masked_now[a] = masked
            # rank: the place of each agent in the priority order (ascending draws).
            # The comparisons below use & and | on booleans, not `and`/`or`: with
            # random decisions their outcomes are coin flips, which branches
            # mispredict and selects do not.
            for a in range(A):
                r = 0
                for c in range(A):
                    r += (prio[c] < prio[a]) | ((prio[c] == prio[a]) & (c < a))
                rank[a] = r
            for a in range(A):
                c_ = False
                for c in range(A):
                    c_ |= dec[c] & (slot[c] == slot[a]) & (rank[c] < rank[a])
                c_ &= dec[a]
                conflict[a] = c_
                claims = (verb[a] == INVESTIGATE) | (verb[a] == ESCALATE)
                claim[a] = dec[a] & (not c_) & claims
            for a in range(A):
                above = 0
                for c in range(A):
                    above += claim[c] & (rank[c] < rank[a])
                granted_claim[a] = claim[a] & (above < K)
                granted[a] = dec[a] & (not conflict[a]) & (not (claim[a] & (not granted_claim[a])))
            for a in range(A):
                # Read for every member; what is read counts only for a
                # decision, and a decision's slot is filled (masked ones are
                # no-ops or rejected). An empty slot's row is zeros.
                q = slot[a]
                noise[a] = alerts[b, q, AL_NOISE] > 0.5
                s = np.int64(alerts[b, q, AL_SERVICE])
                svc[a] = s
                same_incident = inc_i[b, s, II_UID] == np.int64(alerts[b, q, AL_INCIDENT])
                live[a] = inc_b[b, s, IB_ACTIVE] & same_incident & (not noise[a])
                real_claim[a] = granted_claim[a] & live[a]
            for s in range(S):
                handled_now[s] = False
                resolved_now[s] = False
            for a in range(A):
                blocked = False
                for c in range(A):
                    blocked |= real_claim[c] & (svc[c] == svc[a]) & (rank[c] < rank[a])
                takes = real_claim[a] & (not blocked)
                pending = live[a] & (inc_i[b, svc[a], II_ESCALATED_UNTIL] >= 0)
                resolves[a] = takes & (verb[a] == INVESTIGATE)
                escalates[a] = takes & (verb[a] == ESCALATE) & (not pending)
                handled_now[svc[a]] |= resolves[a] | escalates[a]
            for a in range(A):
                for c in range(C):
                    credit[a, c] = 0.0
            # Outcome rows, branch-free: each outcome is a coin flip to the
            # branch predictor, so every test is computed and the first that
            # holds, in the reference's order, is picked by selects from the
            # last one up.
            n_denied = 0
            for a in range(A):
                n_denied += claim[a] & (not granted[a])
                q = slot[a]
                s = svc[a]
                is_live, is_noise = live[a], noise[a]
                granted_a, resolves_a, escalates_a = granted[a], resolves[a], escalates[a]
                critical = is_live & inc_b[b, s, IB_CRITICAL]
                cascade = is_live & inc_b[b, s, IB_CASCADE]
                pending = is_live & (inc_i[b, s, II_ESCALATED_UNTIL] >= 0)
                handled = (handled_now[s] | pending) & is_live
                ignores = granted_a & (verb[a] == IGNORE)
                wasted = granted_claim[a] & is_noise
                redundant = granted_claim[a] & (not is_noise) & (not resolves_a) & (not escalates_a)
                ign_noise = ignores & is_noise
                ign_handled = ignores & (not is_noise) & (handled | (not is_live))
                ign_critical = ignores & critical & (not ign_handled)
                ign_minor = ignores & (not is_noise) & (not ign_handled) & (not critical)
                credit[a, C_CRITICAL] = 1.0 if resolves_a & critical else 0.0
                credit[a, C_CASCADE] = 1.0 if resolves_a & cascade else 0.0
                credit[a, C_FP_IGNORED] = 1.0 if ign_noise else 0.0
                credit[a, C_UNNECESSARY] = 1.0 if wasted | redundant else 0.0
                credit[a, C_MISSED] = 1.0 if ign_critical else 0.0
                if decisions is not None:  # a minimal step writes no outcome row
                    out = OUT_DELAYED if granted_a & (verb[a] == DELAY) else 0
                    out = OUT_ALREADY_HANDLED if ign_handled else out
                    out = OUT_MINOR_IGNORED if ign_minor else out
                    out = OUT_CRITICAL_IGNORED if ign_critical else out
                    out = OUT_NOISE_IGNORED if ign_noise else out
                    out = OUT_REDUNDANT if redundant else out
                    out = OUT_WASTED if wasted else out
                    out = OUT_ESCALATED if escalates_a else out
                    resolved_as = OUT_RESOLVED_CRITICAL if critical else OUT_RESOLVED_MINOR
                    out = resolved_as if resolves_a else out
                    status = STATUS_MASKED if masked_now[a] else 0
                    status = STATUS_DENIED_CONFLICT if conflict[a] else status
                    status = STATUS_DENIED_BUDGET if claim[a] else status
                    status = STATUS_GRANTED if granted_a else status
                    decision_rows[b, a, D_STATUS] = status
                    decision_rows[b, a, D_OUTCOME] = out
                    decision_rows[b, a, D_VERB] = verb[a]
                    decision_rows[b, a, D_SLOT] = slot[a] if dec[a] else -1
                    # What the slot held; an empty slot's row is zeros, read and
                    # not kept.
                    present = dec[a] & (alerts[b, q, AL_ACTIVE] > 0.5)
                    real = present & (not is_noise)
                    if truth is not None:
                        raw_id = _mix(np.int64(alerts[b, q, AL_COUNTER]), id_key[b])
                        alert_ids[b, a] = raw_id if present else np.uint64(0)
                        truth[b, a] = alerts[b, q, AL_TRUE_SEV] if present else 0.0
                    decision_rows[b, a, D_SERVICE] = s if present else -1
                    decision_rows[b, a, D_TYPE] = np.int64(alerts[b, q, AL_TYPE]) if present else -1
                    decision_rows[b, a, D_INCIDENT] = (
                        np.int64(alerts[b, q, AL_INCIDENT]) if real else -1
                    )
                    decision_rows[b, a, D_GROUP] = np.int64(alerts[b, q, AL_GROUP]) if real else -1
                    decision_rows[b, a, D_NOISE] = is_noise & present
            # Apply: close decided alerts, resolve and escalate incidents.
            for a in range(A):
                closes = granted[a] & (verb[a] != DELAY)
                alerts[b, slot[a], AL_ACTIVE] = 0.0 if closes else alerts[b, slot[a], AL_ACTIVE]
                resolved_now[svc[a]] |= resolves[a]
                if escalates[a]:
                    inc_i[b, svc[a], II_ESCALATED_UNTIL] = tb + ip[I_ESC_DELAY]
                    inc_i[b, svc[a], II_ESCALATOR] = a
            # Specialists, damage, self-resolution, failures, for the services
            # with an open incident (a list made without a branch, as in
            # `_arrive`): nothing happens to the others, whose flags stay
            # False. Branch-free but for the rare escalation that comes due,
            # with the self-resolution draws drawn ahead (see `_uniforms`).
            _uniforms(key, blk, off[U_SELF], S, u_run)
            n_open = 0
            for s in range(S):
                failed_now[s] = False
                closed[s] = False
                listed[n_open] = s
                n_open += inc_b[b, s, IB_ACTIVE]
            if truth is not None:
                for s in range(S):
                    incidents[b, s, I_CLOSED] = -1
            n_failed = 0
            for j in range(n_open):
                s = listed[j]  # its incident is open
                esc = inc_i[b, s, II_ESCALATED_UNTIL]
                due = (esc >= 0) & (esc <= tb) & (not resolved_now[s])
                if truth is not None:
                    events[b, s, E_ESCALATION_RESOLVED] = due
                if due:
                    who = inc_i[b, s, II_ESCALATOR]
                    credit[who, C_CRITICAL] += 1.0 if inc_b[b, s, IB_CRITICAL] == 1 else 0.0
                    credit[who, C_CASCADE] += 1.0 if inc_b[b, s, IB_CASCADE] == 1 else 0.0
                active = (not resolved_now[s]) & (not due)
                crit = inc_b[b, s, IB_CRITICAL]
                factor = 1.0 if crit else fp[F_MINOR_FACTOR]
                damage = inc_f[b, s, IF_DAMAGE]
                grown = damage + fp[F_DAMAGE] * inc_f[b, s, IF_SEVERITY] * factor
                damage = grown if active else damage
                inc_f[b, s, IF_DAMAGE] = damage
                self_res = active & (not crit) & (esc < 0) & (u_run[s] < fp[F_MINOR_RESOLVE])
                failed = active & (not self_res) & (damage >= 1.0)
                failed_now[s] = failed
                shut = resolved_now[s] | due | self_res | failed
                closed[s] = shut
                if truth is not None:
                    events[b, s, E_SELF_RESOLVED] = self_res
                    events[b, s, E_FAILED] = failed
                    events[b, s, E_RESOLVED] = resolved_now[s]
                    incidents[b, s, I_CLOSED] = inc_i[b, s, II_UID] if closed[s] else -1
                inc_b[b, s, IB_ACTIVE] = not shut
                inc_i[b, s, II_ESCALATED_UNTIL] = -1 if shut else esc
                inc_i[b, s, II_ESCALATOR] = -1 if shut else inc_i[b, s, II_ESCALATOR]
                n_failed += failed
                down_until[b, s] = tb + 1 + ip[I_RECOVERY] if failed else down_until[b, s]
            failures[b] += n_failed
            for s in range(S):
                cascades[s] = False
                parent_group[s] = -1
            if n_failed > 0:
                n_list = 0
                for w in range(S):
                    if failed_now[w]:
                        failed_list[n_list] = w
                        n_list += 1
                for v in range(S):
                    parents = 0
                    for j in range(n_list):
                        w = failed_list[j]
                        if adj[b, w, v]:
                            parents += 1
                            parent_group[v] = max(parent_group[v], inc_i[b, w, II_GROUP])
                    if fp[F_CASCADE] > 0 and parents > 0:
                        cascades[v] = _u(key, blk, off[U_CASCADE] + v) < 1.0 - survive[parents]
            # The queue in one branch-free pass, with the clearing draws drawn
            # ahead: a real alert whose incident closed is closed with it, and
            # an open noise alert clears by chance. (Closing reads no noise
            # rows and clearing no real ones, so this is the reference's two
            # passes in one.)
            E = extent[b]
            _uniforms(key, blk, off[U_NCLEAR], E, u_run)
            cleared = 0
            for q in range(E):
                open_ = alerts[b, q, AL_ACTIVE] > 0.5
                is_noise = alerts[b, q, AL_NOISE] > 0.5
                clears = is_noise & open_ & (u_run[q] < fp[F_NOISE_CLEAR])
                shut = (not is_noise) & closed[np.int64(alerts[b, q, AL_SERVICE])]
                alerts[b, q, AL_ACTIVE] = 0.0 if clears | shut else alerts[b, q, AL_ACTIVE]
                cleared += clears
            counts[b, N_NOISE_CLEARED] = cleared
            t[b] = tb + 1
            if prefetch and b + 1 < B:
                if decisions is not None:
                    _prefetch_row(decision_rows, b + 1, decision_rows.strides[0], True)
                _prefetch_outputs(b + 1, obs_out, mask_out, observe, copy_masks)
            _arrive(
                b,
                blk,
                fp,
                ip,
                off,
                tables,
                t,
                service_weight,
                episode_key,
                excitation,
                alert_counter,
                incident_counter,
                down_until,
                inc_b,
                inc_i,
                inc_f,
                alerts,
                extent,
                totals,
                u_run,
                listed,
                cascades,
                parent_group,
                True,
                events,
                counts,
                incidents,
                incident_severity,
            )
            # Rewards: team components and individual credit, then their sums.
            for c in range(C):
                total = 0.0
                for a in range(A):
                    total += credit[a, c]
                unattributed = float(n_failed) if c == C_FAILURE else 0.0
                components[b, c] = (total + unattributed) * reward_vector[c]
                if truth is not None:
                    for a in range(A):
                        share = credit[a, c] + unattributed / A
                        agent_components[b, a, c] = share * reward_vector[c]
            team = 0.0
            for c in range(C):
                team += components[b, c]
            team_reward[b] = team
            if truth is not None:
                for a in range(A):
                    mine = 0.0
                    for c in range(C):
                        mine += agent_components[b, a, c]
                    agent_reward[b, a] = mine
            counts[b, N_FAILED] = n_failed
            counts[b, N_DENIED] = n_denied
            terminated = failures[b] > ip[I_THRESHOLD]
            truncated = (t[b] >= ip[I_MAX_STEPS]) and not terminated
            counts[b, N_TERMINATED] = terminated
            counts[b, N_TRUNCATED] = truncated
            terminated_out[b] = terminated
            truncated_out[b] = truncated
            needs_reset[b] = terminated or truncated
            if terminated or truncated:
                n_done += 1
            _legal(b, alerts, verb_pattern, slot_flags, legal, N)
            if observe:
                _observe_env(
                    b,
                    t,
                    alerts,
                    extent[b],  # after _arrive, the queue's rows up to its extent are all filled
                    inc_b,
                    inc_f,
                    down_until,
                    failures,
                    role_features,
                    obs_out,
                    ip[I_MAX_STEPS],
                    K,
                    ip[I_THRESHOLD],
                    N,
                    same_count,
                )
            if copy_masks:
                _copy_mask(b, legal_rows, mask_rows)
        return n_done

    @_jit()
    def _step_reusing(actions, running, autoreset, k, obs_out, mask_out):
        """`_step` into the record buffers held in the kernel state."""
        return _step(
            actions,
            running,
            autoreset,
            k,
            k.out_decisions,
            k.out_truth,
            k.out_alert_ids,
            k.out_components,
            k.out_agent_components,
            k.out_events,
            k.out_counts,
            k.out_incidents,
            k.out_incident_severity,
            k.out_reward,
            k.out_agent_reward,
            obs_out,
            mask_out,
        )

    @_jit()
    def _reset_many(ids, k):
        """Reset each env of ``ids`` (their episode keys already set)."""
        N = (k.legal.shape[2] - 1) // 4
        for b in ids:
            _reset_env(b, k)
            _legal(b, k.alerts, k.verb_pattern, k.work_slot_flags, k.legal, N)

    @_jit()
    def _next_episodes(k):
        """Move every env to the next episode of its stream and reset it, as
        ``reset()`` without seeds does. False, with nothing changed, when some
        env has no stream yet."""
        episode = k.episode
        B = episode.shape[0]
        for b in range(B):
            if episode[b] < 0:
                return False
        for b in range(B):
            episode[b] += 1
            k.episode_key[b] = _episode_key(k.stream_key[b], episode[b])
        _reset_many(np.arange(B), k)
        return True

    @_jit(inline=True)
    def _hold(
        b,
        decisions,
        truth,
        alert_ids,
        components,
        agent_components,
        events,
        counts,
        incidents,
        incident_severity,
        team_reward,
        agent_reward,
    ):
        """The outcome rows of an env held still: nothing happened."""
        if decisions is not None:
            decisions[b] = -1
            decisions[b, :, D_STATUS] = 0
            decisions[b, :, D_OUTCOME] = 0
            decisions[b, :, D_NOISE] = 0
        components[b] = 0.0
        counts[b] = 0
        team_reward[b] = 0.0
        if truth is not None:
            truth[b] = 0.0
            alert_ids[b] = 0
            agent_components[b] = 0.0
            events[b] = False
            incidents[b] = -1
            incident_severity[b] = 0.0
            agent_reward[b] = 0.0

    @_jit()
    def _visible(b, k):
        """Env b's visible alerts (raw ids, fields) into the state's buffers;
        returns their number, the system load and the queue length."""
        alerts, extent, id_key, t = k.alerts, k.extent, k.id_key, k.t
        ids_out, fields_out = k.visible_ids, k.visible_fields
        n_slots = ids_out.shape[0]
        inc_b, inc_f, down_until = k.inc_b, k.inc_f, k.down_until
        n = 0
        for q in range(n_slots):
            if alerts[b, q, AL_ACTIVE] < 0.5:
                break
            ids_out[q] = _mix(np.int64(alerts[b, q, AL_COUNTER]), id_key[b])
            fields_out[q, 0] = alerts[b, q, AL_VIS_SEV]
            fields_out[q, 1] = alerts[b, q, AL_CONF]
            fields_out[q, 2] = alerts[b, q, AL_TYPE]
            fields_out[q, 3] = t[b] - alerts[b, q, AL_BIRTH]
            fields_out[q, 4] = alerts[b, q, AL_SERVICE]
            n += 1
        qlen = _queue_length(b, alerts, extent)
        load = _load(b, t, inc_b, inc_f, down_until, qlen, alerts.shape[1])
        return n, load, qlen

    @_jit(inline=True)
    def _queue_length(b, alerts, extent):
        qlen = 0
        for q in range(extent[b]):
            if alerts[b, q, AL_ACTIVE] > 0.5:
                qlen += 1
        return qlen

    @_jit(inline=True)
    def _load(b, t, inc_b, inc_f, down_until, qlen, Q):
        S = down_until.shape[1]
        impaired = 0.0
        for s in range(S):
            down = 1.0 if down_until[b, s] > t[b] else 0.0
            damage = inc_f[b, s, IF_DAMAGE] * (1.0 if inc_b[b, s, IB_ACTIVE] else 0.0)
            impaired += min(damage + down, 1.0)
        impaired = impaired / S
        return min(max(0.2 + 0.6 * impaired + 0.2 * qlen / Q, 0.0), 1.0)

    @_jit(inline=True)
    def _copy_mask(b, legal_rows, mask_rows):
        """Env b's masks into the output, as one flat row of bytes (both
        arrays are (B, A * n_actions) views that `_step` takes once): the
        compiler vectorises that loop, not the nested one (about 350
        instructions per env-step before)."""
        for j in range(legal_rows.shape[1]):
            mask_rows[b, j] = legal_rows[b, j]

    @_jit(inline=True)
    def _legal(b, alerts, verb_pattern, slot_flags, legal, N):
        """Env b's masks: which slots are filled, spread over their four verbs
        once, then each member's row as that AND its verbs, a byte-wise loop the
        compiler vectorises (about a seventh of the instructions of a loop over
        slots and verbs)."""
        A = legal.shape[1]
        for n in range(N):
            present = np.int8(alerts[b, n, AL_ACTIVE] > 0.5)
            for v in range(4):
                slot_flags[4 * n + v] = present
        for a in range(A):
            legal[b, a, 0] = 1
            for j in range(4 * N):
                legal[b, a, 1 + j] = slot_flags[j] & verb_pattern[a, j]

    @_jit()
    def _observe(
        t,
        alerts,
        extent,
        inc_b,
        inc_f,
        down_until,
        failures,
        role_features,
        obs,
        max_steps,
        K,
        threshold,
        n_slots,
    ):
        same_count = np.zeros(down_until.shape[1], dtype=np.int64)
        for b in range(obs.shape[0]):
            _observe_env(
                b,
                t,
                alerts,
                _queue_length(b, alerts, extent),
                inc_b,
                inc_f,
                down_until,
                failures,
                role_features,
                obs,
                max_steps,
                K,
                threshold,
                n_slots,
                same_count,
            )

    @_jit(inline=True)
    def _observe_env(
        b,
        t,
        alerts,
        qlen,
        inc_b,
        inc_f,
        down_until,
        failures,
        role_features,
        obs,
        max_steps,
        K,
        threshold,
        n_slots,
        same_count,
    ):
        """Env b's observation into ``obs[b]``: row 0 is computed, the other
        agents' rows copy it; then the role features (see `AlertSim.observe`)."""
        rows_out = obs.shape[1]  # every agent, or 1 for the team's shared view
        team = role_features.shape[0]
        Q = alerts.shape[1]
        S = down_until.shape[1]
        N = n_slots
        tb = t[b]
        row = obs[b, 0]
        # Alerts per service among the visible slots (a compacted prefix).
        for n in range(N):
            same_count[np.int64(alerts[b, n, AL_SERVICE])] += alerts[b, n, AL_ACTIVE] > 0.5
        # The reference multiplies the features of a slot by its presence (1.0
        # or 0.0); here a filled slot skips the products and an empty one is
        # zeros. Filled slots come first, so the branch is predictable.
        for n in range(N):
            p = alerts[b, n, AL_ACTIVE]
            o = n * SLOT_FEATURES
            row[o] = p
            row[o + 1] = alerts[b, n, AL_VIS_SEV]
            row[o + 2] = alerts[b, n, AL_CONF]
            if p > 0.5:
                # The type's one-hot: zeros, then the one. A type is always in
                # range: drawn through an inner CDF of N_TYPES - 1 entries, or
                # an ingested one, which `external` checks against N_TYPES.
                for k in range(N_TYPES):
                    row[o + 3 + k] = 0.0
                row[o + 3 + np.int64(alerts[b, n, AL_TYPE])] = 1.0
                age = (tb - alerts[b, n, AL_BIRTH]) / max_steps
                row[o + 3 + N_TYPES] = min(age, 1.0)
                service = alerts[b, n, AL_SERVICE]
                row[o + 4 + N_TYPES] = service / max(S - 1, 1)
                same = same_count[np.int64(service)]
                row[o + 5 + N_TYPES] = max(same - 1, 0) / max(N - 1, 1)
            else:
                for d in range(3, SLOT_FEATURES):
                    row[o + d] = 0.0
        for n in range(N):
            same_count[np.int64(alerts[b, n, AL_SERVICE])] = 0
        g = N * SLOT_FEATURES
        impaired = 0.0
        for s in range(S):
            down = 1.0 if down_until[b, s] > tb else 0.0
            damage = inc_f[b, s, IF_DAMAGE] * (1.0 if inc_b[b, s, IB_ACTIVE] else 0.0)
            impaired += min(damage + down, 1.0)
            row[g + GLOBAL_FEATURES + s] = down
        impaired = impaired / S
        row[g] = min(max(0.2 + 0.6 * impaired + 0.2 * qlen / Q, 0.0), 1.0)
        row[g + 1] = qlen / Q
        row[g + 2] = max(qlen - N, 0) / Q
        row[g + 3] = max(max_steps - tb, 0) / max_steps
        row[g + 4] = 1.0 if K > 0 else 0.0
        row[g + 5] = min(K / team, 1.0)
        row[g + 6] = min(failures[b] / (threshold + 1), 1.0)
        nb = g + GLOBAL_FEATURES + S
        with_roles = obs.shape[2] > nb
        for a in range(1, rows_out):
            for d in range(nb):
                obs[b, a, d] = row[d]
        if with_roles:
            for a in range(rows_out):
                for r in range(role_features.shape[1]):
                    obs[b, a, nb + r] = role_features[a, r]


if numba is not None:

    @structref.register
    class KernelStateType(types.StructRef):
        """Numba type of `KernelState` (its fields typed as given, not literal)."""

        def preprocess_fields(self, fields):
            return tuple((name, types.unliteral(typ)) for name, typ in fields)

    class KernelState(structref.StructRefProxy):
        """A sim's kernel arrays, bound once. It holds the same buffers as the
        sim's attributes, so the arrays must only ever change in place."""

    structref.define_proxy(KernelState, KernelStateType, KERNEL_FIELDS)

    @_jit()
    def _new_kernel_state(*arrays):
        # Built in compiled code so the constructor comes from the disk cache;
        # `KernelState(...)` from Python compiles it in every process (~1 s).
        return KernelState(*arrays)


CASC_LO, CASC_HI = CASCADE_SEVERITY
CRIT_LO, CRIT_HI = CRITICAL_SEVERITY
MINOR_LO, MINOR_HI = MINOR_SEVERITY
REAL_CONF_LO, REAL_CONF_HI = REAL_CONFIDENCE
NOISE_SEV_LO, NOISE_SEV_HI = NOISE_SEVERITY
NOISE_CONF_LO, NOISE_CONF_HI = NOISE_CONFIDENCE


class FastAlertSim(AlertSim):
    """`AlertSim` with the step, the resets and the observation compiled by numba.

    Same constructor, same state, same draws, same outcome records: a drop-in
    replacement that the tests hold to the numpy reference bit for bit.
    """

    def __init__(self, config: TaskConfig, batch_size: int = 1) -> None:
        if numba is None:
            raise ImportError(
                "the numba backend needs numba: pip install 'adaptive-alert-triage[fast]'"
            )
        super().__init__(config, batch_size)
        S = self.S
        self._fp, self._ip, self._off = _params(config, self.layout)
        self._tables = (
            self._noise_cdf,
            ROOT_TYPE_CDF,
            CASCADE_TYPE_CDF,
            NOISE_TYPE_CDF,
            RELATED_TYPE.astype(np.int64),
        )
        fixed = self._fixed_graph is not None
        self._graph = np.array(
            [int(fixed), config.graph_depth, config.max_dependencies], dtype=np.int64
        )
        self._fixed_adj, self._fixed_layer = (
            self._fixed_graph if fixed else (np.zeros((S, S), dtype=bool), np.zeros(S, np.int64))
        )
        self._all_active = np.ones(self.B, dtype=bool)
        self._no_obs = np.empty((0, self.A, self.obs_dim), dtype=np.float32)
        self._no_masks = np.empty((0, self.A, self.n_actions), dtype=np.int8)
        self._scratch_events = np.zeros((self.B, S, N_SERVICE_EVENTS), dtype=bool)
        self._scratch_counts = np.zeros((self.B, N_COUNTS), dtype=np.int64)
        self._visible_ids = np.empty(self.N, dtype=np.uint64)
        self._visible_fields = np.empty((self.N, 5))
        # A step's outcome arrays as (shape, dtype), resolved once: np.empty
        # with both ready costs about 120 ns, with keyword lookups about 190.
        B, A, C = self.B, self.A, self._reward_vector.shape[0]
        f64, i64 = np.dtype(np.float64), np.dtype(np.int64)
        self._outcome_shapes = (
            ((B, A, N_DECISION_FIELDS), i64),
            ((B, A), f64),
            ((B, A), np.dtype(np.uint64)),
            ((B, C), f64),
            ((B, A, C), f64),
            ((B, S, N_SERVICE_EVENTS), np.dtype(bool)),
            ((B, N_COUNTS), i64),
            ((B, S, N_INCIDENT_FIELDS), i64),
            ((B, S), f64),
            ((B,), f64),
            ((B, A), f64),
            ((B, A, self.obs_dim), np.dtype(np.float32)),
            ((B, 1, self.base_dim), np.dtype(np.float32)),
            ((B, A, self.n_actions), np.dtype(np.int8)),
        )
        for name, shape in zip(RECORD_FIELDS, self._outcome_shapes):
            setattr(self, "_" + name, np.zeros(*shape))
        width = int(self._ip[I_GRAPH_WIDTH])
        self._work_agent_bool = np.zeros((11, A), dtype=bool)
        self._work_agent_int = np.zeros((4, A), dtype=np.int64)
        self._work_prio = np.zeros(A)
        self._work_credit = np.zeros((A, C))
        self._work_service_bool = np.zeros((5, S), dtype=bool)
        self._work_service_int = np.zeros((4, S), dtype=np.int64)  # same_count starts zeroed
        self._work_order = np.zeros(S, dtype=np.int64)
        self._work_graph = np.zeros((S, width))
        self._work_f = np.zeros(S * (1 + width) + 2 * S)
        self._work_slot_flags = np.zeros(4 * self.N, dtype=np.int8)
        self._work_u = np.zeros(max(S, self.alerts.shape[1]))
        # Member a's verbs, repeated for every slot: the mask of a full queue.
        self._verb_pattern = np.tile(self._agent_verbs.astype(np.int8), (1, self.N))
        self._bind_kernel()

    def _bind_kernel(self) -> None:
        """Bind the kernel's parameters and state once: a step passes them on as
        they are. Each field is the sim attribute of the same name, or the one
        `KERNEL_SOURCES` names."""
        self._kernel = _new_kernel_state(
            *[getattr(self, KERNEL_SOURCES.get(name, name)) for name in KERNEL_FIELDS]
        )
        self._reused_records = tuple(getattr(self, "_" + name) for name in RECORD_FIELDS)
        # What a lean or minimal step passes for its records (reused, or the
        # shapes to allocate): None where its level omits one.
        self._partial_reused_records = {
            level: tuple(r if keep else None for r, keep in zip(self._reused_records, keeps))
            for level, keeps in RECORD_KEEPS.items()
        }
        self._partial_shapes = {
            level: tuple(s if keep else None for s, keep in zip(self._outcome_shapes, keeps))
            for level, keeps in RECORD_KEEPS.items()
        }

    # A numba structref cannot be pickled or deep-copied: a copy leaves it out
    # and binds one over its own arrays.
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        del state["_kernel"]
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._bind_kernel()

    def reset(
        self,
        seeds: Sequence[int | None] | None = None,
        env_ids: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        # The common call between episodes, every env to its next episode, in
        # one kernel call: a third of the reference's bookkeeping around it.
        if seeds is None and env_ids is None and _next_episodes(self._kernel):
            self.n_needing_reset = 0
            return
        super().reset(seeds, env_ids)

    def _reset_rows(self, ids: np.ndarray) -> None:
        _reset_many(np.asarray(ids, dtype=np.int64), self._kernel)

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
        held = self._check_active(active)
        if self.n_needing_reset:
            raise RuntimeError(
                f"envs {np.flatnonzero(self.needs_reset).tolist()} need reset() before step()"
            )
        running = self._all_active if held is None else ~held
        level = self._check_records(records)
        self._check_masks(masks)
        return self._run(
            actions, on_illegal, observe, running, held, False, reuse_records, level, masks
        )

    def step_autoreset(
        self,
        actions: np.ndarray,
        on_illegal: str = "raise",
        observe: bool = False,
        *,
        records: str = "full",
        masks: bool = True,
    ) -> tuple[StepOutcome, np.ndarray]:
        self._require_started()
        level = self._check_records(records)
        self._check_masks(masks)
        options = {"level": level, "masks": masks}
        if not self.n_needing_reset:
            out = self._run(actions, on_illegal, observe, self._all_active, None, False, **options)
            return out, self._all_active.copy()
        stepped = ~self.needs_reset
        out = self._run(actions, on_illegal, observe, stepped, self.needs_reset, True, **options)
        return out, stepped

    def _run(
        self,
        actions,
        on_illegal,
        observe,
        running,
        held,
        autoreset: bool,
        reuse: bool = False,
        level: str = "full",
        masks: bool = True,
    ) -> StepOutcome:
        B, A = self.B, self.A
        actions = np.asarray(actions)
        if actions.shape != (B, A):
            raise ValueError(f"actions must have shape {(B, A)}, got {actions.shape}")
        if actions.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
        if on_illegal not in ("raise", "noop"):
            raise ValueError(f"on_illegal must be 'raise' or 'noop', got {on_illegal!r}")
        observe = self._check_observe(observe)
        given = actions
        # A copy: the kernel rewrites masked actions in it, and held envs'
        # actions (ignored, whatever they were, once `_validate` has found them
        # in range) to 0.
        actions = actions.astype(np.int64)
        self._ip[I_ON_ILLEGAL_NOOP] = on_illegal == "noop"
        shapes = self._outcome_shapes
        empty = np.empty
        if observe:
            obs = self._obs_buffer(observe == "team")
            mask_out = empty(*shapes[13]) if masks else self._no_masks
        else:
            obs, mask_out = self._no_obs, self._no_masks
        if level != "full":
            # The records the level omits are None: the kernel's version
            # without them.
            if reuse:
                records = self._partial_reused_records[level]
            else:
                shapes = self._partial_shapes[level]
                records = tuple([None if s is None else empty(*s) for s in shapes])
            done = _step(actions, running, autoreset, self._kernel, *records, obs, mask_out)
        elif reuse:
            # The records stay in the kernel state: no allocations, and a call
            # with six arguments rather than seventeen (about 3 µs at B=1).
            records = self._reused_records
            done = _step_reusing(actions, running, autoreset, self._kernel, obs, mask_out)
        else:
            # The records in StepOutcome's field order (the kernel takes the same).
            records = (
                empty(*shapes[0]),  # decisions
                empty(*shapes[1]),  # true_severity
                empty(*shapes[2]),  # alert_id
                empty(*shapes[3]),  # components
                empty(*shapes[4]),  # agent_components
                empty(*shapes[5]),  # service_events
                empty(*shapes[6]),  # counts
                empty(*shapes[7]),  # incidents
                empty(*shapes[8]),  # incident_severity
                empty(*shapes[9]),  # reward
                empty(*shapes[10]),  # agent_reward
            )
            done = _step(actions, running, autoreset, self._kernel, *records, obs, mask_out)
        if done < 0:
            self._reject(given, -1 - done)
        self.n_needing_reset = done
        # Positional: half the cost of 14 keywords, and a step makes one per call.
        if observe:
            return StepOutcome(actions, *records, obs, mask_out if masks else None)
        return StepOutcome(actions, *records)

    def _reject(self, actions: np.ndarray, code: int) -> None:
        """Raise the reference's error for a rejected action (nothing changed).
        ``actions`` as given, not the int64 copy: a uint64 beyond int64 wraps
        negative in the copy (which is how the kernel catches it), and the
        message names the value the caller passed."""
        B, A = self.B, self.A
        if code >= 2 * B * A:
            raise RuntimeError(f"env {code - 2 * B * A} has ended: reset() it")
        b, a = divmod(code % (B * A), A)
        if code < B * A:
            raise ValueError(
                f"action {int(actions[b, a])} is out of range; allowed 0..{self.n_actions - 1}"
            )
        raise ValueError(
            f"action {int(actions[b, a])} of agent {a} (env {b}) is masked: "
            f"its slot is empty or its role may not use that verb"
        )

    def visible_view(self, b: int = 0):
        n, ids, fields, load, qlen = self.visible_arrays(b)
        return n, ids, fields.tolist(), load, qlen

    def visible_arrays(self, b: int = 0):
        # Into buffers held in the kernel state: a call with two arguments.
        if not 0 <= b < self.B:
            raise IndexError(f"env {b} is out of range for a batch of {self.B}")
        n, load, qlen = _visible(b, self._kernel)
        return n, self._visible_ids[:n].tolist(), self._visible_fields[:n], load, qlen

    def observe(self, team: bool = False) -> np.ndarray:
        obs = self._obs_buffer(team)
        _observe(
            self.t,
            self.alerts,
            self.extent,
            self.inc_bool,
            self.inc_float,
            self.down_until,
            self.failures,
            self._role_features,
            obs,
            self.config.max_steps,
            self.K,
            self.config.failure_threshold,
            self.N,
        )
        return obs

    def _obs_buffer(self, team: bool) -> np.ndarray:
        return np.empty(*self._outcome_shapes[12 if team else 11])
