"""`grievance serve` (the HTTP service and the dashboard page) and `grievance token` (API tokens)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import msgspec
import structlog
from eventsourcing.persistence import PersistenceError

from adapters import composition
from adapters.cli.session import (
    EXIT_INFRASTRUCTURE,
    fail,
    holder_on_roster,
    infrastructure_failures_exit,
    json_option,
    opened,
    out,
    settings_or_exit,
)
from adapters.http.tokens import TOKEN_ROLES, TokenBook, TokenFile, check_holder, issue, read_file, revoke
from adapters.logs import configure_logging
from adapters.settings import Settings
from engine.access import Role
from engine.chart import OrgChart
from engine.errors import ConfigurationError
from projections.dashboard.runner import DashboardProjection
from projections.dashboard.tables import ChartChanged

log = structlog.get_logger("grievance.views")

ROLES = [r.value for r in TOKEN_ROLES]
# How long serve waits for requests in flight once told to stop (SIGTERM, Ctrl-C) before it closes them.
SHUTDOWN_S = 5


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(serve)
    main.add_command(token)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8311, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes: one per core lets answers use every core.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 400),
    help="Threads a process answers store-reading requests with (default: $GRIEVANCE_HTTP_THREADS, else 40).",
)
@click.option("--project/--no-project", default=True, show_default=True,
              help="Keep the views up to date in this process too (off when `projections run` does).")  # fmt: skip
def serve(host: str, port: int, workers: int, threads: int | None, project: bool) -> None:
    """Serve the API (/api/v1, OpenAPI at /schema), the dashboard page (/) and Open311 (/open311/v2).

    API tokens come from GRIEVANCE_API_TOKENS_FILE (see `grievance token add`) or GRIEVANCE_API_TOKENS.
    """
    settings = settings_or_exit()
    if threads is not None:
        settings = dataclasses.replace(settings, http_threads=threads)
    with infrastructure_failures_exit():
        configure_logging(settings.log_format, settings.log_level or "info")
        try:
            svc, projection = composition.build_http_services(settings)
        except (PersistenceError, OSError) as e:
            fail(f"cannot open the event store: {e}", EXIT_INFRASTRUCTURE)
    stop = threading.Event()
    follower = None
    if project:
        follower = threading.Thread(target=_keep_views, args=(projection, stop), name="projection", daemon=True)
        follower.start()
        svc.watch.runner_alive = follower.is_alive
    out.print(f"Serving on http://{host}:{port}/ with {workers} process{'es' if workers > 1 else ''} "
              f"({len(svc.tokens.by_hash)} API tokens; views "
              f"{'kept up to date here' if project else 'kept by another process'}).")  # fmt: skip
    import uvicorn  # here, not at import: only `serve` needs it

    try:
        if workers == 1:
            app = composition.build_http_app(svc, settings)
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                        timeout_graceful_shutdown=SHUTDOWN_S, **_proxy_headers(settings))  # fmt: skip
        else:
            # Each server process builds its own Services from the settings handed down; this one keeps the views.
            settings.hand_down()
            uvicorn.run(composition.ASGI_FACTORY, factory=True, workers=workers, host=host, port=port,
                        log_level="warning", access_log=False, timeout_graceful_shutdown=SHUTDOWN_S,
                        **_proxy_headers(settings))  # fmt: skip
    finally:
        stop.set()
        if follower:
            follower.join(timeout=5)
        svc.chain.close()


def _proxy_headers(settings: Settings) -> dict[str, Any]:
    """uvicorn reads the client's address from X-Forwarded-For only when it comes from a trusted proxy; its own
    default trusts 127.0.0.1 (and FORWARDED_ALLOW_IPS), which here is never assumed: none unless named."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def _keep_views(projection: DashboardProjection, stop: threading.Event) -> None:
    """Follow the log for the views until stopped, or until a process with another chart has taken them."""
    try:
        composition.keep_views(projection, stop)
    except ChartChanged as refused:
        log.error("views no longer kept by this server", reason=str(refused))


@click.group()
def token() -> None:
    """API tokens: issue, list and revoke them; the service keeps only their SHA-256, and rereads the file when it
    changes, so a revoked token is refused without a restart."""


token_file_option = click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path),
    help="The token file (default: $GRIEVANCE_API_TOKENS_FILE, else api-tokens.json).",
)  # fmt: skip


def _token_file(path: Path | None) -> Path:
    return path or settings_or_exit().tokens_file or Path("api-tokens.json")


def _tokens_as_stored(path: Path, chart: OrgChart | None = None) -> TokenFile:
    """The token file at `path`; a broken one (unreadable, or an entry the service would refuse) is one line
    naming the file and exit 3, like any broken setting, before anything is written to it."""
    try:
        book = read_file(path)
        if chart is not None:
            TokenBook(book.tokens, chart)
        for i, entry in enumerate(book.tokens):
            check_holder(i, entry)
    except ConfigurationError as e:
        where = "" if str(e).startswith(str(path)) else f"{path}: "
        fail(f"{where}{e}", EXIT_INFRASTRUCTURE, error_code="configuration")
    return book


@token.command("add")
@click.option("--name", required=True, help="Who holds it: the actor of every command sent with it (a grid "
              "worker's: a person on the roster, where the store keeps one).")  # fmt: skip
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit", "unit_id", help="Jurisdiction: the unit whose subtree a grid worker or supervisor covers.")
@click.option("--expires-in-days", type=click.IntRange(min=0, max=36_600), default=90, show_default=True,
              help="Days it is valid for; 0: until revoked.")  # fmt: skip
@click.option("--reveals-personal-data", is_flag=True,
              help="May ask to see residents' names and phones whole (each time with a reason, recorded).")  # fmt: skip
@token_file_option
def token_add(
    name: str, role: str, unit_id: str | None, expires_in_days: int, reveals_personal_data: bool, path: Path | None
) -> None:
    """Issue a token, print it once, and append its hash to the token file. Where the store keeps a roster, a
    grid worker's token is issued only to a person on it at or below --unit."""
    path = _token_file(path)
    with opened() as session:
        chart = session.chain.chart
        _tokens_as_stored(path, chart)
        holder_on_roster(session, name, Role(role), unit_id)
    try:
        expires = timedelta(days=expires_in_days) if expires_in_days else None
        secret = issue(path, name, Role(role), unit_id, chart, expires_in=expires,
                       reveals_personal_data=reveals_personal_data)  # fmt: skip
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    click.echo(secret)
    until = f", valid {expires_in_days} days" if expires_in_days else ", valid until revoked"
    click.echo(f"(for {name}, {role}{' of ' + unit_id if unit_id else ''}{until}; only its hash is in {path})",
               err=True)  # fmt: skip


@token.command("list")
@token_file_option
@json_option
def token_list(path: Path | None, as_json: bool) -> None:
    """The tokens of the file: holder, role, unit, the start of the hash, expiry and revocation."""
    entries = _tokens_as_stored(_token_file(path)).tokens
    if as_json:
        click.echo(msgspec.json.encode([msgspec.structs.replace(e, sha256=e.sha256[:12]) for e in entries]))
        return
    zone = settings_or_exit().display_zone
    for entry in entries:
        state = (f"revoked {zone.minute(entry.revoked_at)}" if entry.revoked_at
                 else f"expires {zone.minute(entry.expires_at) if entry.expires_at else 'never'}")  # fmt: skip
        where = f" of {entry.unit_id}" if entry.unit_id else ""
        out.print(f"{entry.sha256[:12]}…  {entry.name}  {entry.role}{where}  {state}")


@token.command("revoke")
@click.argument("holder")
@token_file_option
def token_revoke(holder: str, path: Path | None) -> None:
    """Revoke the tokens of HOLDER (a name), or the one whose hash starts with HOLDER (8 hex digits or more)."""
    path = _token_file(path)
    _tokens_as_stored(path)
    try:
        revoked = revoke(path, holder)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    zone = settings_or_exit().display_zone
    for entry in revoked:
        when = zone.minute(entry.revoked_at) if entry.revoked_at else "now"
        out.print(f"token {entry.sha256[:12]}… of {entry.name} revoked at {when}")
