"""The redacting log filter: known secrets never reach a handler's output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logfields import log_fields, set_process_fields
from bot.redact import MASK, RedactingFilter, configure_logging

SECRET = "tok-5b0c9e2f7a"  # obviously fake

Log = tuple[logging.Logger, io.StringIO, RedactingFilter]


@pytest.fixture
def log() -> Iterator[Log]:
    """A private logger writing to a buffer through a handler that redacts SECRET."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    redactor = RedactingFilter([SECRET])
    handler.addFilter(redactor)
    logger = logging.getLogger("tests.redact")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, buffer, redactor
    logger.handlers.clear()
    logger.propagate = True


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, exc_info)


def test_secret_in_message_args_is_masked(log: Log) -> None:
    logger, buffer, _ = log

    logger.info("calling with %s and %r", SECRET, {"token": SECRET})

    text = buffer.getvalue()
    assert SECRET not in text
    assert text.count(MASK) == 2
    assert text.startswith("INFO calling with [redacted] and ")


def test_secret_in_the_message_itself_is_masked() -> None:
    rec = record(f"Authorization: Bearer {SECRET}")

    assert RedactingFilter([SECRET]).filter(rec) is True
    assert rec.getMessage() == f"Authorization: Bearer {MASK}"


def test_secret_in_exception_text_is_masked(
    log: Log,
) -> None:
    logger, buffer, _ = log
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise RuntimeError(f"panel said no to {SECRET}") from inner
    except RuntimeError:
        logger.exception("request failed")

    text = buffer.getvalue()
    assert "Traceback" in text
    assert "RuntimeError: panel said no to [redacted]" in text
    assert "KeyError: '[redacted]'" in text
    assert SECRET not in text


def test_secret_in_stack_info_is_masked() -> None:
    rec = record("here")
    rec.stack_info = f'Stack (most recent call last):\n  call(token="{SECRET}")'

    RedactingFilter([SECRET]).filter(rec)

    assert rec.stack_info == f'Stack (most recent call last):\n  call(token="{MASK}")'


def test_longest_secret_is_masked_first() -> None:
    rec = record("value=%s", SECRET + "-extended")

    RedactingFilter([SECRET, SECRET + "-extended"]).filter(rec)

    assert rec.getMessage() == f"value={MASK}"


@pytest.mark.parametrize("short", ["", "a", "abc", "12345"])
def test_short_strings_are_not_masked(short: str) -> None:
    rec = record("a=%s b=%s", "abc", "12345")

    RedactingFilter([short]).filter(rec)

    assert rec.getMessage() == "a=abc b=12345"


def test_six_characters_is_long_enough() -> None:
    rec = record("pin %s", "123456")

    RedactingFilter(["123456"]).filter(rec)

    assert rec.getMessage() == f"pin {MASK}"


def test_every_given_secret_is_masked_but_short_ones_are_not(log: Log) -> None:
    logger, buffer, redactor = log
    logger.handlers[0].removeFilter(redactor)
    logger.handlers[0].addFilter(RedactingFilter([SECRET, "xoxb-placeholder-0001", "tiny"]))

    logger.info("slack %s tiny %s", "xoxb-placeholder-0001", "tiny")

    assert buffer.getvalue() == f"INFO slack {MASK} tiny tiny\n"


def test_records_without_secrets_are_untouched() -> None:
    rec = record("hello %s", "world")

    RedactingFilter([SECRET]).filter(rec)

    assert rec.msg == "hello %s"
    assert rec.args == ("world",)


def test_broken_format_call_does_not_raise_or_leak() -> None:
    rec = record("two values %s %s", SECRET)

    assert RedactingFilter([SECRET]).filter(rec) is True
    assert SECRET not in rec.getMessage()
    assert "unformattable" in rec.getMessage()


def test_configure_logging_redacts_at_the_root(
    restore_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    redactor = configure_logging("DEBUG", [SECRET, "short"])

    logging.getLogger("bot.anything").debug("token %s, word %s", SECRET, "short")

    err = capsys.readouterr().err
    assert isinstance(redactor, RedactingFilter)
    assert restore_logging.level == logging.DEBUG
    assert f"DEBUG bot.anything: token {MASK}, word short" in err
    assert SECRET not in err
    assert logging.getLogger("aiohttp.access").level == logging.WARNING


def test_json_lines_carry_the_fields_and_stay_redacted(
    restore_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", [SECRET], "json")
    logger = logging.getLogger("bot.tests")
    set_process_fields(worker_id="host-1")
    try:
        with log_fields(request_id="VF-7", server_id=101):
            logger.info("token %s in a message", SECRET)
            try:
                raise RuntimeError(f"failed with {SECRET}\nsecond line")
            except RuntimeError:
                logger.exception("it broke")
        logger.warning("outside", extra={"request_id": "VF-8"})
    finally:
        set_process_fields(worker_id=None)
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert SECRET not in "\n".join(lines)
    first, broken, outside = entries
    assert set(first) == {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "server_id",
        "worker_id",
    }
    assert (
        first["time"].endswith("Z") and first["level"] == "INFO" and first["logger"] == "bot.tests"
    )
    assert first["message"] == f"token {MASK} in a message"
    assert (first["request_id"], first["server_id"], first["worker_id"]) == (
        "VF-7",
        "101",
        "host-1",
    )
    assert "Traceback" in broken["exception"] and MASK in broken["exception"]
    assert outside["request_id"] == "VF-8" and "server_id" not in outside


def test_text_stays_the_default(
    restore_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", [SECRET])
    logging.getLogger("bot.tests").info("plain %s", SECRET)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(f"INFO bot.tests: plain {MASK}")
