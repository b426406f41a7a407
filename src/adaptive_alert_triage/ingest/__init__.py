"""Real alerts in: webhook payload parsers, a durable SQLite store, live feeds
and trace replay."""

from .formats import FORMATS, detect_format, parse
from .model import SOURCES, STATUSES, AlertEvent, PayloadError

__all__ = ["FORMATS", "SOURCES", "STATUSES", "AlertEvent", "PayloadError", "detect_format", "parse"]
