"""What every `grievance` command shares: opening the store, one-line failures, output."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import click
import msgspec
from eventsourcing.persistence import PersistenceError
from rich.console import Console

from adapters.chart_file import ChartFileError
from adapters.composition import build_chain, build_projection
from adapters.logs import configure_logging
from adapters.projection_runner import DashboardProjection
from adapters.settings import Settings, SettingsError
from adapters.view_store import ChartChanged
from engine.service_chain import ServiceChain

F = TypeVar("F", bound=Callable[..., Any])
EXIT_REJECTED = 1
EXIT_INFRASTRUCTURE = 3
# Off a terminal (pipes, CI logs) rich would assume 80 columns and squeeze the dashboard tables.
# No markup: what is printed holds residents' and workers' own words, where "[urgent]" must stay on the page.
out = Console(markup=False, highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
encoder = msgspec.json.Encoder()


def fail(message: str, code: int = EXIT_REJECTED) -> NoReturn:
    """One clear line on stderr and a non-zero exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@dataclass
class Session:
    """What a command works with: its settings, the chain, and (when asked for) the dashboard views."""

    settings: Settings
    chain: ServiceChain
    projection: DashboardProjection | None = None

    @property
    def runner(self) -> DashboardProjection:
        """The dashboard projection; only for sessions opened with views=True."""
        assert self.projection is not None, "opened without views"
        return self.projection


@contextmanager
def opened(*, views: bool = False, log_level: str = "warning") -> Iterator[Session]:
    """The store for this process's settings; any infrastructure failure is one line and exit 3."""
    try:
        settings = Settings.from_env()
        # A person at a terminal reads the result line; the per-command log is for processes.
        configure_logging(settings.log_format, settings.log_level or log_level)
        chain = build_chain(settings)
        session = Session(settings, chain, build_projection(settings, chain) if views else None)
    except (SettingsError, ChartFileError) as e:
        fail(str(e), EXIT_INFRASTRUCTURE)
    except (PersistenceError, OSError) as e:
        fail(f"cannot open the event store: {e}", EXIT_INFRASTRUCTURE)
    try:
        yield session
    except ChartChanged as e:
        fail(str(e), EXIT_INFRASTRUCTURE)
    except PersistenceError as e:
        fail(f"event store failed: {e}", EXIT_INFRASTRUCTURE)
    finally:
        chain.close()


@contextmanager
def opened_chain() -> Iterator[ServiceChain]:
    """Just the ServiceChain."""
    with opened() as session:
        yield session.chain


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def parse_time(field: str, value: str) -> datetime:
    """An RFC 3339 time with an offset, or a one-line failure naming the option."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{field}: {value!r} is not an RFC 3339 time")
    if moment.tzinfo is None:
        fail(f"{field}: must carry a timezone offset (a naive time is ambiguous)")
    return moment


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C, so that a long-running command finishes its batch and stops."""
    stop = threading.Event()

    def handler(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def parse_uuid(value: str, field: str = "grievance_id") -> UUID:
    """A UUID, or a one-line failure naming the field."""
    try:
        return UUID(value)
    except ValueError:
        fail(f"{field}: {value!r} is not a UUID")
