"""Helpers for the ingestion tests: free ports, polling with a deadline, the
server as a subprocess (``alert-triage serve``) and a real Prometheus
Alertmanager on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from string import Template
from typing import Any, TypeVar

import httpx
import pytest

DATA = Path(__file__).parent / "data"
ALERTMANAGER_TEMPLATE = DATA / "alertmanager" / "alertmanager.yml.tmpl"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    probe: Callable[[], T],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "the condition",
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy (returned) or
    ``timeout`` seconds pass (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            extra = f"\n{diagnostics()}" if diagnostics is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


def assert_json_error(response: httpx.Response, status: int | None = None) -> Any:
    """A 4xx whose body is JSON with a ``detail``; returns the detail."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response
    body = response.json()
    assert isinstance(body, dict) and "detail" in body, body
    assert body["detail"], body
    return body["detail"]


def rfc3339(when: float) -> str:
    """Unix seconds as the RFC 3339 UTC time Alertmanager's API takes."""
    stamp = dt.datetime.fromtimestamp(when, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServeProcess:
    """``alert-triage serve --db DB`` as a subprocess on a free loopback port.

    ``kill()`` is SIGKILL (no cleanup of any kind: what a crash does);
    ``stop()`` is SIGTERM, then SIGKILL if it lingers. Output goes to
    ``log`` (shown when the server fails to come up)."""

    def __init__(
        self,
        db: Path,
        log: Path,
        token: str | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [
            sys.executable,
            "-m",
            "adaptive_alert_triage.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(db),
        ]
        if token is not None:
            cmd += ["--ingest-token", token]
        env = {k: v for k, v in os.environ.items() if k != "ALERT_TRIAGE_INGEST_TOKEN"}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(db.parent)
            )
        self.pid = self.proc.pid
        try:
            wait_until(
                self._ready,
                timeout=startup_timeout,
                interval=0.1,
                what=f"the server on {self.url} to answer /health",
                diagnostics=lambda: _tail(self.log),
            )
        except BaseException:
            self.kill()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the server exited with {self.proc.returncode}:\n{_tail(self.log)}"
            )
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def alertmanager_binary() -> str:
    """The Prometheus Alertmanager executable; the test fails (never skips)
    without it."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Prometheus Alertmanager is not installed (neither 'prometheus-alertmanager' nor "
        "'alertmanager' is on PATH): apt-get install -y prometheus-alertmanager"
    )


class Alertmanager:
    """A real Alertmanager on a free loopback port, clustering off, whose one
    route sends every alert to ``webhook_url`` (with ``Authorization: Bearer
    token``). ``stop()`` kills it; call it in teardown."""

    def __init__(
        self,
        workdir: Path,
        webhook_url: str,
        token: str = "unused",
        group_wait: str = "500ms",
        group_interval: str = "1s",
        resolve_timeout: str = "5m",
        startup_timeout: float = 30.0,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(
            Template(ALERTMANAGER_TEMPLATE.read_text()).substitute(
                webhook_url=webhook_url,
                token=token,
                group_wait=group_wait,
                group_interval=group_interval,
                resolve_timeout=resolve_timeout,
            )
        )
        self.log = workdir / "alertmanager.log"
        cmd = [
            alertmanager_binary(),
            f"--config.file={self.config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(
                self._ready,
                timeout=startup_timeout,
                interval=0.1,
                what=f"Alertmanager on {self.url} to be ready",
                diagnostics=self.log_tail,
            )
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 30) -> str:
        return f"Alertmanager log:\n{_tail(self.log, lines)}"

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"Alertmanager exited with {self.proc.returncode}\n{self.log_tail()}"
            )
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts (what Prometheus does on every evaluation)."""
        r = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
