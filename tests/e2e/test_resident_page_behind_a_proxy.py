"""The residents' page's rate limits count each resident, behind a reverse proxy too: the client's address is
taken from X-Forwarded-For only when the connection comes from a proxy named in GRIEVANCE_TRUSTED_PROXIES, so
residents behind the proxy do not share one bucket, and a client elsewhere cannot name itself a new address."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adapters.settings import Settings
from engine.errors import ConfigurationError
from tests.http_server import served

BURST = 30  # the page's burst (adapters/http/rate_limits.py)


def _answers(base: str, addresses: list[str]) -> list[int]:
    with httpx.Client(base_url=base, timeout=10) as client:
        return [client.get("/r/K7QX2M4PR3ZD", headers={"X-Forwarded-For": a}).status_code for a in addresses]


def test_behind_a_trusted_proxy_each_resident_has_their_own_limit(tmp_path: Path) -> None:
    proxied = {"GRIEVANCE_TRUSTED_PROXIES": "127.0.0.1"}
    with served(f"sqlite:///{tmp_path / 'g.db'}", {}, tmp_path / "serve.log", settings=proxied) as base:
        residents = [f"203.0.113.{i}" for i in range(BURST + 5)]
        assert 429 not in _answers(base, residents)
        one = _answers(base, ["198.51.100.7"] * (BURST + 1))
        assert one[:BURST] == [404] * BURST
        assert one[BURST] == 429


def test_without_a_trusted_proxy_a_client_cannot_name_itself_a_new_address(tmp_path: Path) -> None:
    with served(f"sqlite:///{tmp_path / 'g.db'}", {}, tmp_path / "serve.log") as base:
        answers = _answers(base, [f"203.0.113.{i}" for i in range(BURST + 1)])
        assert answers[BURST] == 429


@pytest.mark.parametrize("value", ["*", "10.0.0.300", "proxy.example"])
def test_a_proxy_that_is_not_an_address_or_network_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^GRIEVANCE_TRUSTED_PROXIES: "):
        Settings.from_env({"GRIEVANCE_TRUSTED_PROXIES": value})


def test_trusted_proxies_are_read_as_networks_and_handed_down() -> None:
    settings = Settings.from_env({"GRIEVANCE_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1 ::1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1/32", "::1/128")
    assert Settings.from_env(settings.as_env()) == settings
