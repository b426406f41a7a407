"""``POST /ingest/alerts``: real alert streams into the durable store.

Accepts Alertmanager (webhook v4), Grafana, Datadog, PagerDuty (Events API v2)
and the project's own alert JSON, detected by shape or chosen with
``?format=``. Every alert of a payload is parsed on its own: the good ones are
stored (and committed) before the reply, the bad ones are listed by index with
the reason. Status codes:

* 200: every alert stored (an empty batch is fine; a bare ``[]`` is read as native);
  ``unknown`` lists the keys of status-only notifications (a PagerDuty
  acknowledge or resolve without a payload) that named no firing alert: they
  are logged, and create or reopen no alert;
* 207: some stored, some rejected (the body says which);
* 400 / 415 / 422: nothing stored (malformed JSON, unknown format, every alert
  invalid), with a ``detail`` that says why;
* 401: ``--ingest-token`` is set and the request lacks ``Authorization:
  Bearer <token>``;
* 503: the server runs without a store (no ``--db``).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..ingest.formats import FORMATS, parse
from ..ingest.model import AlertEvent, PayloadError
from ..ingest.store import AlertStore
from .legacy import ApiError
from .metrics import ServerMetrics


class IngestApi:
    """The ingestion routes over one store (or none: ingestion off)."""

    def __init__(
        self, store: AlertStore | None, metrics: ServerMetrics, token: str | None = None
    ) -> None:
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("the ingest token must be a non-empty string or None")
        self.store = store
        self.metrics = metrics
        try:
            # surrogateescape: the raw bytes of a command-line argument that is not UTF-8
            self._token = token.encode("utf-8", "surrogateescape") if token else None
        except UnicodeEncodeError:
            raise ValueError("the ingest token must be text that UTF-8 can encode") from None

    def _authorize(self, request: Request) -> None:
        """Compare the header's raw bytes with the token's UTF-8 bytes. Starlette
        decodes header values as Latin-1, so that string re-encoded as Latin-1
        is the bytes that were sent (as UTF-8, what clients send, it would not be)."""
        if self._token is None:
            return
        header = request.headers.get("authorization", "").encode("latin-1")
        scheme, _, given = header.partition(b" ")
        # Strip only ASCII blanks: str.strip would also eat bytes 0x85 and 0xA0,
        # which occur inside UTF-8 sequences.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(b" \t"), self._token):
            self.metrics.ingest_rejected.labels(format="unknown", reason="unauthorized").inc()
            raise ApiError(
                401, "ingestion needs 'Authorization: Bearer <token>' with the server's token"
            )

    def _reject(self, status: int, detail: Any, fmt: str, reason: str) -> ApiError:
        self.metrics.ingest_rejected.labels(format=fmt, reason=reason).inc()
        return ApiError(status, detail)

    async def ingest(self, request: Request, fmt: str | None) -> JSONResponse:
        self._authorize(request)
        if self.store is None:
            raise ApiError(503, "ingestion is off: start the server with --db PATH to store alerts")
        if fmt is not None and fmt not in FORMATS:
            raise self._reject(
                422,
                f"unknown format {fmt!r}; allowed: {list(FORMATS)}",
                "unknown",
                "unknown_format",
            )
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type.lower():
            raise self._reject(
                415,
                f"content type {content_type!r} is not JSON; send application/json",
                fmt or "unknown",
                "content_type",
            )
        raw = await request.body()
        try:
            payload = json.loads(raw)
            json.dumps(payload, ensure_ascii=False).encode()  # lone surrogates: UnicodeEncodeError
        except (ValueError, RecursionError) as exc:  # also: too many digits, too deep
            raise self._reject(400, f"malformed JSON: {exc}", fmt or "unknown", "json") from None
        if payload == [] and fmt is None:
            fmt = "native"  # an empty batch has no shape to detect, and nothing to store
        try:
            used, items = parse(payload, fmt)
        except PayloadError as exc:
            raise self._reject(422, str(exc), fmt or "unknown", exc.reason) from None
        good: list[AlertEvent] = [item for item in items if isinstance(item, AlertEvent)]
        rejected = [
            {"index": i, "reason": item.reason, "detail": str(item)}
            for i, item in enumerate(items)
            if not isinstance(item, AlertEvent)
        ]
        for item in rejected:
            self.metrics.ingest_rejected.labels(format=used, reason=item["reason"]).inc()
        if items and not good:
            raise ApiError(
                422,
                {
                    "message": f"none of the {len(items)} alerts could be ingested",
                    "format": used,
                    "rejected": rejected,
                },
            )
        recorded = await run_in_threadpool(self.store.record, good, used) if good else None
        seqs = recorded.seqs if recorded is not None else []
        for event in good:
            self.metrics.ingest_alerts.labels(
                source=event.source, format=used, status=event.status
            ).inc()
        body = {
            "format": used,
            "received": len(items),
            "accepted": len(good),
            "rejected": rejected,
            "keys": [event.dedup_key for event in good],
            "last_seq": seqs[-1] if seqs else None,
            # stored, but they create or reopen nothing: no firing alert has their key
            "unknown": recorded.unknown if recorded is not None else [],
        }
        return JSONResponse(body, status_code=207 if rejected else 200)

    def router(self) -> APIRouter:
        router = APIRouter()
        api = self

        @router.post("/ingest/alerts")
        async def ingest_alerts(
            request: Request, format: str | None = Query(default=None)
        ) -> JSONResponse:
            return await api.ingest(request, format)

        @router.get("/ingest/stats")
        async def ingest_stats(request: Request) -> dict[str, Any]:
            api._authorize(request)
            if api.store is None:
                raise ApiError(503, "ingestion is off: start the server with --db PATH")
            return await run_in_threadpool(api.store.stats)

        return router
