"""The environment server: the OpenEnv protocol, the earlier HTTP API with
sessions, alert ingestion into a durable store, and metrics, in one ASGI app.

``create_server_app()`` builds it; ``app`` is the default instance (what
``uvicorn adaptive_alert_triage.server.app:app`` serves) and ``main()`` runs it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..ingest.feed import LiveFeed
from ..ingest.store import AlertStore
from . import wire
from .ingest_api import IngestApi
from .legacy import LegacyApi, TrainSocket, install_error_handlers
from .metrics import ServerMetrics, results_summary
from .openenv_env import build_openenv_app
from .sessions import SessionStore

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a step is a few hundred bytes


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets a 413 JSON error,
    whether it declares its length or streams.

    A streamed body (chunked, no Content-Length) is read whole, up to the
    limit, before the app sees it: an error raised from inside the app's own
    body reading would be caught by FastAPI's body parsing and answered as a
    400 "error parsing the body" instead of the 413."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared: int | None = None
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await self._reject(send, "invalid Content-Length", 400)
                if declared > self.max_bytes:
                    return await self._reject(send, self._too_big(declared), 413)
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and not chunked:
            # The HTTP server delivers exactly the declared length: nothing to count.
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # http.disconnect: the client left mid-body; nobody to answer
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                return await self._reject(send, self._too_big(seen), 413)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole: dict[str, Any] | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> dict[str, Any]:
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # after the body: http.disconnect, when it comes

        await self.app(scope, replay, send)

    def _too_big(self, size: int) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"

    @staticmethod
    async def _reject(send: Any, detail: str, status: int) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_server_app(
    max_sessions: int = 256,
    privileged: bool = False,
    results_path: str | None = "results/results.json",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    idle_seconds: float = 3600.0,
    db_path: str | None = None,
    ingest_token: str | None = None,
) -> FastAPI:
    """One server: OpenEnv (``/reset``, ``/step``, ``/state``, ``/schema``,
    ``/metadata``, ``/ws``), the earlier API (``/tasks``, ``/env/...``,
    ``/ws/train``), ``/health`` and ``/metrics``. ``max_sessions`` caps the live
    sessions of each protocol; ``privileged`` lets ``/env/state`` show the hidden
    truth (for debugging only). ``db_path`` is the SQLite alert store that
    ``/ingest/alerts`` writes and live sessions read (None: ingestion off);
    ``ingest_token`` makes ingestion require ``Authorization: Bearer <token>``."""
    store = SessionStore(max_sessions=max_sessions, idle_seconds=idle_seconds)
    metrics = ServerMetrics(sessions_live=lambda: len(store))
    alerts = AlertStore(db_path) if db_path is not None else None
    live_feed = (lambda: LiveFeed(alerts)) if alerts is not None else None
    app = build_openenv_app(
        max_concurrent_envs=max_sessions, on_event=metrics.on_event, live_feed=live_feed
    )
    # One /health for both protocols: OpenEnv's status plus the earlier fields.
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/health"]
    legacy = LegacyApi(store, metrics, privileged=privileged, live_feed=live_feed)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        sessions = store.sessions()
        return {
            "status": "healthy",
            "env_ready": True,
            "sessions": len(sessions),
            "queue_size": sum(int(s.env.team.sim.queue_length[0]) for s in sessions if not s.done),
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/metrics/summary")
    async def summary() -> dict[str, Any]:
        return results_summary(results_path)

    app.include_router(legacy.router())
    app.include_router(IngestApi(alerts, metrics, token=ingest_token).router())
    install_error_handlers(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # OpenEnv's /step raises HTTPException(422, detail=e.errors()), which
        # echoes the input (a NaN, say): made JSON-safe, or encoding it fails.
        return JSONResponse(
            {"detail": wire.validation_errors(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_errors(exc)}, status_code=422)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(TrainSocket, api=legacy)  # WS /ws/train, ahead of our other layers
    app.state.sessions = store
    app.state.metrics = metrics
    app.state.alert_store = alerts
    return app


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The errors without the ``input`` they echo, which may not be JSON."""
    return wire.validation_errors(exc.errors())


app = create_server_app(
    max_sessions=int(os.environ.get("ALERT_TRIAGE_MAX_SESSIONS", "256")),
    privileged=os.environ.get("ALERT_TRIAGE_PRIVILEGED", "") == "1",
    db_path=os.environ.get("ALERT_TRIAGE_DB") or None,
    ingest_token=os.environ.get("ALERT_TRIAGE_INGEST_TOKEN") or None,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alert-triage serve", description=__doc__)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default loopback; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-sessions", type=int, default=256)
    parser.add_argument(
        "--privileged-debug",
        action="store_true",
        help="let /env/state show the hidden truth (never in a shared deployment)",
    )
    parser.add_argument("--results", default="results/results.json", help="for /metrics/summary")
    parser.add_argument(
        "--db",
        default="alert-triage.db",
        help="SQLite store of ingested alerts (WAL mode; created if missing)",
    )
    parser.add_argument(
        "--ws-deflate",
        action="store_true",
        help="offer permessage-deflate compression on WebSockets (off by default: a step's "
        "reply is ~1.5 kB, and compressing it costs more than it saves on loopback or a LAN)",
    )
    parser.add_argument(
        "--ingest-token",
        default=os.environ.get("ALERT_TRIAGE_INGEST_TOKEN") or None,
        help="shared secret that /ingest/alerts requires as a Bearer token "
        "(default: $ALERT_TRIAGE_INGEST_TOKEN; unset means no authentication)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    args = build_parser().parse_args(argv)
    if args.max_sessions < 1:
        parser_error = f"--max-sessions must be >= 1, got {args.max_sessions}"
        raise SystemExit(f"alert-triage serve: error: {parser_error}")
    if not args.db:
        raise SystemExit("alert-triage serve: error: --db needs a file path, got an empty one")
    try:
        server_app = create_server_app(
            max_sessions=args.max_sessions,
            privileged=args.privileged_debug,
            results_path=args.results,
            db_path=args.db,
            ingest_token=args.ingest_token,
        )
    except (ValueError, TypeError) as exc:  # a bad --db or --ingest-token
        raise SystemExit(f"alert-triage serve: error: {exc}") from None
    # The imports (FastAPI, OpenEnv, numpy, ...) leave ~300k objects that live as
    # long as the server; every full collection would walk them all again (tens
    # of milliseconds each, some every few thousand steps). Collect once, then
    # keep them out of the collector's generations.
    gc.collect()
    gc.freeze()
    # At log level "warning" uvicorn prints no access log anyway; access_log=False
    # also skips building each line. uvicorn picks uvloop, httptools and the
    # websockets (sans-I/O) protocol by itself when they are installed (the
    # [server] extra installs uvicorn[standard]).
    uvicorn.run(
        server_app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=args.ws_deflate,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
