"""API tokens: kept as hashes, expiring, and revoked without a restart of the service that reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.http.tokens import TokenBook, issue, read_file, revoke
from engine.access import Role
from engine.chart import OrgChart
from engine.errors import ConfigurationError
from tests.scenario import GRID, STREET


def test_a_revoked_or_removed_token_is_refused_without_a_restart(tmp_path: Path, yongji: OrgChart) -> None:
    path = tmp_path / "api-tokens.json"
    li = issue(path, "worker-li", Role.GRID_WORKER, GRID, yongji)
    wang = issue(path, "supervisor-wang", Role.SUPERVISOR, STREET, yongji)
    book = TokenBook.from_source(yongji, json_text=None, path=path)
    assert book.authenticate(li) is not None
    revoke(path, "worker-li")
    assert book.authenticate(li) is None
    assert book.authenticate(wang) is not None
    path.write_text('{"tokens": []}')
    assert book.authenticate(wang) is None
    path.write_text("{half written")
    assert book.authenticate(wang) is None  # the tokens last read stand


def test_tokens_expire(tmp_path: Path, yongji: OrgChart) -> None:
    path = tmp_path / "api-tokens.json"
    token = issue(path, "admin", Role.ADMIN, None, yongji, expires_in=timedelta(days=1))
    (entry,) = read_file(path).tokens
    assert entry.expires_at is not None
    book = TokenBook.from_source(yongji, json_text=None, path=path)
    assert book.authenticate(token) is not None
    book.clock = lambda: datetime.now(UTC) + timedelta(days=2)
    assert book.authenticate(token) is None


def test_a_token_file_that_is_named_but_missing_is_a_broken_setting(tmp_path: Path, yongji: OrgChart) -> None:
    with pytest.raises(ConfigurationError, match="GRIEVANCE_API_TOKENS_FILE"):
        TokenBook.from_source(yongji, json_text=None, path=tmp_path / "nope.json")


def test_revoking_names_the_holder_or_a_hash_prefix(tmp_path: Path, yongji: OrgChart) -> None:
    path = tmp_path / "api-tokens.json"
    issue(path, "admin", Role.ADMIN, None, yongji)
    (entry,) = read_file(path).tokens
    with pytest.raises(ConfigurationError, match="no token"):
        revoke(path, "nobody")
    (revoked,) = revoke(path, entry.sha256[:10])
    assert revoked.revoked_at is not None


@pytest.mark.parametrize("name", ["worker li", "worker-li\nsupervisor", "", "-li", "王"])
def test_a_holder_is_named_as_the_engine_names_actors(tmp_path: Path, yongji: OrgChart, name: str) -> None:
    # The name becomes the actor of every command the token sends; a line break in it would forge log lines.
    path = tmp_path / "api-tokens.json"
    with pytest.raises(ConfigurationError, match=r"tokens\[0\]\.name"):
        issue(path, name, Role.ADMIN, None, yongji)
    assert not path.exists()
    path.write_text(f'{{"tokens": [{{"name": {name!r}, "role": "admin", "sha256": "{"0" * 64}"}}]}}'.replace("'", '"'))
    with pytest.raises(ConfigurationError, match=r"tokens\[0\]\.name"):
        TokenBook.from_source(yongji, json_text=None, path=path)
