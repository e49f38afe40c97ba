"""The one settings reader: each variable read, refused with its own name when malformed, and handed down whole."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.audit.checkpoint import Signer
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


def test_checkpoint_verifier_keys_are_read_and_a_bad_one_is_named() -> None:
    keys = [Signer(f"log{i}.test/log", Ed25519PrivateKey.generate()).verifier for i in range(2)]
    read = Settings.from_env({"GRIEVANCE_CHECKPOINT_VERIFIER_KEYS": f" {keys[0].encoded()}, {keys[1].encoded()} "})
    assert read.checkpoint_verifier_keys == tuple(keys)
    assert Settings.from_env(read.as_env()).checkpoint_verifier_keys == tuple(keys)
    with pytest.raises(ConfigurationError, match=r"^GRIEVANCE_CHECKPOINT_VERIFIER_KEYS: not <name>"):
        Settings.from_env({"GRIEVANCE_CHECKPOINT_VERIFIER_KEYS": "nonsense"})
