"""Logging setup: text or JSON lines on stderr, with a last-line redaction filter for known
secret values that applies to both formats."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Final

from bot.logfields import FIELDS, FieldsFilter

__all__ = [
    "BODY_LOGGERS",
    "BOLT_LOGGER",
    "MASK",
    "RESPONSE_URL_MASK",
    "JsonFormatter",
    "RedactingFilter",
    "configure_logging",
    "log_refusal",
    "quiet_libraries",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries whose DEBUG output contains whole request and response bodies (Slack messages, which
# may carry VNC credentials meant for one user): never below INFO, whatever LOG_LEVEL says.
BODY_LOGGERS = ("slack_sdk", "slack_bolt", "aiosqlite")
BOLT_LOGGER: Final = "slack_bolt.vfbot"
"""The logger (and app name) the Bolt app is given, so its loggers sit below "slack_bolt"."""

# Bolt logs the whole body of every request whose signature fails, at INFO (slack_bolt 1.x,
# `RequestVerification._debug_log_error`): a flood of big posts, forged lines from a body with a
# newline, and a late genuine request's response_url.
_BOLT_VERIFICATION = "slack_bolt.RequestVerification"


def log_refusal(
    logger: logging.Logger, method: str, path: str, reason: str, size: int | None
) -> None:
    """One line for a refused HTTP request, naming the reason and size: never the body or a
    header value (Slack bodies carry `response_url`; webhook headers carry the token)."""
    shown = size if size is not None else "unknown"
    logger.info("refused %s %s: %s (%s bytes)", method, path, reason, shown)


class _WithoutBody(logging.Filter):
    """Replace Bolt's "invalid signature" record with one line that has no body in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "Bolt refused a request: invalid signature (body not logged)"
        record.args = None
        return True


def quiet_libraries() -> None:
    """Keep body-logging libraries at INFO or above, and Bolt's refusals without the body."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
    verification = logging.getLogger(_BOLT_VERIFICATION)
    if not any(isinstance(f, _WithoutBody) for f in verification.filters):
        verification.addFilter(_WithoutBody())


MASK = "[redacted]"
RESPONSE_URL_MASK = "[response_url]"
# A command's or interaction's response_url lets whoever has it post into the channel for 30
# minutes; plain or form-encoded, it never reaches a log.
_RESPONSE_URL: Final = re.compile(
    r"https?(?::|%3A)(?:/|%2F){2}hooks\.slack\.com[^\s&\"'<>]*", re.IGNORECASE
)


class RedactingFilter(logging.Filter):
    """Replace every known secret in a record's final message; defence in depth, not a licence
    to log secrets (the code never passes them to a logger in the first place)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A broken format call: logging would report it with the raw args, so render them
            # here (redacted) instead of letting the error escape from the caller's log call.
            message = f"{record.msg!s} (unformattable arguments: {record.args!r})"
            record.msg, record.args = message, None
        text = self.redact(message)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def redact(self, text: str) -> str:
        """`text` with every known secret replaced by the mask."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _RESPONSE_URL.sub(RESPONSE_URL_MASK, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the log fields
    in effect (`bot.logfields`: request_id, server_id, worker_id…), and the exception's
    traceback as one string, if any. `redact` is applied to the finished line as well."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int | str) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return self._redact(json.dumps(entry, ensure_ascii=False, default=str))


def configure_logging(
    level: str, secrets: Iterable[str] = (), log_format: str = "text"
) -> RedactingFilter:
    """Log to stderr at `level` as `log_format` ("text" or "json"); every handler redacts
    `secrets`. Called once, at an edge."""
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(redactor.redact))
        logging.captureWarnings(True)  # Python's warnings become JSON lines too
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(FieldsFilter())
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "apscheduler", "alembic"):  # vfbot logs what migrations did
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    quiet_libraries()
    return redactor
