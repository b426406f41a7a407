"""A durable alert store: SQLite in WAL mode, one file, no server.

Two tables:

* ``events``: every accepted notification, append-only, in arrival order
  (``seq``). Live sessions poll it; replays read it as a trace.
* ``alerts``: one row per dedup key with its latest state, so a repeated
  notification updates the alert rather than duplicating it, and a
  ``resolved`` one closes it.

A status-only notification (`AlertEvent.status_only`: a PagerDuty acknowledge
or resolve without a payload) never creates or reopens an alert, as in
`feed.EpisodeFeed`: it updates an alert that is firing (a resolve closes it),
and one that names no firing alert changes no row and is counted as
``unknown`` (`AlertStore.record`, ``stats()["unknown"]``). It is still logged
in ``events``, where a live feed or replay counts it as an unknown key.

`AlertStore.add` commits before it returns, with ``synchronous=FULL``: once a
request has been acknowledged its alerts survive a crash of the server, and of
the machine. One connection serves every thread, behind a lock: SQLite takes
one writer at a time anyway, and batching is what makes ingestion fast.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from .model import AlertEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    format TEXT NOT NULL,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    status TEXT NOT NULL,
    service TEXT NOT NULL,
    alert_type TEXT NOT NULL,
    severity REAL NOT NULL,
    confidence REAL,
    starts_at REAL,
    ends_at REAL,
    summary TEXT NOT NULL,
    labels TEXT NOT NULL,
    status_only INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_key ON events (dedup_key);
CREATE TABLE IF NOT EXISTS alerts (
    dedup_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL,
    service TEXT NOT NULL,
    alert_type TEXT NOT NULL,
    severity REAL NOT NULL,
    confidence REAL,
    starts_at REAL,
    ends_at REAL,
    summary TEXT NOT NULL,
    labels TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    notifications INTEGER NOT NULL
);
"""

_EVENT_COLUMNS = (
    "source, dedup_key, status, service, alert_type, severity, confidence, "
    "starts_at, ends_at, summary, labels"
)
_UPSERT = (
    "INSERT INTO alerts (dedup_key, source, format, status, service, alert_type, "
    "severity, confidence, starts_at, ends_at, summary, labels, first_seen, "
    "last_seen, notifications) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
    "ON CONFLICT (dedup_key) DO UPDATE SET status = excluded.status, "
)
#: A full notification replaces what the alert shows ...
_UPSERT_FULL = _UPSERT + (
    "service = excluded.service, alert_type = excluded.alert_type, "
    "severity = excluded.severity, confidence = excluded.confidence, "
    "starts_at = COALESCE(excluded.starts_at, alerts.starts_at), "
    "ends_at = excluded.ends_at, summary = excluded.summary, "
    "labels = excluded.labels, last_seen = excluded.last_seen, "
    "notifications = alerts.notifications + 1"
)
#: ... a status-only one changes the status alone, of a firing alert only:
#: an acknowledgement keeps it firing, a resolve closes it. It never makes a
#: row (its service, type and severity are placeholders) nor reopens one.
_UPDATE_STATUS = (
    "UPDATE alerts SET status = ?, ends_at = COALESCE(?, ends_at), last_seen = ?, "
    "notifications = notifications + 1 WHERE dedup_key = ? AND status = 'firing'"
)
#: Whether an alert is open follows from its log: its latest notification that
#: is full or a resolution (a status-only firing one changes nothing) is a full
#: firing one. ``{key}`` is the column naming the alert; ``{before}`` an extra
#: condition on the notifications considered.
_LATEST_STATE = (
    "(SELECT p.status FROM events p WHERE p.dedup_key = {key}{before} "
    "AND (p.status_only = 0 OR p.status = 'resolved') ORDER BY p.seq DESC LIMIT 1)"
)


def _event_from_row(row: tuple, status_only: bool = False) -> AlertEvent:
    source, key, status, service, atype, severity, confidence, starts, ends, summary, labels = row
    return AlertEvent(
        status_only=bool(status_only),
        source=source,
        dedup_key=key,
        status=status,
        service=service,
        alert_type=atype,
        severity=severity,
        confidence=confidence,
        starts_at=starts,
        ends_at=ends,
        summary=summary,
        labels=json.loads(labels),
    )


class StoredEvent(tuple):
    """(seq, received_at, format, event) of one stored notification."""

    __slots__ = ()

    def __new__(cls, seq: int, received_at: float, fmt: str, event: AlertEvent):
        return super().__new__(cls, (seq, received_at, fmt, event))

    seq = property(lambda self: self[0])
    received_at = property(lambda self: self[1])
    format = property(lambda self: self[2])
    event = property(lambda self: self[3])


class Recorded(NamedTuple):
    """What `AlertStore.record` stored: the sequence number of each event, and
    the dedup keys of the status-only ones that named no firing alert."""

    seqs: list[int]
    unknown: list[str]


class AlertStore:
    """The SQLite store at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, Path)):
            raise TypeError(f"store path must be a str or Path, got {path!r}")
        if not str(path):  # a ValueError: the server reports it as a bad --db
            raise ValueError("store path must not be empty")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"store path {str(self.path)!r} is a directory, not a database file")
        if not self.path.parent.exists():
            raise ValueError(f"the directory of store path {str(self.path)!r} does not exist")
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{str(self.path)!r} is not a usable SQLite database: {exc}") from None
        if mode.lower() != "wal":
            raise ValueError(f"SQLite refused WAL mode for {str(self.path)!r} (got {mode!r})")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def add(
        self, events: Iterable[AlertEvent], fmt: str, received_at: float | None = None
    ) -> list[int]:
        """Store ``events`` (one transaction, committed before returning) and
        return their sequence numbers."""
        return self.record(events, fmt, received_at).seqs

    def record(
        self, events: Iterable[AlertEvent], fmt: str, received_at: float | None = None
    ) -> Recorded:
        """`add`, also saying which status-only events named no firing alert."""
        events = list(events)
        now = time.time() if received_at is None else float(received_at)
        seqs: list[int] = []
        unknown: list[str] = []
        with self._lock, self._db:
            for ev in events:
                labels = json.dumps(ev.labels, sort_keys=True)
                cur = self._db.execute(
                    f"INSERT INTO events (received_at, format, {_EVENT_COLUMNS}, status_only) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        now,
                        fmt,
                        ev.source,
                        ev.dedup_key,
                        ev.status,
                        ev.service,
                        ev.alert_type,
                        ev.severity,
                        ev.confidence,
                        ev.starts_at,
                        ev.ends_at,
                        ev.summary,
                        labels,
                        int(ev.status_only),
                    ),
                )
                seqs.append(int(cur.lastrowid))
                if ev.status_only:
                    cur = self._db.execute(
                        _UPDATE_STATUS, (ev.status, ev.ends_at, now, ev.dedup_key)
                    )
                    if cur.rowcount == 0:
                        unknown.append(ev.dedup_key)
                    continue
                self._db.execute(
                    _UPSERT_FULL,
                    (
                        ev.dedup_key,
                        ev.source,
                        fmt,
                        ev.status,
                        ev.service,
                        ev.alert_type,
                        ev.severity,
                        ev.confidence,
                        ev.starts_at,
                        ev.ends_at,
                        ev.summary,
                        labels,
                        now,
                        now,
                    ),
                )
        return Recorded(seqs, unknown)

    # ------------------------------------------------------------------ reads
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def last_seq(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])

    def events(
        self,
        after: int = 0,
        limit: int | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[StoredEvent]:
        """Stored notifications with ``seq > after``, in arrival order,
        optionally from one source and received in ``[since, until]``."""
        sql = (
            f"SELECT seq, received_at, format, status_only, {_EVENT_COLUMNS} "
            "FROM events WHERE seq > ?"
        )
        args: list[Any] = [int(after)]
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        if since is not None:
            sql += " AND received_at >= ?"
            args.append(float(since))
        if until is not None:
            sql += " AND received_at <= ?"
            args.append(float(until))
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [
            StoredEvent(row[0], row[1], row[2], _event_from_row(row[4:], row[3]))
            for row in self._query(sql, tuple(args))
        ]

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """The latest state of every alert (or of those with ``status``)."""
        sql = "SELECT * FROM alerts"
        args: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY first_seen, dedup_key"
        with self._lock:
            cur = self._db.execute(sql, args)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            record = dict(zip(names, row))
            record["labels"] = json.loads(record["labels"])
            out.append(record)
        return out

    def open_events(self) -> list[AlertEvent]:
        """The alerts still firing, as events (their latest state). The log
        must agree: a row that a status-only notification made or reopened (as
        stores written before it was refused hold) is not an open alert."""
        latest = _LATEST_STATE.format(key="alerts.dedup_key", before="")
        rows = self._query(
            f"SELECT {_EVENT_COLUMNS} FROM alerts WHERE status = 'firing' "
            f"AND {latest} = 'firing' ORDER BY first_seen, dedup_key"
        )
        return [_event_from_row(row) for row in rows]

    def stats(self) -> dict[str, Any]:
        """A summary of the store, for ``alert-triage ingest-stats``."""
        (n_events, first, last) = self._query(
            "SELECT COUNT(*), MIN(received_at), MAX(received_at) FROM events"
        )[0]
        by_status = dict(self._query("SELECT status, COUNT(*) FROM alerts GROUP BY status"))
        latest = _LATEST_STATE.format(key="e.dedup_key", before=" AND p.seq < e.seq")
        (unknown,) = self._query(
            "SELECT COUNT(*) FROM events e WHERE e.status_only = 1 "
            f"AND COALESCE({latest}, '') != 'firing'"
        )[0]
        by_source = {
            source: {"events": n, "alerts": 0}
            for source, n in self._query("SELECT source, COUNT(*) FROM events GROUP BY source")
        }
        for source, n in self._query("SELECT source, COUNT(*) FROM alerts GROUP BY source"):
            by_source.setdefault(source, {"events": 0, "alerts": 0})["alerts"] = n
        by_format = dict(self._query("SELECT format, COUNT(*) FROM events GROUP BY format"))
        by_type = dict(self._query("SELECT alert_type, COUNT(*) FROM alerts GROUP BY alert_type"))
        services = dict(
            self._query(
                "SELECT service, COUNT(*) FROM alerts GROUP BY service ORDER BY COUNT(*) DESC, "
                "service LIMIT 10"
            )
        )
        return {
            "path": str(self.path),
            "events": int(n_events),
            "alerts": int(sum(by_status.values())),
            "firing": int(by_status.get("firing", 0)),
            "resolved": int(by_status.get("resolved", 0)),
            # status-only notifications that named no firing alert: stored, no alert
            "unknown": int(unknown),
            "first_received": first,
            "last_received": last,
            "by_source": by_source,
            "by_format": by_format,
            "by_type": by_type,
            "top_services": services,
        }
