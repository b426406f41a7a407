"""Read-only pictures of one env of a batch: an ANSI queue table and an RGB frame.

Rendering never touches a generator, so it cannot change a trajectory.
"""

from __future__ import annotations

import numpy as np

from .config import ALERT_TYPES
from .engine import (
    AL_ACTIVE,
    AL_NOISE,
    AL_TRUE_SEV,
    AL_TYPE,
    AL_VIS_SEV,
    AlertSim,
)
from .topology import service_names

TYPE_COLOURS = np.array(
    [
        [230, 126, 34],  # CPU
        [155, 89, 182],  # MEMORY
        [52, 152, 219],  # DISK
        [26, 188, 156],  # NETWORK
        [241, 196, 15],  # APPLICATION
        [231, 76, 60],  # SECURITY
    ],
    dtype=np.uint8,
)


def render_ansi(sim: AlertSim, b: int = 0) -> str:
    cfg = sim.config
    names = service_names(sim.S)
    lines = [
        f"[{cfg.task_id}] step {int(sim.t[b])}/{cfg.max_steps}  "
        f"queue {int(sim.queue_length[b])}  failures {int(sim.failures[b])}/{cfg.failure_threshold}"
        f"  load {float(sim.system_load()[b]):.2f}  K={sim.K}",
        f"{'slot':>4}  {'id':16}  {'type':11}  {'service':16}  {'sev':>4}  {'conf':>4}  {'age':>3}",
    ]
    for rec_slot, rec in enumerate(sim.queue_records(b)[: sim.N]):
        lines.append(
            f"{rec_slot:>4}  {rec['id']:16}  {ALERT_TYPES[rec['alert_type']]:11}  "
            f"{names[rec['service']]:16}  {rec['visible_severity']:4.2f}  "
            f"{rec['confidence']:4.2f}  {rec['age']:>3}"
        )
    hidden = int(sim.queue_length[b]) - sim.N
    if hidden > 0:
        lines.append(f"      ... {hidden} more queued beyond the visible slots")
    down = [names[s] for s in np.flatnonzero(sim.down()[b])]
    if down:
        lines.append("down: " + ", ".join(down))
    return "\n".join(lines)


def _line(img: np.ndarray, p0: tuple[int, int], p1: tuple[int, int], colour) -> None:
    n = max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]), 1)
    ys = np.linspace(p0[0], p1[0], n + 1).round().astype(int)
    xs = np.linspace(p0[1], p1[1], n + 1).round().astype(int)
    img[ys, xs] = colour


def render_rgb(sim: AlertSim, b: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 picture: the queue on the left (bar length is the
    visible severity, colour the type, a dark tick marks a false positive)
    and the service graph on the right (green up, amber incident, red down)."""
    row_h, width, graph_w = 14, 420, 240
    height = max(sim.N * row_h + 20, 200)
    img = np.full((height, width + graph_w, 3), 250, dtype=np.uint8)
    slots = sim.alerts[b, : sim.N]
    for i, row in enumerate(slots):
        if row[AL_ACTIVE] < 0.5:
            continue
        y0 = 10 + i * row_h
        length = int(20 + (width - 40) * row[AL_VIS_SEV])
        img[y0 : y0 + row_h - 3, 10 : 10 + length] = TYPE_COLOURS[int(row[AL_TYPE])]
        truth = int(20 + (width - 40) * row[AL_TRUE_SEV])
        img[y0 + row_h - 5 : y0 + row_h - 3, 10 : 10 + truth] = 40
        if row[AL_NOISE] > 0.5:
            img[y0 : y0 + row_h - 3, 4:8] = 60
    # The service graph, laid out by hidden layer.
    layer = sim.layer[b]
    depth = int(layer.max()) + 1
    pos = {}
    for d in range(depth):
        members = np.flatnonzero(layer == d)
        for j, s in enumerate(members):
            y = int(15 + (height - 30) * (j + 0.5) / len(members))
            x = int(width + 20 + (graph_w - 40) * (d + 0.5) / depth)
            pos[int(s)] = (y, x)
    for u, v in zip(*np.nonzero(sim.adj[b])):
        _line(img, pos[int(u)], pos[int(v)], (170, 170, 170))
    down = sim.down()[b]
    for s, (y, x) in pos.items():
        if down[s]:
            colour = (200, 40, 40)
        elif sim.inc_active[b, s]:
            colour = (240, 160, 30)
        else:
            colour = (60, 170, 80)
        img[max(y - 4, 0) : y + 5, max(x - 4, 0) : x + 5] = colour
    # A strip along the bottom: time used, and failures against the threshold.
    frac = min(int(sim.t[b]) / sim.config.max_steps, 1.0)
    img[height - 6 : height - 3, 10 : 10 + int((width - 20) * frac)] = (90, 90, 200)
    fails = min(int(sim.failures[b]) / (sim.config.failure_threshold + 1), 1.0)
    img[height - 3 : height, 10 : 10 + int((width - 20) * fails)] = (200, 40, 40)
    return img


def render_frame(sim: AlertSim, mode: str, b: int = 0) -> str | np.ndarray | None:
    """Render env ``b`` in a Gymnasium/PettingZoo render mode: ``"rgb_array"`` an
    image, ``"ansi"`` the text, ``"human"`` prints the text and returns None."""
    if mode == "rgb_array":
        return render_rgb(sim, b)
    text = render_ansi(sim, b)
    if mode == "human":
        print(text)
        return None
    return text
