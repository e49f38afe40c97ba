"""The one zone times are shown to people in (adapters/display_zone.py), and its setting."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from adapters.audit.export import as_html
from adapters.display_zone import DisplayZone
from adapters.settings import SHIPPED_CHART, Settings
from adapters.storage.chart_file import load_chart
from engine.errors import ConfigurationError
from schemas.events import EventEnvelope

NEW_YEAR = datetime(2020, 12, 31, 16, tzinfo=UTC)  # 2021-01-01 00:00 in China


def test_china_standard_time_by_default_and_labelled() -> None:
    zone = Settings.from_env({}).display_zone
    assert zone.name == "Asia/Shanghai"
    assert zone.minute(NEW_YEAR) == "2021-01-01 00:00 CST"
    assert zone.second("2020-12-31T16:00:05+00:00") == "2021-01-01 00:00:05 CST"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("UTC", "2020-12-31 16:00 UTC"),
        ("Europe/London", "2020-12-31 16:00 GMT"),
        ("Asia/Singapore", "2021-01-01 00:00 UTC+08:00"),  # a zone without an abbreviation: its offset
        ("America/Sao_Paulo", "2020-12-31 13:00 UTC-03:00"),
    ],
)
def test_another_zone_by_its_setting(name: str, shown: str) -> None:
    settings = Settings.from_env({"GRIEVANCE_DISPLAY_TIMEZONE": name})
    assert settings.display_zone.minute(NEW_YEAR) == shown
    assert Settings.from_env(settings.as_env()).display_zone == settings.display_zone


@pytest.mark.parametrize("name", ["Mars/Base", "CST+8", "../../etc/passwd", "Asia/Shang hai", "/tmp"])
def test_a_zone_that_is_none_is_refused_by_the_variables_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^GRIEVANCE_DISPLAY_TIMEZONE: .* is not an IANA time zone"):
        Settings.from_env({"GRIEVANCE_DISPLAY_TIMEZONE": name})


def test_the_page_is_given_the_labels_of_the_zones_offsets() -> None:
    assert DisplayZone().labels(2021) == {480: "CST"}
    assert DisplayZone("Europe/London").labels(2021) == {0: "GMT", 60: "BST"}


def test_an_events_times_in_its_details_are_shown_in_the_zone_and_its_words_are_not() -> None:
    zone = DisplayZone()
    assert zone.detail("claim_due", "2020-12-31T16:00:00Z") == "2021-01-01 00:00 CST"
    assert zone.detail("comment", "2020-12-31T16:00:00Z") == "2020-12-31T16:00:00Z"
    assert zone.detail("claim_due", "soon") == "soon"


def test_the_html_report_shows_its_times_in_the_zone_labelled() -> None:
    envelope = EventEnvelope(
        event_id=uuid4(), grievance_id=uuid4(), version=1, type="Reported", schema_version=1,
        occurred_at=NEW_YEAR, recorded_at=NEW_YEAR, actor="worker-li", command_id="c-1",
        payload={"claim_due": "2021-01-01T16:00:00Z"},
    )  # fmt: skip
    html = as_html(envelope.grievance_id, [envelope], None, load_chart(SHIPPED_CHART), NEW_YEAR, DisplayZone())
    assert html.count("2021-01-01 00:00:00 CST") == 3  # occurred, recorded, generated
    assert "2021-01-02 00:00 CST" in html
    assert "+0000" not in html


def test_a_recorded_time_that_is_none_is_shown_as_it_is_rather_than_stop_a_listing() -> None:
    assert DisplayZone().minute("last Tuesday") == "last Tuesday"
