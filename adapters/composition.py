"""The composition root: the one place that builds the engine's services, runners, workers and the HTTP app,
each from one `Settings`. Nothing else constructs them; nothing here connects until asked for."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import psycopg
import structlog
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InternalError,
    OperationalError,
    ProgrammingError,
    TrackingRecorder,
)

from adapters.audit.trail import AuditTrail
from adapters.audit.transparency import LoggedStore, Transparency
from adapters.intake import Intake
from adapters.logs import configure_logging
from adapters.rebuild_parts import ProcessParts
from adapters.settings import Settings
from adapters.storage.chart_file import load_chart
from adapters.storage.connection_probe import probe_postgres
from adapters.storage.disclosures import DisclosureLog
from adapters.storage.key_encryption import KeyEncryptionKeys
from adapters.storage.log_follower import keep_following
from adapters.storage.operator_log import OperatorLog
from adapters.storage.receipts import Receipts, read_secret
from adapters.storage.resident_keys import ResidentKeys
from adapters.storage.seen_signatures import KEPT_FOR, SeenSignatures
from adapters.storage.snapshots import SealedSnapshots
from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.clock import Clock
from engine.errors import ConfigurationError
from engine.roster_book import RosterBook
from engine.service_chain import ServiceChain
from engine.supervision import Supervision
from projections.dashboard.cache import CachedDashboard
from projections.dashboard.health import ViewsWatch
from projections.dashboard.queries import Dashboard
from projections.dashboard.runner import DashboardProjection
from projections.dashboard.tables import DashboardViews, PostgresDashboardViews, SQLiteDashboardViews
from projections.resident_loop.runner import ResidentLoopProjection
from projections.resident_loop.tables import ResidentLoopTables

# The HTTP app (Litestar), Kafka's client and the webhook's (httpx) are imported where they are built: a CLI verb
# that needs none of them starts without their import time (about 0.7 s of every `grievance` call).
if TYPE_CHECKING:
    from litestar import Litestar

    from adapters.http.services import Services
    from adapters.kafka.emitter import CommandEmitter
    from adapters.kafka.relay import EventRelay
    from adapters.kafka.signatures import KeyBook
    from adapters.kafka.worker import CommandWorker
    from adapters.notifications.notifier import Notifier
    from adapters.notifications.senders import Sender

log = structlog.get_logger("grievance.views")
store_log = structlog.get_logger("grievance.store")
T = TypeVar("T")
# How long a process opening the store waits while another keeps it locked (see `_creating_tables`), in seconds:
# enough for the log of some 50 million events to be built, and then it says why it cannot open the store.
MIGRATION_WAIT = 600.0


def build_chart(settings: Settings) -> OrgChart:
    """The organisation chart GRIEVANCE_CHART names (the shipped Yongji chart by default); a broken one is a
    `ConfigurationError` naming the setting, the file and the unit at fault."""
    try:
        return load_chart(settings.chart_path)
    except ConfigurationError as e:
        raise ConfigurationError(f"GRIEVANCE_CHART: {e}") from None


def build_chain(settings: Settings, *, clock: Clock | None = None) -> ServiceChain:
    """A ServiceChain on the configured store, chart and limits, sealing residents' personal data."""
    chart = build_chart(settings)
    limits = settings.time_limits()
    if "POSTGRES_DBNAME" in (env := settings.store_env()):
        probe_postgres(env)
    chain = _creating_tables(
        lambda: ServiceChain(
            env,
            chart=chart,
            limits=limits,
            clock=clock,
            bounds=settings.time_bounds,
            decided_cache_size=settings.decided_cache_size,
        )
    )
    chain.protect_personal_data(build_resident_keys(settings, chain))
    snapshots = chain.snapshots.recorder if chain.snapshots is not None else None
    if isinstance(snapshots, SealedSnapshots):
        # The server secret the receipts derive from (kept off the database host): a snapshot rewritten in the
        # database does not open, so the engine never decides on a state its events do not hold.
        path, create = settings.receipt_key_path()
        snapshots.seal_with(lambda: read_secret(path, create=create))
    # Every claim on every channel is checked against the roster from here on (engine/roster_rules.py).
    RosterBook(chain, rules=settings.roster_claims)
    return chain


def build_resident_keys(settings: Settings, chain: ServiceChain) -> ResidentKeys:
    """Residents' keys in the chain's own database, wrapped under the key-encryption keys
    GRIEVANCE_RESIDENT_KEK_FILE names (if it does): what seals personal data, and what `kek rotate` rewraps."""
    keks = KeyEncryptionKeys.from_file(settings.resident_kek_file) if settings.resident_kek_file else None
    datastore = chain.recorder.datastore  # type: ignore[attr-defined]
    return _creating_tables(lambda: ResidentKeys(datastore, keks=keks))


def roster_of(chain: ServiceChain) -> RosterBook:
    """The roster book `build_chain` gave the chain: the roster's commands and questions."""
    book = chain.claimants
    if not isinstance(book, RosterBook):
        raise ConfigurationError("the chain was not built with a roster (build it with build_chain)")
    return book


def _creating_tables(construct: Callable[[], T], attempts: int = 5) -> T:
    """Construct something that creates its tables if missing, retrying when another process that starts
    at the same moment creates them first (the second CREATE then fails on a unique catalogue entry), and
    waiting up to `MIGRATION_WAIT` seconds while another holds a SQLite store's write lock past its lock timeout."""
    attempt, locked_since = 0, None
    while True:
        try:
            try:
                return construct()
            except (sqlite3.Error, psycopg.Error) as e:
                # A driver error the library lets through while connecting (an unopenable file, say).
                raise OperationalError(str(e)) from e
        # "already exists" in one catalogue or another, or PostgreSQL's "tuple concurrently updated"
        except (IntegrityError, ProgrammingError, InternalError):
            attempt += 1
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
        except OperationalError as e:
            # Another process migrating the store: building the log of events stored before the log existed takes
            # one transaction of 9.6 s a million events on SQLite, longer than its lock timeout.
            now = time.monotonic()
            locked_since = now if locked_since is None else locked_since
            if "database is locked" not in str(e):
                raise
            if now - locked_since >= MIGRATION_WAIT:
                raise OperationalError(
                    f"{e}: another process has held the store's write lock for over {round(now - locked_since)} s "
                    "(migrating it, perhaps), as long as this one waits (MIGRATION_WAIT)"
                ) from e
            store_log.warning("the store is locked by another process, migrating it perhaps: waiting",
                              waited_s=round(now - locked_since), gives_up_after_s=MIGRATION_WAIT)  # fmt: skip


def build_views(settings: Settings) -> DashboardViews:
    """The dashboard's tables in the same database as the events (created if missing)."""
    env = settings.store_env()
    factory = InfrastructureFactory.construct(env)
    on_sqlite = env["PERSISTENCE_MODULE"].endswith("SQLiteFactory")
    views_class: Any = SQLiteDashboardViews if on_sqlite else PostgresDashboardViews
    return cast(DashboardViews, _creating_tables(lambda: factory.tracking_recorder(views_class)))


def build_projection(settings: Settings, chain: ServiceChain, *, page_size: int = 2000) -> DashboardProjection:
    """The runner that keeps the dashboard views up to date with the chain's events, along the chain's chart:
    views totalled along a chart that has since moved a unit are emptied, to be projected again."""
    views = build_views(settings)
    if views.total_along(chain.chart):
        log.warning("the chart moved a unit since the views were totalled; they are projected again from zero")
    return DashboardProjection(chain, views, page_size=page_size)


def rebuild_processes() -> int:
    """How many processes a rebuild projects in by default: one a core this process may run on, up to four (each
    holds a page and its tally, some 200 MiB at most)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def build_rebuild_parts(settings: Settings, processes: int, *, page_size: int) -> ProcessParts | None:
    """What projects a rebuild's other parts of the log, in `processes` processes in all (this one included):
    none for one."""
    if processes <= 1:
        return None
    return ProcessParts(settings, processes - 1, page_size=page_size)


def build_views_watch(projection: DashboardProjection) -> ViewsWatch:
    """What reports how the views stand; told later whether a runner of this process keeps them."""
    return ViewsWatch(projection.views, projection.chain.recorder)


def build_dashboard(settings: Settings, views: DashboardViews, chart: OrgChart) -> Dashboard:
    """The dashboard's questions over `views`; answers kept until the views move, unless settings say not."""
    return (CachedDashboard if settings.dashboard_cache else Dashboard)(views, chart)


def build_intake(chain: ServiceChain, receipts: Receipts | None = None) -> Intake:
    """Request intake over the chain: what every channel submits commands through, giving each report its
    receipt when `receipts` are given."""
    return Intake(chain, receipts)


def build_receipts(settings: Settings, chain: ServiceChain) -> Receipts:
    """Residents' receipts, their lookups beside the events, their secret in the key file settings name."""
    path, create = settings.receipt_key_path()
    secret = read_secret(path, create=create)
    return _creating_tables(lambda: Receipts(chain.recorder.datastore, secret))  # type: ignore[attr-defined]


def build_disclosures(chain: ServiceChain) -> DisclosureLog:
    """The record of every full reading of residents' personal data, beside the events."""
    return _creating_tables(lambda: DisclosureLog(chain.recorder.datastore))  # type: ignore[attr-defined]


def build_operator_log(chain: ServiceChain) -> OperatorLog:
    """The record of the commands operators applied at the store, beside the events."""
    return _creating_tables(lambda: OperatorLog(chain.recorder.datastore))  # type: ignore[attr-defined]


def build_audit_trail(chain: ServiceChain) -> AuditTrail:
    """Auditors' reading of the chain's histories and hash chains."""
    return AuditTrail(chain)


def build_transparency(chain: ServiceChain) -> Transparency:
    """The store's Merkle log: its heads, signed checkpoints, proofs and checks against a checkpoint."""
    return Transparency(cast(LoggedStore, chain.recorder))


def build_resident_loop(chain: ServiceChain) -> tuple[ResidentLoopTables, ResidentLoopProjection]:
    """The resident's loop's tables beside the events, and the projection that keeps them following the events."""
    tables = _creating_tables(lambda: ResidentLoopTables(chain.recorder.datastore))  # type: ignore[attr-defined]
    return tables, ResidentLoopProjection(chain, tables)


def build_sender(settings: Settings) -> Sender:
    """Where residents' messages go: GRIEVANCE_NOTIFY_WEBHOOK_URL's gateway, else GRIEVANCE_NOTIFY_FILE, else the
    console."""
    from adapters.notifications.senders import FileSender, WebhookSender, read_webhook_secret

    if settings.notify_webhook_url:
        return WebhookSender(settings.notify_webhook_url, read_webhook_secret(settings.notify_webhook_secret_file))
    return FileSender(settings.notify_file)


def build_notifier(settings: Settings, chain: ServiceChain, sender: Sender | None = None) -> Notifier:
    """The sender process's work: the outbox projected from the chain's events, delivered through `sender`."""
    from adapters.notifications.deliveries import Deliveries
    from adapters.notifications.notifier import Notifier

    tables, projection = build_resident_loop(chain)
    deliveries = _creating_tables(lambda: Deliveries(tables))
    return Notifier(chain, projection, deliveries, build_receipts(settings, chain), sender or build_sender(settings),
                    page_url=settings.resident_page_url)  # fmt: skip


def build_tracking(settings: Settings) -> TrackingRecorder:
    """The library's tracking recorder in the event store's database, for a process that records how far
    it has followed the log (the event relay)."""
    factory = InfrastructureFactory.construct(settings.store_env())
    return _creating_tables(factory.tracking_recorder)


def operator(settings: Settings) -> Principal:
    """The principal of a process with direct access to the store (the CLI): an operator, whose commands act
    as the actor they name."""
    return Principal(settings.actor, Role.OPERATOR)


def build_key_book(settings: Settings, chart: OrgChart) -> KeyBook:
    """The signing keys Kafka's commands are checked against: a signature older than the time bounds' lag, or
    ahead by more than their skew, is refused as expired."""
    from adapters.kafka.signatures import DEFAULT_KEYS_FILE, KeyBook

    bounds = settings.time_bounds
    keys = settings.kafka.keys_file or DEFAULT_KEYS_FILE
    try:
        return KeyBook(keys, chart, max_age=bounds.lag, skew=bounds.skew)
    except ConfigurationError as e:
        raise ConfigurationError(f"GRIEVANCE_KAFKA_KEYS_FILE: {e}") from None


def build_worker(settings: Settings, chain: ServiceChain, keys: KeyBook | None = None) -> CommandWorker:
    """A command worker in the workers' consumer group, applying each message as whoever signed it (checked
    against `keys`, by default the configured key book)."""
    from adapters.kafka.worker import CommandWorker

    seen = _creating_tables(lambda: SeenSignatures(chain.recorder.datastore))  # type: ignore[attr-defined]
    seen.forget_before(chain.clock() - KEPT_FOR)
    keys = keys or build_key_book(settings, chain.chart)
    intake = build_intake(chain, build_receipts(settings, chain))
    return CommandWorker.connect(intake, settings.kafka, keys=keys, seen=seen)


def build_relay(settings: Settings, chain: ServiceChain, *, page_size: int = 1000) -> EventRelay:
    """The relay of every stored event to the events topic, with its position beside the events."""
    from adapters.kafka.relay import EventRelay

    return EventRelay(
        chain,
        build_audit_trail(chain),
        build_tracking(settings),
        EventRelay.producer_for(settings.kafka),
        settings.kafka.events_topic,
        page_size=page_size,
    )


def build_emitter(settings: Settings, signing_key: Path | None = None) -> CommandEmitter:
    """An emitter of commands to the command topic, signing with `signing_key` (default: the settings')."""
    from adapters.kafka.emitter import CommandEmitter
    from adapters.kafka.signatures import CommandSigner

    key = signing_key or settings.kafka.signing_key
    if key is None:
        raise ConfigurationError("GRIEVANCE_KAFKA_SIGNING_KEY: commands on Kafka must be signed; give --key FILE "
                                 "or set it to a key file `grievance key add` wrote")  # fmt: skip
    return CommandEmitter.connect(settings.kafka, CommandSigner.from_file(key))


def build_http_services(settings: Settings, *, clock: Clock | None = None) -> tuple[Services, DashboardProjection]:
    """What the HTTP service works with, and the projection that keeps its dashboard views up to date."""
    from adapters.http.services import Services
    from adapters.http.tokens import TokenBook

    chain = build_chain(settings, clock=clock)
    projection = build_projection(settings, chain)
    receipts = build_receipts(settings, chain)
    loop_tables, loop = build_resident_loop(chain)
    services = Services(
        resident_loop=loop,
        resident_loop_tables=loop_tables,
        callback_days=settings.callback_days,
        chain=chain,
        intake=build_intake(chain, receipts),
        receipts=receipts,
        dashboard=build_dashboard(settings, projection.views, chain.chart),
        trail=build_audit_trail(chain),
        tokens=TokenBook.from_source(chain.chart, json_text=settings.tokens_json, path=settings.tokens_file),
        disclosures=build_disclosures(chain),
        watch=build_views_watch(projection),
        open311_public=settings.open311_public,
        display_zone=settings.display_zone,
        clock=clock or (lambda: datetime.now(UTC)),
        transparency=build_transparency(chain),
        checkpoints_dir=settings.checkpoints_dir,
        checkpoint_verifiers=settings.checkpoint_verifier_keys,
        roster=roster_of(chain),
    )
    return services, projection


def build_http_app(services: Services, settings: Settings) -> Litestar:
    """The HTTP app over `services`, answering store-reading requests on `settings.http_threads` threads."""
    import anyio.to_thread

    from adapters.http.app import create_app

    app = create_app(services)

    async def widen_thread_pool() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.http_threads
        # What exists at startup (the chart, the app, the libraries) lives as long as the process: keep
        # it out of the collector's full sweeps, which otherwise stall every request for tens of ms.
        gc.freeze()

    app.on_startup.append(widen_thread_pool)
    return app


def asgi_app() -> Litestar:
    """The ASGI factory for each server process uvicorn starts (`grievance serve --workers N`): settings from
    the environment the parent handed down; the store is opened here, in the server process."""
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level or "info")
    services, _ = build_http_services(settings)
    app = build_http_app(services, settings)

    async def close_store() -> None:
        services.chain.close()

    app.on_shutdown.append(close_store)
    return app


# What uvicorn is told to import in each server process.
ASGI_FACTORY = f"{__name__}:{asgi_app.__name__}"


def build_supervision(chain: ServiceChain, views: DashboardViews, *, batch: int = 500) -> Supervision:
    """Supervision, asking the dashboard views (uncached: it must see the latest page) what is overdue, `batch`
    grievances a sweep."""
    return Supervision(chain, Dashboard(views, chain.chart), batch=batch)


def keep_views(projection: DashboardProjection, stop: threading.Event, *, idle_wait: float = 0.2,
               retry_wait: float = 1.0) -> None:  # fmt: skip
    """Keep the dashboard views following the log until `stop` is set, riding out a store that fails a while."""
    keep_following(projection.chain.recorder, projection.catch_up, stop, idle_wait=idle_wait, retry_wait=retry_wait)
