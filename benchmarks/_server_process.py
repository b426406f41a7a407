"""What the server benchmarks share: a free loopback port, starting and waiting
for `alert-triage serve`, its CPU time, and a lean blocking WebSocket client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Poll ``/health`` until it answers 200; fail fast if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not come up")


def start_server(
    port: int, args: Sequence[str] = (), cpus: set[int] | None = None
) -> subprocess.Popen:
    """`alert-triage serve` on loopback ``port`` (with ``args``), on ``cpus`` if given."""
    command = [sys.executable, "-m", "adaptive_alert_triage.cli", "serve", "--port", str(port)]

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    return subprocess.Popen([*command, *args], preexec_fn=pin if cpus else None)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WsClient:
    """A blocking WebSocket client without a reader thread: the websockets
    library's sans-I/O protocol (handshake, masking, framing, ping replies) over
    a plain socket. No compression is offered. One text message out, one in."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        uri = parse_uri(url)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.protocol = ClientProtocol(uri, max_size=2**24)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self._events: list = []
        while self.protocol.state is State.CONNECTING:
            self._read()
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        self._events = [e for e in self.protocol.events_received() if isinstance(e, Frame)]

    def send(self, text: str | bytes) -> None:
        """Send one text message (``bytes`` must be UTF-8)."""
        self.protocol.send_text(text.encode() if isinstance(text, str) else text)
        self._flush()

    def recv(self) -> bytes:
        """The next text message, as UTF-8 bytes."""
        parts: list[bytes] = []
        while True:
            while self._events:
                frame = self._events.pop(0)
                if frame.opcode in (Opcode.TEXT, Opcode.CONT):
                    parts.append(frame.data)
                    if frame.fin:
                        return b"".join(parts)
                elif frame.opcode is Opcode.CLOSE:
                    raise ConnectionError("the server closed the WebSocket")
            self._read()
            self._events.extend(self.protocol.events_received())
            self._flush()  # pong replies, close handshakes

    def close(self) -> None:
        try:
            self.protocol.send_close()
            self._flush()
        except Exception:  # the socket may be gone already
            pass
        self.sock.close()

    def __enter__(self) -> WsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> None:
        data = self.sock.recv(1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            if self.protocol.state is not State.OPEN:
                raise ConnectionError("the server closed the connection")
