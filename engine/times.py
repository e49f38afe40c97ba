"""Reading a time that comes from outside (a command's `occurred_at`, an `--at` option, an `at` query
parameter, an Open311 date, a setting): one parser for every channel, so that what one accepts all accept.

The form is RFC 3339's date-time, with or without seconds (people type `2021-01-01T00:00+08:00`, as the
dashboard page and the README do), `T`, `t` or a space between date and time, and an offset that is
required: `Z` or `±hh:mm`. A time without one is refused, since nothing says which zone it was read in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from engine.errors import InvalidValue

# The service chains began in the 2010s; a year such as 0001 or 9999 is a reset clock or an attack, which no
# calendar arithmetic downstream (a month in China time, an epoch in seconds) should meet.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
FORM = "RFC 3339 with an offset, e.g. 2021-01-01T00:00+08:00 or 2021-01-01T00:00:00Z"
# RFC 3339's shape only: Python's own ISO 8601 reader, which decodes it below, also takes week dates and the
# basic format (20210101T0000), which no other channel here accepts.
_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def parse_time(field: str, value: str, *, bounded: bool = True) -> datetime:
    """The time `value` names, or `InvalidValue` on `field` saying why not; `bounded`, only from 2000 to 9000
    (a command's own time has the engine's tighter bounds instead, `engine.clock.TimeBounds`)."""
    shape = _SHAPE.fullmatch(value)
    if shape is None:
        raise InvalidValue(field, f"{_shown(value)} is not a time in {FORM}")
    if shape["offset"] is None:
        raise InvalidValue(field, f"{_shown(value)} carries no timezone offset (add Z or one like +08:00): a time "
                           "without one is ambiguous")  # fmt: skip
    text = value.upper().replace(" ", "T")
    if "." in text:  # Python keeps microseconds: RFC 3339 allows any number of digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail, re.ASCII)
        assert digits is not None
        text = f"{head}.{digits[0][:6].ljust(6, '0')}{tail[digits.end() :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidValue(field, f"{_shown(value)} is not a time that exists ({_reason(e)})") from None
    if bounded and not EARLIEST <= moment < LATEST:
        raise InvalidValue(field, f"{_shown(value)} is outside the years this engine records "
                           f"({EARLIEST:%Y} to {LATEST.year - 1})")  # fmt: skip
    return moment


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "…")


def _reason(error: ValueError) -> str:
    message = str(error)
    if "offset must be" in message:
        return "an offset must be less than 24 hours"
    return message
