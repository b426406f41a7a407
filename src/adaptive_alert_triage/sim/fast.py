"""Optional compiled backend: the transition of `engine.AlertSim`, in numba.

Install with ``pip install "adaptive-alert-triage[fast]"``. `FastAlertSim` has
the same state arrays, the same random draws and the same outcome records as
the numpy reference; it only replaces the per-step array code with one compiled
loop per env. The tests check the two backends bit for bit, state and outcome,
over whole episodes of every task. The numpy path stays the reference: change
the model there first, then here.
"""

from __future__ import annotations

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
    N_COUNTS,
    N_DECISION_FIELDS,
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
from .topology import build_layered_dag, draw_topology

try:
    import numba
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without the extra
    numba = None


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
) = range(9)
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
) = range(17)


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
        ],
        dtype=np.int64,
    )
    offsets = np.array([s.start for s in layout.slices.values()], dtype=np.int64)
    return f, i, offsets


if numba is not None:
    _build_layered_dag = njit(cache=True)(build_layered_dag)

    _C1 = np.uint64(0xFF51AFD7ED558CCD)
    _C2 = np.uint64(0xC4CEB9FE1A85EC53)
    _S33 = np.uint64(33)

    @njit(cache=True, inline="always")
    def _mix(counter, key):
        x = np.uint64(counter) ^ key
        x ^= x >> _S33
        x *= _C1
        x ^= x >> _S33
        x *= _C2
        x ^= x >> _S33
        return x

    @njit(cache=True, inline="always")
    def _categorical(u, cdf):
        k = 0
        for j in range(cdf.shape[0]):
            if u >= cdf[j]:
                k += 1
        return k

    @njit(cache=True)
    def _validate(actions, legal, n_actions, noop_masked):
        """-1 if every action may be applied; else b * A + a of the first bad one,
        offset by B * A when it is masked rather than out of range."""
        B, A = actions.shape
        for b in range(B):
            for a in range(A):
                act = actions[b, a]
                if act < 0 or act >= n_actions:
                    return b * A + a
        if noop_masked:
            return -1
        for b in range(B):
            for a in range(A):
                if legal[b, a, actions[b, a]] == 0:
                    return B * A + b * A + a
        return -1

    @njit(cache=True)
    def _arrive(
        b,
        ub,
        zb,
        fp,
        ip,
        off,
        tables,
        cascades,
        parent_group,
        have_parents,
        t,
        service_weight,
        excitation,
        alert_counter,
        incident_counter,
        down_until,
        inc_b,
        inc_i,
        inc_f,
        alerts,
        totals,
        events,
        counts,
        incidents,
        incident_severity,
    ):
        """Start incidents, emit their alerts and the noise, and queue them (env b)."""
        S = service_weight.shape[1]
        Q = alerts.shape[1]
        F = alerts.shape[2]
        M = off[U_NCONF] - off[U_NSEV]
        noise_cdf, root_cdf, casc_cdf, noise_type_cdf, related = (
            tables[0],
            tables[1],
            tables[2],
            tables[3],
            tables[4],
        )
        tb = t[b]
        rate = fp[F_BASE_RATE] + excitation[b]
        n_started = 0
        for s in range(S):
            down = down_until[b, s] > tb
            casc = cascades[s] and not inc_b[b, s, IB_ACTIVE] and not down
            cascades[s] = casc
            x = rate * service_weight[b, s]
            p = x / (1.0 + x)
            root = (
                (not inc_b[b, s, IB_ACTIVE])
                and (not down)
                and (not casc)
                and ub[off[U_ARRIVE] + s] < p
            )
            if not (root or casc):
                continue
            uid = incident_counter[b] + n_started
            n_started += 1
            critical = casc or ub[off[U_CRITICAL] + s] < fp[F_CRITICAL_SHARE]
            su = ub[off[U_SEVERITY] + s]
            if casc:
                sev = CASC_LO + (CASC_HI - CASC_LO) * su
                itype = _categorical(ub[off[U_ITYPE] + s], casc_cdf)
            else:
                if critical:
                    sev = CRIT_LO + (CRIT_HI - CRIT_LO) * su
                else:
                    sev = MINOR_LO + (MINOR_HI - MINOR_LO) * su
                itype = _categorical(ub[off[U_ITYPE] + s], root_cdf)
            span = ip[I_CASC_MAX] - ip[I_CASC_MIN] + 1
            delay = ip[I_CASC_MIN] + min(np.int64(ub[off[U_CASC_DELAY] + s] * span), span - 1)
            inc_b[b, s, IB_ACTIVE] = True
            inc_i[b, s, II_UID] = uid
            inc_i[b, s, II_GROUP] = parent_group[s] if (casc and have_parents) else uid
            inc_i[b, s, II_TYPE] = itype
            inc_b[b, s, IB_CRITICAL] = critical
            inc_b[b, s, IB_CASCADE] = casc
            inc_i[b, s, II_SILENT_UNTIL] = tb + delay if casc else tb
            inc_b[b, s, IB_ALERTED] = False
            inc_i[b, s, II_ESCALATED_UNTIL] = -1
            inc_i[b, s, II_ESCALATOR] = -1
            inc_f[b, s, IF_SEVERITY] = sev
            inc_f[b, s, IF_DAMAGE] = 0.0  # damage
        incident_counter[b] += n_started
        excitation[b] = fp[F_STORM_DECAY] * excitation[b] + fp[F_STORM_JUMP] * n_started
        for s in range(S):
            events[b, s, E_CASCADE] = cascades[s]

        # Survivors first, in order; empty rows are zeroed at the end.
        n_keep = 0
        for q in range(Q):
            if alerts[b, q, AL_ACTIVE] > 0.5:
                if n_keep != q:
                    for f in range(F):
                        alerts[b, n_keep, f] = alerts[b, q, f]
                n_keep += 1
        # Arrivals: emitted real alerts in service order, then noise.
        n_emit = 0
        emit_flags = np.zeros(S, dtype=np.bool_)
        for s in range(S):
            awake = inc_b[b, s, IB_ACTIVE] and inc_i[b, s, II_SILENT_UNTIL] <= tb
            first = awake and not inc_b[b, s, IB_ALERTED]
            if awake and (first or ub[off[U_EMIT] + s] < fp[F_EMIT]):
                emit_flags[s] = True
                inc_b[b, s, IB_ALERTED] = True
                n_emit += 1
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
        for j in range(M):
            if ub[off[U_NCOUNT]] >= noise_cdf[j]:
                n_noise += 1
        if ip[I_ENSURE] and M > 0 and n_keep + n_emit + n_noise == 0:
            n_noise = 1
        n_new = n_emit + n_noise
        row = n_keep
        k = 0
        dropped = 0
        dropped_real = 0
        for s in range(S):
            if not emit_flags[s]:
                continue
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
            if ub[off[U_ATYPE] + s] < fp[F_PRIMARY]:
                alerts[b, row, AL_TYPE] = itype
            else:
                alerts[b, row, AL_TYPE] = related[itype]
            alerts[b, row, AL_TRUE_SEV] = sev
            alerts[b, row, AL_VIS_SEV] = min(max(sev + fp[F_SEV_NOISE] * zb[s], 0.0), 1.0)
            alerts[b, row, AL_CONF] = (
                REAL_CONF_LO + (REAL_CONF_HI - REAL_CONF_LO) * ub[off[U_CONF] + s]
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
            alerts[b, row, AL_SERVICE] = min(np.int64(ub[off[U_NSERVICE] + j] * S), S - 1)
            alerts[b, row, AL_INCIDENT] = -1.0
            alerts[b, row, AL_TYPE] = _categorical(ub[off[U_NTYPE] + j], noise_type_cdf)
            alerts[b, row, AL_TRUE_SEV] = 0.0
            alerts[b, row, AL_VIS_SEV] = (
                NOISE_SEV_LO + (NOISE_SEV_HI - NOISE_SEV_LO) * ub[off[U_NSEV] + j]
            )
            alerts[b, row, AL_CONF] = (
                NOISE_CONF_LO + (NOISE_CONF_HI - NOISE_CONF_LO) * ub[off[U_NCONF] + j]
            )
            alerts[b, row, AL_BIRTH] = tb
            alerts[b, row, AL_GROUP] = -1.0
            alerts[b, row, AL_NOISE] = 1.0
            row += 1
            k += 1
        for q in range(row, Q):
            for f in range(F):
                alerts[b, q, f] = 0.0
        alert_counter[b] += n_new
        totals[b, 0] += n_new
        totals[b, 1] += n_noise
        counts[b, N_NEW_ALERTS] = n_new
        counts[b, N_NEW_NOISE] = n_noise
        counts[b, N_DROPPED] = dropped
        counts[b, N_DROPPED_REAL] = dropped_real

    @njit(cache=True)
    def _step(
        actions,
        running,
        ubuf,
        zbuf,
        draw_pos,
        fp,
        ip,
        off,
        tables,
        agent_verbs,
        reward_vector,
        survive,
        t,
        adj,
        service_weight,
        id_key,
        excitation,
        failures,
        alert_counter,
        incident_counter,
        down_until,
        inc_b,
        inc_i,
        inc_f,
        alerts,
        totals,
        legal,
        terminated_out,
        truncated_out,
        needs_reset,
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
        role_features,
        obs_out,
        mask_out,
    ):
        n_done = 0
        """One step of every env. Returns the number of envs that ended, or
        -1 - code when an action is rejected (before anything changes)."""
        B, A = actions.shape
        S = service_weight.shape[1]
        N = (legal.shape[2] - 1) // 4
        C = reward_vector.shape[0]
        K = ip[I_K]
        noop_masked = ip[I_ON_ILLEGAL_NOOP] == 1
        dec = np.zeros(A, dtype=np.bool_)
        slot = np.zeros(A, dtype=np.int64)
        verb = np.zeros(A, dtype=np.int64)
        rank = np.zeros(A, dtype=np.int64)
        conflict = np.zeros(A, dtype=np.bool_)
        claim = np.zeros(A, dtype=np.bool_)
        granted_claim = np.zeros(A, dtype=np.bool_)
        granted = np.zeros(A, dtype=np.bool_)
        noise = np.zeros(A, dtype=np.bool_)
        svc = np.zeros(A, dtype=np.int64)
        live = np.zeros(A, dtype=np.bool_)
        real_claim = np.zeros(A, dtype=np.bool_)
        resolves = np.zeros(A, dtype=np.bool_)
        escalates = np.zeros(A, dtype=np.bool_)
        handled_now = np.zeros(S, dtype=np.bool_)
        resolved_now = np.zeros(S, dtype=np.bool_)
        closed = np.zeros(S, dtype=np.bool_)
        cascades = np.zeros(S, dtype=np.bool_)
        parent_group = np.full(S, -1, dtype=np.int64)
        credit = np.zeros((A, C))
        bad = _validate(actions, legal, legal.shape[2], noop_masked)
        if bad >= 0:
            return -1 - bad
        for b in range(B):
            if running[b] and (draw_pos[b] < 0 or draw_pos[b] >= ubuf.shape[1]):
                return -1 - 2 * B * A - b  # no random block left: the env was not reset
        for b in range(B):
            if not running[b]:
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
                actions[b, :] = 0
                if obs_out.shape[0] == B:
                    _observe_env(
                        b,
                        t,
                        alerts,
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
                    )
                    mask_out[b] = legal[b]
                if needs_reset[b]:
                    n_done += 1
                continue
            tb = t[b]
            ub = ubuf[b, draw_pos[b]]
            zb = zbuf[b, draw_pos[b]]
            draw_pos[b] += 1
            for a in range(A):
                act = actions[b, a]
                masked = legal[b, a, act] == 0
                if masked and noop_masked:
                    act = 0
                    actions[b, a] = 0
                dec[a] = act > 0
                slot[a] = (act - 1) // N_VERBS if act > 0 else 0
                verb[a] = (act - 1) % N_VERBS if act > 0 else -1
                decisions[b, a, D_STATUS] = STATUS_MASKED if masked else 0
            order = np.argsort(ub[off[U_PRIORITY] : off[U_PRIORITY] + A])
            for i in range(A):
                rank[order[i]] = i
            for a in range(A):
                c_ = False
                if dec[a]:
                    for c in range(A):
                        if dec[c] and slot[c] == slot[a] and rank[c] < rank[a]:
                            c_ = True
                conflict[a] = c_
                claim[a] = dec[a] and not c_ and (verb[a] == INVESTIGATE or verb[a] == ESCALATE)
            for a in range(A):
                above = 0
                for c in range(A):
                    if claim[c] and rank[c] < rank[a]:
                        above += 1
                granted_claim[a] = claim[a] and above < K
                granted[a] = dec[a] and not conflict[a] and not (claim[a] and not granted_claim[a])
            for a in range(A):
                q = slot[a]
                noise[a] = alerts[b, q, AL_NOISE] > 0.5
                s = np.int64(alerts[b, q, AL_SERVICE])
                svc[a] = s
                live[a] = (
                    inc_b[b, s, IB_ACTIVE]
                    and inc_i[b, s, II_UID] == np.int64(alerts[b, q, AL_INCIDENT])
                    and not noise[a]
                )
                real_claim[a] = granted_claim[a] and live[a]
            for s in range(S):
                handled_now[s] = False
                resolved_now[s] = False
            for a in range(A):
                takes = real_claim[a]
                if takes:
                    for c in range(A):
                        if real_claim[c] and svc[c] == svc[a] and rank[c] < rank[a]:
                            takes = False
                pending = live[a] and inc_i[b, svc[a], II_ESCALATED_UNTIL] >= 0
                resolves[a] = takes and verb[a] == INVESTIGATE
                escalates[a] = takes and verb[a] == ESCALATE and not pending
                if resolves[a] or escalates[a]:
                    handled_now[svc[a]] = True
            credit[:, :] = 0.0
            for a in range(A):
                q = slot[a]
                s = svc[a]
                critical = live[a] and inc_b[b, s, IB_CRITICAL] == 1
                cascade = live[a] and inc_b[b, s, IB_CASCADE] == 1
                pending = live[a] and inc_i[b, s, II_ESCALATED_UNTIL] >= 0
                handled = (handled_now[s] or pending) and live[a]
                ignores = granted[a] and verb[a] == IGNORE
                wasted = granted_claim[a] and noise[a]
                redundant = (
                    granted_claim[a] and not noise[a] and not resolves[a] and not escalates[a]
                )
                ign_noise = ignores and noise[a]
                ign_handled = ignores and not noise[a] and (handled or not live[a])
                ign_critical = ignores and critical and not ign_handled
                ign_minor = ignores and not noise[a] and not ign_handled and not critical
                out = 0
                if resolves[a]:
                    out = OUT_RESOLVED_CRITICAL if critical else OUT_RESOLVED_MINOR
                elif escalates[a]:
                    out = OUT_ESCALATED
                elif wasted:
                    out = OUT_WASTED
                elif redundant:
                    out = OUT_REDUNDANT
                elif ign_noise:
                    out = OUT_NOISE_IGNORED
                elif ign_critical:
                    out = OUT_CRITICAL_IGNORED
                elif ign_minor:
                    out = OUT_MINOR_IGNORED
                elif ign_handled:
                    out = OUT_ALREADY_HANDLED
                elif granted[a] and verb[a] == DELAY:
                    out = OUT_DELAYED
                if granted[a]:
                    decisions[b, a, D_STATUS] = STATUS_GRANTED
                elif claim[a]:
                    decisions[b, a, D_STATUS] = STATUS_DENIED_BUDGET
                elif conflict[a]:
                    decisions[b, a, D_STATUS] = STATUS_DENIED_CONFLICT
                decisions[b, a, D_OUTCOME] = out
                decisions[b, a, D_VERB] = verb[a]
                decisions[b, a, D_SLOT] = slot[a] if dec[a] else -1
                credit[a, C_CRITICAL] = 1.0 if (resolves[a] and critical) else 0.0
                credit[a, C_CASCADE] = 1.0 if (resolves[a] and cascade) else 0.0
                credit[a, C_FP_IGNORED] = 1.0 if ign_noise else 0.0
                credit[a, C_UNNECESSARY] = 1.0 if (wasted or redundant) else 0.0
                credit[a, C_MISSED] = 1.0 if ign_critical else 0.0
                present = dec[a] and alerts[b, q, AL_ACTIVE] > 0.5
                if present:
                    alert_ids[b, a] = _mix(np.int64(alerts[b, q, AL_COUNTER]), id_key[b])
                    truth[b, a] = alerts[b, q, AL_TRUE_SEV]
                    decisions[b, a, D_SERVICE] = s
                    decisions[b, a, D_TYPE] = np.int64(alerts[b, q, AL_TYPE])
                else:
                    alert_ids[b, a] = np.uint64(0)
                    truth[b, a] = 0.0
                    decisions[b, a, D_SERVICE] = -1
                    decisions[b, a, D_TYPE] = -1
                if present and not noise[a]:
                    decisions[b, a, D_INCIDENT] = np.int64(alerts[b, q, AL_INCIDENT])
                    decisions[b, a, D_GROUP] = np.int64(alerts[b, q, AL_GROUP])
                else:
                    decisions[b, a, D_INCIDENT] = -1
                    decisions[b, a, D_GROUP] = -1
                decisions[b, a, D_NOISE] = 1 if (noise[a] and present) else 0
            # Apply: close decided alerts, resolve and escalate incidents.
            for a in range(A):
                if granted[a] and verb[a] != DELAY:
                    alerts[b, slot[a], AL_ACTIVE] = 0.0
                if resolves[a]:
                    resolved_now[svc[a]] = True
                if escalates[a]:
                    inc_i[b, svc[a], II_ESCALATED_UNTIL] = tb + ip[I_ESC_DELAY]
                    inc_i[b, svc[a], II_ESCALATOR] = a
            # Specialists, damage, self-resolution, failures.
            n_failed = 0
            for s in range(S):
                active0 = inc_b[b, s, IB_ACTIVE] == 1
                esc = inc_i[b, s, II_ESCALATED_UNTIL]
                due = active0 and esc >= 0 and esc <= tb and not resolved_now[s]
                events[b, s, E_ESCALATION_RESOLVED] = due
                if due:
                    who = inc_i[b, s, II_ESCALATOR]
                    credit[who, C_CRITICAL] += 1.0 if inc_b[b, s, IB_CRITICAL] == 1 else 0.0
                    credit[who, C_CASCADE] += 1.0 if inc_b[b, s, IB_CASCADE] == 1 else 0.0
                active = active0 and not resolved_now[s] and not due
                crit = inc_b[b, s, IB_CRITICAL] == 1
                if active:
                    factor = 1.0 if crit else fp[F_MINOR_FACTOR]
                    inc_f[b, s, IF_DAMAGE] += fp[F_DAMAGE] * inc_f[b, s, IF_SEVERITY] * factor
                self_res = (
                    active and not crit and esc < 0 and ub[off[U_SELF] + s] < fp[F_MINOR_RESOLVE]
                )
                failed = active and not self_res and inc_f[b, s, IF_DAMAGE] >= 1.0
                events[b, s, E_SELF_RESOLVED] = self_res
                events[b, s, E_FAILED] = failed
                closed[s] = resolved_now[s] or due or self_res or failed
                events[b, s, E_RESOLVED] = resolved_now[s]
                incidents[b, s, I_CLOSED] = inc_i[b, s, II_UID] if closed[s] else -1
                if closed[s]:
                    inc_b[b, s, IB_ACTIVE] = False
                    inc_i[b, s, II_ESCALATED_UNTIL] = -1
                    inc_i[b, s, II_ESCALATOR] = -1
                if failed:
                    n_failed += 1
                    down_until[b, s] = tb + 1 + ip[I_RECOVERY]
            Q = alerts.shape[1]
            for q in range(Q):
                if alerts[b, q, AL_NOISE] < 0.5 and closed[np.int64(alerts[b, q, AL_SERVICE])]:
                    alerts[b, q, AL_ACTIVE] = 0.0
            failures[b] += n_failed
            for s in range(S):
                cascades[s] = False
                parent_group[s] = -1
            if n_failed > 0:
                for v in range(S):
                    parents = 0
                    for w in range(S):
                        if events[b, w, E_FAILED] and adj[b, w, v]:
                            parents += 1
                            parent_group[v] = max(parent_group[v], inc_i[b, w, II_GROUP])
                    if fp[F_CASCADE] > 0 and parents > 0:
                        cascades[v] = ub[off[U_CASCADE] + v] < 1.0 - survive[parents]
            cleared = 0
            for q in range(Q):
                if (
                    alerts[b, q, AL_NOISE] > 0.5
                    and alerts[b, q, AL_ACTIVE] > 0.5
                    and ub[off[U_NCLEAR] + q] < fp[F_NOISE_CLEAR]
                ):
                    alerts[b, q, AL_ACTIVE] = 0.0
                    cleared += 1
            counts[b, N_NOISE_CLEARED] = cleared
            t[b] = tb + 1
            _arrive(
                b,
                ub,
                zb,
                fp,
                ip,
                off,
                tables,
                cascades,
                parent_group,
                True,
                t,
                service_weight,
                excitation,
                alert_counter,
                incident_counter,
                down_until,
                inc_b,
                inc_i,
                inc_f,
                alerts,
                totals,
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
                for a in range(A):
                    agent_components[b, a, c] = (credit[a, c] + unattributed / A) * reward_vector[c]
            team = 0.0
            for c in range(C):
                team += components[b, c]
            team_reward[b] = team
            for a in range(A):
                mine = 0.0
                for c in range(C):
                    mine += agent_components[b, a, c]
                agent_reward[b, a] = mine
            counts[b, N_FAILED] = n_failed
            terminated = failures[b] > ip[I_THRESHOLD]
            truncated = (t[b] >= ip[I_MAX_STEPS]) and not terminated
            counts[b, N_TERMINATED] = terminated
            counts[b, N_TRUNCATED] = truncated
            terminated_out[b] = terminated
            truncated_out[b] = truncated
            needs_reset[b] = terminated or truncated
            if terminated or truncated:
                n_done += 1
            _legal(b, alerts, agent_verbs, legal, N)
            if obs_out.shape[0] == B:
                _observe_env(
                    b,
                    t,
                    alerts,
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
                )
                mask_out[b] = legal[b]
        return n_done

    @njit(cache=True)
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
        decisions[b] = -1
        decisions[b, :, D_STATUS] = 0
        decisions[b, :, D_OUTCOME] = 0
        decisions[b, :, D_NOISE] = 0
        truth[b] = 0.0
        alert_ids[b] = 0
        components[b] = 0.0
        agent_components[b] = 0.0
        events[b] = False
        counts[b] = 0
        incidents[b] = -1
        incident_severity[b] = 0.0
        team_reward[b] = 0.0
        agent_reward[b] = 0.0

    @njit(cache=True)
    def _visible(b, alerts, id_key, t, n_slots, ids_out, fields_out, inc_b, inc_f, down_until):
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
        Q = alerts.shape[1]
        S = down_until.shape[1]
        qlen = 0
        for q in range(Q):
            if alerts[b, q, AL_ACTIVE] > 0.5:
                qlen += 1
        impaired = 0.0
        for s in range(S):
            down = 1.0 if down_until[b, s] > t[b] else 0.0
            damage = inc_f[b, s, IF_DAMAGE] * (1.0 if inc_b[b, s, IB_ACTIVE] else 0.0)
            impaired += min(damage + down, 1.0)
        impaired = impaired / S
        load = min(max(0.2 + 0.6 * impaired + 0.2 * qlen / Q, 0.0), 1.0)
        return n, load, qlen

    @njit(cache=True, inline="always")
    def _legal(b, alerts, agent_verbs, legal, N):
        A = legal.shape[1]
        for a in range(A):
            legal[b, a, 0] = 1
            for n in range(N):
                present = alerts[b, n, AL_ACTIVE] > 0.5
                for v in range(4):
                    legal[b, a, 1 + n * 4 + v] = 1 if (present and agent_verbs[a, v]) else 0

    @njit(cache=True)
    def _observe(
        t,
        alerts,
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
        for b in range(obs.shape[0]):
            _observe_env(
                b,
                t,
                alerts,
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
            )

    @njit(cache=True)
    def _observe_env(
        b,
        t,
        alerts,
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
        rows_out = obs.shape[1]  # every agent, or 1 for the team's shared view
        team = role_features.shape[0]
        Q = alerts.shape[1]
        S = down_until.shape[1]
        N = n_slots
        base = np.zeros(N * SLOT_FEATURES + GLOBAL_FEATURES + S)
        tb = t[b]
        for n in range(N):
            p = alerts[b, n, AL_ACTIVE]
            o = n * SLOT_FEATURES
            base[o] = p
            base[o + 1] = alerts[b, n, AL_VIS_SEV]
            base[o + 2] = alerts[b, n, AL_CONF]
            ty = np.int64(alerts[b, n, AL_TYPE])
            for k in range(N_TYPES):
                base[o + 3 + k] = (1.0 if ty == k else 0.0) * p
            age = (tb - alerts[b, n, AL_BIRTH]) / max_steps
            base[o + 3 + N_TYPES] = min(age, 1.0) * p
            service = alerts[b, n, AL_SERVICE]
            base[o + 4 + N_TYPES] = service / max(S - 1, 1) * p
            same = 0
            for m in range(N):
                if alerts[b, m, AL_SERVICE] == service and alerts[b, m, AL_ACTIVE] > 0.5:
                    same += 1
            base[o + 5 + N_TYPES] = max(same - 1, 0) / max(N - 1, 1) * p
        qlen = 0
        for q in range(Q):
            if alerts[b, q, AL_ACTIVE] > 0.5:
                qlen += 1
        impaired = 0.0
        for s in range(S):
            down = 1.0 if down_until[b, s] > tb else 0.0
            damage = inc_f[b, s, IF_DAMAGE] * (1.0 if inc_b[b, s, IB_ACTIVE] else 0.0)
            impaired += min(damage + down, 1.0)
            base[N * SLOT_FEATURES + GLOBAL_FEATURES + s] = down
        impaired = impaired / S
        g = N * SLOT_FEATURES
        base[g] = min(max(0.2 + 0.6 * impaired + 0.2 * qlen / Q, 0.0), 1.0)
        base[g + 1] = qlen / Q
        base[g + 2] = max(qlen - N, 0) / Q
        base[g + 3] = max(max_steps - tb, 0) / max_steps
        base[g + 4] = 1.0 if K > 0 else 0.0
        base[g + 5] = min(K / team, 1.0)
        base[g + 6] = min(failures[b] / (threshold + 1), 1.0)
        nb = base.shape[0]
        with_roles = obs.shape[2] > nb
        for a in range(rows_out):
            for d in range(nb):
                obs[b, a, d] = base[d]
            if with_roles:
                for r in range(role_features.shape[1]):
                    obs[b, a, nb + r] = role_features[a, r]


CASC_LO, CASC_HI = CASCADE_SEVERITY
CRIT_LO, CRIT_HI = CRITICAL_SEVERITY
MINOR_LO, MINOR_HI = MINOR_SEVERITY
REAL_CONF_LO, REAL_CONF_HI = REAL_CONFIDENCE
NOISE_SEV_LO, NOISE_SEV_HI = NOISE_SEVERITY
NOISE_CONF_LO, NOISE_CONF_HI = NOISE_CONFIDENCE


class FastAlertSim(AlertSim):
    """`AlertSim` with the step and the observation compiled by numba.

    Same constructor, same state, same draws, same outcome records: a drop-in
    replacement that the tests hold to the numpy reference bit for bit.
    """

    def __init__(self, config: TaskConfig, batch_size: int = 1) -> None:
        if numba is None:
            raise ImportError(
                "the numba backend needs numba: pip install 'adaptive-alert-triage[fast]'"
            )
        super().__init__(config, batch_size)
        self._fp, self._ip, self._off = _params(config, self.layout)
        self._tables = (
            self._noise_cdf,
            ROOT_TYPE_CDF,
            CASCADE_TYPE_CDF,
            NOISE_TYPE_CDF,
            RELATED_TYPE.astype(np.int64),
        )
        self._all_active = np.ones(self.B, dtype=bool)
        self._no_obs = np.empty((0, self.A, self.obs_dim), dtype=np.float32)
        self._no_masks = np.empty((0, self.A, self.n_actions), dtype=np.int8)
        self._scratch_events = np.zeros((self.B, self.S, N_SERVICE_EVENTS), dtype=bool)
        self._scratch_counts = np.zeros((self.B, N_COUNTS), dtype=np.int64)

    def _draw_topology(self, rng, cfg):
        return draw_topology(rng, cfg, build=_build_layered_dag)

    def _arrivals(self, envs, u, z, cascades, failed, parent_group=None):
        # Used by reset(): the same arrivals, compiled. Only reset calls this
        # override (step() runs its own kernel); the first-alert records go
        # straight into reset_incidents / reset_incident_severity.
        for r, b in enumerate(np.asarray(envs).tolist()):
            casc = np.array(cascades[r], dtype=bool)
            groups = (
                np.full(self.S, -1, dtype=np.int64)
                if parent_group is None
                else np.asarray(parent_group[r], dtype=np.int64)
            )
            _arrive(
                b,
                u[r],
                z[r],
                self._fp,
                self._ip,
                self._off,
                self._tables,
                casc,
                groups,
                parent_group is not None,
                self.t,
                self.service_weight,
                self.excitation,
                self.alert_counter,
                self.incident_counter,
                self.down_until,
                self.inc_bool,
                self.inc_int,
                self.inc_float,
                self.alerts,
                self.totals,
                self._scratch_events,
                self._scratch_counts,
                self.reset_incidents,
                self.reset_incident_severity,
            )
            self.reset_incidents[b, :, I_CLOSED] = -1
        return None

    def step(
        self,
        actions: np.ndarray,
        on_illegal: str = "raise",
        observe: bool = False,
        active: np.ndarray | None = None,
    ) -> StepOutcome:
        B, A, S = self.B, self.A, self.S
        held = self._check_active(active)
        running = self._all_active if held is None else ~held
        if self.n_needing_reset:
            raise RuntimeError(
                f"envs {np.flatnonzero(self.needs_reset).tolist()} need reset() before step()"
            )
        actions = np.asarray(actions)
        if actions.shape != (B, A):
            raise ValueError(f"actions must have shape {(B, A)}, got {actions.shape}")
        if actions.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
        if on_illegal not in ("raise", "noop"):
            raise ValueError(f"on_illegal must be 'raise' or 'noop', got {on_illegal!r}")
        actions = actions.astype(np.int64)  # a copy: masked actions are rewritten in it
        if held is not None:
            actions[held] = 0  # held envs' actions are ignored, whatever they were
        self._ip[I_ON_ILLEGAL_NOOP] = on_illegal == "noop"
        C = self._reward_vector.shape[0]
        decisions = np.empty((B, A, N_DECISION_FIELDS), dtype=np.int64)
        truth = np.empty((B, A))
        ids = np.empty((B, A), dtype=np.uint64)
        components = np.empty((B, C))
        agent_components = np.empty((B, A, C))
        events = np.zeros((B, S, N_SERVICE_EVENTS), dtype=bool)
        counts = np.zeros((B, N_COUNTS), dtype=np.int64)
        incidents = np.empty((B, S, N_INCIDENT_FIELDS), dtype=np.int64)
        incident_severity = np.empty((B, S))
        reward = np.empty(B)
        agent_reward = np.empty((B, A))
        observe = self._check_observe(observe)
        if observe:
            obs = self._obs_buffer(observe == "team")
            masks = np.empty((B, A, self.n_actions), dtype=np.int8)
        else:
            obs, masks = self._no_obs, self._no_masks
        done = _step(
            actions,
            running,
            self._ubuf,
            self._zbuf,
            self.draw_pos,
            self._fp,
            self._ip,
            self._off,
            self._tables,
            self._agent_verbs,
            self._reward_vector,
            self._survive,
            self.t,
            self.adj,
            self.service_weight,
            self.id_key,
            self.excitation,
            self.failures,
            self.alert_counter,
            self.incident_counter,
            self.down_until,
            self.inc_bool,
            self.inc_int,
            self.inc_float,
            self.alerts,
            self.totals,
            self.legal,
            self.terminated,
            self.truncated,
            self.needs_reset,
            decisions,
            truth,
            ids,
            components,
            agent_components,
            events,
            counts,
            incidents,
            incident_severity,
            reward,
            agent_reward,
            self._role_features,
            obs,
            masks,
        )
        if done < 0:
            self._reject(actions, -1 - done)
        self.n_needing_reset = done
        self._refill_spent(held)
        return StepOutcome(
            actions=actions,
            decisions=decisions,
            true_severity=truth,
            alert_id=ids,
            components=components,
            agent_components=agent_components,
            service_events=events,
            counts=counts,
            incidents=incidents,
            incident_severity=incident_severity,
            reward=reward,
            agent_reward=agent_reward,
            observations=obs if observe else None,
            action_masks=masks if observe else None,
        )

    def _reject(self, actions: np.ndarray, code: int) -> None:
        """Raise the reference's error for a rejected action (nothing changed)."""
        B, A = self.B, self.A
        if code >= 2 * B * A:
            raise RuntimeError(
                f"env {code - 2 * B * A} has no random block left: it ended, reset() it"
            )
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
        ids = np.empty(self.N, dtype=np.uint64)
        fields = np.empty((self.N, 5))
        n, load, qlen = _visible(
            b,
            self.alerts,
            self.id_key,
            self.t,
            self.N,
            ids,
            fields,
            self.inc_bool,
            self.inc_float,
            self.down_until,
        )
        return n, ids[:n].tolist(), fields[:n].tolist(), load, qlen

    def observe(self, team: bool = False) -> np.ndarray:
        obs = self._obs_buffer(team)
        _observe(
            self.t,
            self.alerts,
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
        if team:
            return np.empty((self.B, 1, self.base_dim), dtype=np.float32)
        return np.empty((self.B, self.A, self.obs_dim), dtype=np.float32)
