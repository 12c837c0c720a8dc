"""Log records as JSON lines: one object per line, for a log collector.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; while a request is
answered, also ``request_id``, ``method`` and ``path`` (config.middleware.RequestLogMiddleware, or
the ``request`` Django's own loggers attach); any ``extra`` fields (``status``, ``duration_ms``);
and ``exception`` with the traceback.
"""

import json
import logging
from datetime import UTC, datetime

# The attributes every LogRecord has; anything else came in through ``extra``.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request",
    "server_time",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from config.middleware import request_context

        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(request_context.get() or {})
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            entry.setdefault("method", getattr(request, "method", None))
            entry.setdefault("path", request.path)
        for name, value in vars(record).items():
            if name not in STANDARD_ATTRIBUTES and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
