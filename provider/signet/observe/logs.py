"""Logging as JSON lines on standard error: one object per line, every key once.

Decision lines come from the engine already encoded (one per image, written in one call per
request, since the log is on the hot path); every other record is encoded here.
"""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == "signet.decision":
            return record.getMessage()
        entry = {
            "time": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str) -> None:
    # The JSON lines name no source line, thread or process, so records need not look them up
    # (the logging HOWTO's "Optimization"): the decision lines are on every request's path.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per decision is the log; a line per registry call would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
