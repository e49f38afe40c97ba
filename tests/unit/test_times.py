"""The one reader of times from outside (engine/times.py), the commands' decoders that use it, and the rates'
window as of a time (the same rule on every channel)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import wire
from engine.commands import batch_decoder, command_decoder
from engine.errors import InvalidValue
from engine.times import parse_time
from projections.dashboard.queries import twelve_months_to

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T10:00+08:00", datetime(2030, 1, 1, 10, tzinfo=CST)),
        ("2030-01-01T10:00:00+08:00", datetime(2030, 1, 1, 10, tzinfo=CST)),
        ("2030-01-01T02:00Z", datetime(2030, 1, 1, 2, tzinfo=UTC)),
        ("2030-01-01t02:00:30z", datetime(2030, 1, 1, 2, 0, 30, tzinfo=UTC)),
        ("2030-01-01 02:00:30.25-05:30", datetime(2030, 1, 1, 7, 30, 30, 250000, tzinfo=UTC)),
        ("2030-01-01T02:00:30.1234567891Z", datetime(2030, 1, 1, 2, 0, 30, 123456, tzinfo=UTC)),
    ],
)
def test_rfc_3339_with_or_without_seconds(text: str, expected: datetime) -> None:
    assert parse_time("at", text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2030-01-01T10:00", "no timezone offset"),
        ("2030-01-01T10:00:00", "no timezone offset"),
        ("2030-01-01", "not a time in RFC 3339"),
        ("20300101T1000+0800", "not a time in RFC 3339"),
        ("2030-W01-1T10:00Z", "not a time in RFC 3339"),
        ("yesterday", "not a time in RFC 3339"),
        ("2030-02-30T10:00Z", "not a time that exists"),
        ("2030-01-01T24:00Z", "not a time that exists"),
        ("2030-01-01T10:00+24:00", "less than 24 hours"),
        ("1999-12-31T23:59Z", "outside the years"),
        ("9999-12-31T23:59Z", "outside the years"),
        ("٢٠٣٠-01-01T10:00Z", "not a time in RFC 3339"),
    ],
)
def test_refusals_name_the_field_and_the_reason(text: str, words: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_time("start_date", text)
    assert refused.value.field == "start_date"
    assert words in refused.value.reason
    assert str(refused.value).startswith("start_date: ")


def test_a_commands_own_time_is_left_to_the_engines_bounds() -> None:
    assert parse_time("occurred_at", "1999-12-31T23:59Z", bounded=False).year == 1999


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(8999, 12, 30), timezones=offsets).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)


def _offset(d: datetime) -> str:
    minutes = int(d.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    return "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@given(moments, st.sampled_from(["minutes", "seconds", "milliseconds"]), st.sampled_from(["T", "t", " "]))
def test_every_written_form_of_a_time_reads_back_as_that_instant(moment: datetime, precision: str, sep: str) -> None:
    if precision == "minutes":
        moment = moment.replace(second=0, microsecond=0)
    elif precision == "seconds":
        moment = moment.replace(microsecond=0)
    written = moment.replace(tzinfo=None).isoformat(sep=sep, timespec=precision) + _offset(moment)
    read = parse_time("at", written)
    assert read == moment
    assert read.utcoffset() == moment.utcoffset()


@given(st.text(max_size=40))
def test_whatever_is_given_is_a_time_or_a_refusal_naming_the_field(text: str) -> None:
    try:
        read = parse_time("at", text)
    except InvalidValue as e:
        field = e.field
    else:
        field = "at" if read.tzinfo is not None else "naive"
    assert field == "at"


def _claim(**changes: object) -> dict[str, object]:
    return {"kind": "claim", "command_id": "c-1", "grievance_id": str(uuid4()), "actor": "wang",
            "occurred_at": "2030-01-01T10:00:00+08:00", "unit_id": "b-1", "mode": "member", "claimant": "wang",
            **changes}  # fmt: skip


def test_commands_take_their_times_in_the_same_forms() -> None:
    for text in ("2030-01-01T10:00+08:00", "2030-01-01T02:00Z", "2030-01-01 10:00:00.000+08:00"):
        decoded = command_decoder.decode(json.dumps(_claim(occurred_at=text)).encode())
        assert decoded.occurred_at == datetime(2030, 1, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("batch", [False, True])
def test_a_commands_time_without_an_offset_is_malformed_naming_the_field(batch: bool) -> None:
    body = _claim(occurred_at="2030-01-01T10:00")
    data = json.dumps([_claim(), body] if batch else body).encode()
    with pytest.raises(msgspec.ValidationError) as refused:
        (batch_decoder if batch else command_decoder).decode(data)
    rejected = wire.malformed(refused.value)
    assert (rejected.code, rejected.field) == ("malformed", "occurred_at")
    assert "no timezone offset" in rejected.reason
    assert ("$[1].occurred_at" in str(refused.value)) is batch


@pytest.mark.parametrize(
    ("as_of", "window"),
    [
        ("2021-01-01T00:00+08:00", ("2020-01", "2020-12")),  # the demo's year, whole
        ("2020-12-31T16:00Z", ("2020-01", "2020-12")),  # the same instant
        ("2021-01-01T00:00:00.001+08:00", ("2020-02", "2021-01")),
        ("2021-01-15T12:00+08:00", ("2020-02", "2021-01")),
        ("2020-12-31T23:59+08:00", ("2020-01", "2020-12")),
        ("2021-03-01T00:00+08:00", ("2020-03", "2021-02")),
    ],
)
def test_the_rates_window_is_the_twelve_months_before_the_as_of(as_of: str, window: tuple[str, str]) -> None:
    assert twelve_months_to(parse_time("at", as_of)) == window


@given(moments)
def test_the_window_is_always_twelve_months_ending_before_the_as_of(moment: datetime) -> None:
    first, last = twelve_months_to(moment)
    (fy, fm), (ly, lm) = (map(int, first.split("-")), map(int, last.split("-")))
    assert (ly * 12 + lm) - (fy * 12 + fm) == 11
    assert datetime(fy, fm, 1, tzinfo=CST) < moment
