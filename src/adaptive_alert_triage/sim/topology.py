"""The hidden service dependency graph.

An edge ``u -> v`` means service ``v`` depends on ``u``: when ``u`` fails, the
failure may propagate to ``v``. The graph is a layered DAG drawn per episode
from the env's random stream over a random permutation of the services, so a
service's index says nothing about where it sits in the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_NAMES = (
    "api-gateway",
    "auth",
    "payments",
    "orders",
    "inventory",
    "search",
    "catalog",
    "cart",
    "db-primary",
    "cache",
    "message-queue",
    "object-store",
    "notifications",
    "billing",
    "users",
    "recommendations",
    "shipping",
    "analytics",
    "logging",
    "cdn",
    "dns",
    "load-balancer",
    "frontend",
    "mobile-bff",
)


def service_names(n_services: int) -> tuple[str, ...]:
    """Visible service names. Fixed per index; the graph behind them is hidden."""
    if n_services <= len(_NAMES):
        return _NAMES[:n_services]
    return _NAMES + tuple(f"svc-{i:03d}" for i in range(len(_NAMES), n_services))


def _edges_of(topology: Mapping[str, Any]) -> list[tuple[int, int]]:
    if not isinstance(topology, Mapping) or "edges" not in topology:
        raise ValueError('topology must be a mapping with an "edges" list of [upstream, dependent]')
    edges = topology["edges"]
    if not isinstance(edges, (list, tuple)):
        raise TypeError(f"topology edges must be a list, got {type(edges).__name__}")
    out = []
    for i, edge in enumerate(edges):
        if (
            not isinstance(edge, (list, tuple))
            or len(edge) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in edge)
        ):
            raise ValueError(f"topology edge {i} must be a pair of service indices, got {edge!r}")
        out.append((edge[0], edge[1]))
    return out


def validate_topology(topology: Mapping[str, Any], n_services: int) -> None:
    """Raise ValueError unless the edges form a DAG over ``n_services`` services."""
    edges = _edges_of(topology)
    for u, v in edges:
        for x in (u, v):
            if not 0 <= x < n_services:
                raise ValueError(
                    f"topology edge ({u}, {v}) names service {x}; allowed 0..{n_services - 1}"
                )
        if u == v:
            raise ValueError(f"topology edge ({u}, {v}) is a self-loop")
    _layers_from_edges(edges, n_services)  # raises on a cycle


def _layers_from_edges(edges: list[tuple[int, int]], n_services: int) -> np.ndarray:
    """Longest-path depth of each service (Kahn's algorithm); raises on a cycle."""
    indegree = np.zeros(n_services, dtype=np.int64)
    children: list[list[int]] = [[] for _ in range(n_services)]
    for u, v in edges:
        children[u].append(v)
        indegree[v] += 1
    layer = np.zeros(n_services, dtype=np.int64)
    ready = [s for s in range(n_services) if indegree[s] == 0]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for v in children[u]:
            layer[v] = max(layer[v], layer[u] + 1)
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    if seen != n_services:
        raise ValueError("topology edges contain a cycle; the dependency graph must be a DAG")
    return layer


def build_layered_dag(
    order: np.ndarray,
    u: np.ndarray,
    depth: int,
    max_dependencies: int,
    adj: np.ndarray,
    layer: np.ndarray,
) -> None:
    """Fill ``adj`` with a layered DAG and ``layer`` with each service's layer.

    ``order`` (a permutation of the services) is cut into ``depth`` layers as
    evenly as possible. Each service below the first layer depends on one
    service of the layer just above (so the depth is real) and on up to
    ``max_dependencies - 1`` more anywhere upstream, picked by its row of
    uniforms ``u``: [parent, how many extras, extra picks...]. Plain loops, so
    the fast backend can run this very function compiled; it writes into the
    arrays it is given and allocates none, so a reset there costs no memory
    allocation or reference counting.
    """
    n = order.shape[0]
    base, extra_big = n // depth, n % depth
    # One pass over the layers, in order: layer d is order[lo:hi], the first
    # ``extra_big`` layers one service larger, and the layer above it starts
    # at ``above_lo``; everything before ``lo`` is upstream.
    above_lo = lo = 0
    for d in range(depth):
        hi = lo + base + (1 if d < extra_big else 0)
        for i in range(lo, hi):
            v = order[i]
            layer[v] = d
            if d == 0:
                continue
            adj[order[above_lo + int(u[v, 0] * (lo - above_lo))], v] = True
            n_extra = int(u[v, 1] * max_dependencies)
            for j in range(min(n_extra, max_dependencies - 1)):
                adj[order[int(u[v, 2 + j] * lo)], v] = True
        above_lo, lo = lo, hi


def fixed_topology(topology: Mapping[str, Any], n_services: int) -> tuple[np.ndarray, np.ndarray]:
    """A scenario's own graph: adjacency ``adj[u, v]`` (v depends on u) and layers."""
    adj = np.zeros((n_services, n_services), dtype=bool)
    edges = _edges_of(topology)
    for u, v in edges:
        adj[u, v] = True
    return adj, _layers_from_edges(edges, n_services)
