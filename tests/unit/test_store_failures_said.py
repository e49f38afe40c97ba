"""How the CLI says a store failed: one line and exit 3, with what to do where there is something to do."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import OperationalError

from adapters.cli.session import EXIT_INFRASTRUCTURE, infrastructure_failures_exit


def _said(error: Exception, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited, infrastructure_failures_exit():
        raise error
    assert exited.value.code == EXIT_INFRASTRUCTURE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_store_another_process_keeps_locked_says_so_and_that_nothing_was_stored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _said(OperationalError("database is locked"), capsys) == (
        "error: event store failed: database is locked: another process holds the store's write lock; the "
        "transaction that waited for it stored nothing: try again [infrastructure]"
    )


def test_other_store_failures_are_said_as_the_store_said_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        _said(OperationalError("disk I/O error"), capsys)
        == "error: event store failed: disk I/O error [infrastructure]"
    )
