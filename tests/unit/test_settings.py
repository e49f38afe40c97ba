"""The one settings reader: each variable read, refused with its own name when malformed, and handed down whole."""

from __future__ import annotations

import pytest

from adapters.settings import Settings
from engine.errors import ConfigurationError


@pytest.mark.parametrize("raw", ["-1", "many", "1e6", "99999999999"])
def test_a_malformed_cache_size_is_refused_by_its_name(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="GRIEVANCE_DECIDED_CACHE"):
        Settings.from_env({"GRIEVANCE_DECIDED_CACHE": raw})


def test_the_cache_size_is_read_and_handed_down() -> None:
    assert Settings.from_env({}).decided_cache_size == 10_000
    settings = Settings.from_env({"GRIEVANCE_DECIDED_CACHE": "0"})
    assert settings.decided_cache_size == 0
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize("name", ["GRIEVANCE_DECIDED_CACHE", "GRIEVANCE_HTTP_THREADS", "GRIEVANCE_MAX_LAG_HOURS"])
@pytest.mark.parametrize("raw", ["²", "١٠", "５"])
def test_digits_of_other_scripts_are_refused_by_the_variables_name(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: raw})
