"""Logging setup with a last-line redaction filter for known secret values."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["RedactingFilter", "configure_logging", "quiet_libraries"]

# Libraries whose DEBUG output contains whole request and response bodies (Slack messages, which
# may carry VNC credentials meant for one user): never below INFO, whatever LOG_LEVEL says.
BODY_LOGGERS = ("slack_sdk", "slack_bolt", "aiosqlite")


def quiet_libraries() -> None:
    """Keep body-logging libraries at INFO or above."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


MASK = "[redacted]"


class RedactingFilter(logging.Filter):
    """Replace every known secret in a record's final message; defence in depth, not a licence
    to log secrets (the code never passes them to a logger in the first place)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A broken format call: logging would report it with the raw args, so render them
            # here (redacted) instead of letting the error escape from the caller's log call.
            message = f"{record.msg!s} (unformattable arguments: {record.args!r})"
            record.msg, record.args = message, None
        text = self._mask(message)
        if text != message:
            record.msg, record.args = text, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def configure_logging(level: str, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Log to stderr at `level`; every handler redacts `secrets`. Called once, at an edge."""
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "apscheduler", "alembic"):  # vfbot logs what migrations did
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    quiet_libraries()
    return redactor
