"""Each env's random stream: counter-based, so any draw can be made on its own.

An env holds a 64-bit *stream key*, drawn once from a ``numpy.random.Generator``
(PCG64) seeded with the env's seed. Episode ``e`` of the env has the key
``episode_key(stream_key, e)``; a ``reset()`` without a seed moves to the next
episode. Within an episode, the uniform number at ``(block, index)`` is a fixed
function of the key: SplitMix64's output mixer applied to ``key + counter *
golden``, with ``counter = block * 2**32 + index``. Block 0 is the arrivals that
open an episode, block ``t + 1`` the step taken at time ``t``, and blocks from
``RESET_BLOCK`` on the per-episode draws (dependency graph, service weights,
alert-id key); within a block `DrawLayout` names the indices.

Why counter-based: a step may skip draws it does not need, and a compiled
kernel may draw inside its loop, while every other draw of the stream keeps its
value. Nothing an agent, a renderer or another env does can shift an env's
stream. Only integer operations and one exact conversion to float are involved,
so the numpy reference and the numba backend agree bit for bit; the functions
here are plain Python over numpy integers, so the numba backend compiles these
very functions.
"""

from __future__ import annotations

import math

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S11, _S32 = np.uint64(11), np.uint64(32)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

#: First block of the per-episode draws (far above any step's block).
RESET_BLOCK = 1 << 30
TOPOLOGY_BLOCK = RESET_BLOCK
WEIGHT_BLOCK = RESET_BLOCK + 1
ID_KEY_BLOCK = RESET_BLOCK + 2
EPISODE_SALT = np.uint64(0xD1B54A32D192ED03)


def mix64(z):
    """SplitMix64's output mixer: a bijection of 64-bit integers."""
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


def episode_key(stream_key, episode):
    """The key of episode ``episode`` of the env whose stream key is ``stream_key``."""
    return mix64(stream_key ^ mix64(np.uint64(episode) * GOLDEN + EPISODE_SALT))


def block_uniforms(keys: np.ndarray, block: np.ndarray | int, n: int) -> np.ndarray:
    """(len(keys), n) uniforms: indices ``0..n-1`` of ``block`` of each key
    (``block`` may be one per key). The numpy reference's vectorised draw."""
    keys = np.asarray(keys, dtype=np.uint64)[:, None]
    block = np.asarray(block, dtype=np.uint64).reshape(-1, 1)
    index = np.arange(n, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        x = mix64(keys + ((block << _S32) + index) * GOLDEN)
    return (x >> _S11).astype(np.float64) * _TO_UNIT


def stream_key_from_seed(seed: int | None) -> np.uint64:
    """An env's stream key: from PCG64 seeded with ``seed`` (OS entropy if None)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


#: Normals are made from four uniforms: ((u0 + u1) + (u2 + u3) - 2) * sqrt(3)
#: (Irwin-Hall: zero mean, unit variance, bounded at +-3.46). Exact arithmetic
#: only, so every backend gets the same bits.
SQRT3 = 1.7320508075688772


def reset_uniforms(keys: np.ndarray, n_services: int, width: int) -> tuple[np.ndarray, ...]:
    """The per-episode uniforms of each key, for `episode_draws`: the graph's
    (``n_services * (1 + width)``) and the weights' (``2 * n_services``), and the
    alert-id keys (63 bits)."""
    keys = np.asarray(keys, dtype=np.uint64)
    u_graph = block_uniforms(keys, TOPOLOGY_BLOCK, n_services * (1 + width))
    u_weight = block_uniforms(keys, WEIGHT_BLOCK, 2 * n_services)
    with np.errstate(over="ignore"):
        id_keys = mix64(keys + (np.uint64(ID_KEY_BLOCK) << _S32) * GOLDEN) >> np.uint64(1)
    return u_graph, u_weight, id_keys


def episode_draws(u_graph_flat, u_weight, width: int, order, u_graph, weights) -> None:
    """Turn an episode's uniforms into its draws: a random ``order`` of the
    services (Fisher-Yates), the graph's uniforms ``u_graph`` (n_services,
    width), and Dirichlet(2, ..., 2) service ``weights`` (each a Gamma(2): the
    sum of two exponentials; normalised). Plain loops, so the fast backend
    compiles this very function; ``math.log`` is the C library's in both."""
    n = order.shape[0]
    for i in range(n):
        order[i] = i
    for i in range(n - 1, 0, -1):
        j = min(int(u_graph_flat[i] * (i + 1)), i)
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp
    for s in range(n):
        for k in range(width):
            u_graph[s, k] = u_graph_flat[n + s * width + k]
    total = 0.0
    for s in range(n):
        g = -(math.log(1.0 - u_weight[2 * s]) + math.log(1.0 - u_weight[2 * s + 1]))
        weights[s] = g
        total += g
    for s in range(n):
        weights[s] = weights[s] / total
