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


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://sms.example.org/send", "in clear"),
        ("http://10.0.0.5/send", "in clear"),
        ("ftp://sms.example.org/", "not an https:// URL"),
        ("https:///send", "not an https:// URL"),
        ("https://user:pw@sms.example.org/send", "credentials"),
        ("https://[::1/send", "not a URL"),
        ("http://127.0.0.1:80:81/", "not a URL"),
        ("https://sms.example.org:99999/", "not a URL"),
        ("http://127.0.0.1:8080\\evil.example/", "not a URL"),
    ],
)
def test_a_webhook_that_would_carry_phones_in_clear_or_credentials_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^GRIEVANCE_NOTIFY_WEBHOOK_URL: .*{reason}"):
        Settings.from_env({"GRIEVANCE_NOTIFY_WEBHOOK_URL": url})


@pytest.mark.parametrize("url", ["https://sms.example.org/send", "http://127.0.0.1:8080/sms", "http://[::1]/s",
                                 "http://localhost/sms"])  # fmt: skip
def test_a_webhook_over_tls_or_to_this_machine_is_taken_and_handed_down(url: str) -> None:
    settings = Settings.from_env({"GRIEVANCE_NOTIFY_WEBHOOK_URL": url,
                                  "GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE": "/etc/grievance/webhook.secret"})  # fmt: skip
    assert settings.notify_webhook_url == url
    assert Settings.from_env(settings.as_env()) == settings
