"""Settings: the one reader of the environment (GRIEVANCE_* variables), and their translation into the event
store's configuration. Nothing else in the engine reads or writes the environment."""

from __future__ import annotations

import getpass
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from adapters.audit.checkpoint import CheckpointError, Verifier
from adapters.display_zone import DEFAULT_ZONE, DisplayZone
from adapters.kafka.settings import KafkaSettings
from engine.clock import TimeBounds
from engine.errors import ConfigurationError
from engine.limits import TimeLimits
from engine.roster_rules import ClaimRules
from projections.stars import StarThresholds

DEFAULT_DATABASE_URL = "sqlite:///grievances.db"
SHIPPED_CHART = Path(__file__).parent / "demo" / "charts" / "yongji.json"
# A PostgreSQL schema as the stores write it into their statements: a plain identifier, nothing to quote.
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DURABILITY = {"full": ("FULL", "on"), "normal": ("NORMAL", "off"), "off": ("OFF", "off")}
DEFAULT_HTTP_THREADS = 40
DEFAULT_DECIDED_CACHE = 10_000


@dataclass(frozen=True)
class Settings:
    """Everything a process of the engine is configured by.

    `durability`: `full` (default) makes every acknowledged command survive a power cut: SQLite
    fsyncs its log at each commit and PostgreSQL waits for its WAL flush. `normal` and `off` trade
    the last moments before a crash for speed; see README.md.
    """

    database_url: str = DEFAULT_DATABASE_URL
    chart_path: Path = SHIPPED_CHART
    durability: str = "full"
    limits_hours: Mapping[str, tuple[float, float]] | None = None
    log_format: str = "auto"
    log_level: str | None = None
    # Remember dashboard answers until the views move (see projections/dashboard/cache.py).
    dashboard_cache: bool = True
    # The CLI's default actor.
    actor: str = "operator"
    # The HTTP service's tokens: the JSON itself, or a file of it (adapters/http/tokens.py).
    tokens_json: str | None = None
    tokens_file: Path | None = None
    # Threads an HTTP server process answers store-reading requests with.
    http_threads: int = DEFAULT_HTTP_THREADS
    # Grievances a process holds as last stored, so commands read only what came since (engine/decided_grievances.py).
    decided_cache_size: int = DEFAULT_DECIDED_CACHE
    # How far a command's own time may stray from the server's clock (engine/clock.py says why).
    time_bounds: TimeBounds = field(default_factory=lambda: TimeBounds())
    kafka: KafkaSettings = field(default_factory=lambda: KafkaSettings())
    # The key-encryption keys residents' keys are wrapped under (adapters/storage/key_encryption.py).
    resident_kek_file: Path | None = None
    # Open311's reads open to anyone, as the standard allows (they never show residents' text either way).
    open311_public: bool = False
    # The zone every time shown to a person is in (adapters/display_zone.py).
    display_zone: DisplayZone = field(default_factory=lambda: DisplayZone())
    # The receipts' secret (adapters/storage/receipts.py); default: beside a SQLite store, else receipt.key.
    receipt_key_file: Path | None = None
    # Days after a closure with no rating before the office calls the resident back (回访).
    callback_days: int = 7
    # Where residents' messages go: a webhook (an SMS gateway's URL), else a file of JSON lines, else the console.
    notify_webhook_url: str = ""
    # The secret the webhook's messages are signed with, shared with the gateway (adapters/notifications/senders.py).
    notify_webhook_secret_file: Path | None = None
    notify_file: Path | None = None
    # The reverse proxies whose X-Forwarded-For / -Proto name the client (addresses or networks); none by default,
    # so a client cannot name itself, but behind a proxy every resident would share the proxy's rate limits.
    trusted_proxies: tuple[str, ...] = ()
    # Where residents' page is, for the links messages carry (https://host); default: the page's path alone.
    resident_page_url: str = ""
    # Where the notary publishes checkpoints and the HTTP service reads the latest (adapters/audit/notary.py).
    checkpoints_dir: Path | None = None
    # The log's verifier keys, which a published checkpoint's signature is checked with before a report says whose.
    checkpoint_verifier_keys: tuple[Verifier, ...] = ()
    # Whether a unit that keeps no roster yet takes claims (`kept`: yes, until it opens one) or not (`required`);
    # engine/roster_rules.py.
    roster_claims: ClaimRules = ClaimRules.KEPT
    # The year's points each star needs (projections/stars.py).
    star_thresholds: StarThresholds = field(default_factory=lambda: StarThresholds())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read GRIEVANCE_* variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        durability = env.get("GRIEVANCE_DURABILITY", "full").strip().lower()
        if durability not in DURABILITY:
            raise ConfigurationError(f"GRIEVANCE_DURABILITY: {durability!r} is not one of full, normal, off")
        log_format = env.get("GRIEVANCE_LOG_FORMAT", "auto").strip().lower()
        if log_format not in ("auto", "json", "console"):
            raise ConfigurationError(f"GRIEVANCE_LOG_FORMAT: {log_format!r} is not one of auto, json, console")
        log_level = env.get("GRIEVANCE_LOG_LEVEL", "").strip().lower() or None
        if log_level not in (None, "debug", "info", "warning", "error"):
            raise ConfigurationError(f"GRIEVANCE_LOG_LEVEL: {log_level!r} is not one of debug, info, warning, error")
        limits = None
        if raw := env.get("GRIEVANCE_LIMITS_HOURS"):
            try:
                parsed = json.loads(raw)
                limits = {str(k): (float(v[0]), float(v[1])) for k, v in parsed.items()}
            except (ValueError, TypeError, IndexError, AttributeError):
                raise ConfigurationError(
                    'GRIEVANCE_LIMITS_HOURS: expected JSON like {"grid_branch": [24, 168]} '
                    "(hours to claim, hours to settle)"
                ) from None
        cache = env.get("GRIEVANCE_DASHBOARD_CACHE", "on").strip().lower()
        if cache not in ("on", "off"):
            raise ConfigurationError(f"GRIEVANCE_DASHBOARD_CACHE: {cache!r} is not on or off")
        threads = env.get("GRIEVANCE_HTTP_THREADS", str(DEFAULT_HTTP_THREADS)).strip()
        if not (threads.isascii() and threads.isdigit()) or not 1 <= int(threads) <= 400:
            raise ConfigurationError(f"GRIEVANCE_HTTP_THREADS: {threads!r} is not a whole number from 1 to 400")
        tokens_file = env.get("GRIEVANCE_API_TOKENS_FILE", "").strip()
        public = env.get("GRIEVANCE_OPEN311_PUBLIC", "off").strip().lower()
        if public not in ("on", "off"):
            raise ConfigurationError(f"GRIEVANCE_OPEN311_PUBLIC: {public!r} is not on or off")
        roster_claims = env.get("GRIEVANCE_ROSTER_CLAIMS", "kept").strip().lower()
        if roster_claims not in tuple(ClaimRules):
            raise ConfigurationError(f"GRIEVANCE_ROSTER_CLAIMS: {roster_claims!r} is not one of kept, required")
        stars_text = env.get("GRIEVANCE_STAR_THRESHOLDS", "").strip()
        try:
            stars = StarThresholds(tuple(int(p) for p in stars_text.split(","))) if stars_text else StarThresholds()
        except ValueError:
            raise ConfigurationError(f"GRIEVANCE_STAR_THRESHOLDS: {stars_text!r} is not rising whole numbers of "
                                     "points above 0, separated by commas (10,30,60,100,150)") from None  # fmt: skip
        bounds = TimeBounds(
            skew=timedelta(minutes=_number(env, "GRIEVANCE_CLOCK_SKEW_MINUTES", 5, 0, 60)),
            lag=timedelta(hours=_number(env, "GRIEVANCE_MAX_LAG_HOURS", 72, 1, 24 * 30)),
        )
        settings = cls(
            actor=env.get("GRIEVANCE_ACTOR", "").strip() or _login_name(),
            tokens_json=env.get("GRIEVANCE_API_TOKENS") or None,
            tokens_file=Path(tokens_file) if tokens_file else None,
            http_threads=int(threads),
            decided_cache_size=_number(env, "GRIEVANCE_DECIDED_CACHE", DEFAULT_DECIDED_CACHE, 0, 10_000_000),
            time_bounds=bounds,
            open311_public=public == "on",
            roster_claims=ClaimRules(roster_claims),
            star_thresholds=stars,
            display_zone=DisplayZone(env.get("GRIEVANCE_DISPLAY_TIMEZONE", "").strip() or DEFAULT_ZONE),
            resident_kek_file=Path(kek) if (kek := env.get("GRIEVANCE_RESIDENT_KEK_FILE", "").strip()) else None,
            receipt_key_file=Path(rk) if (rk := env.get("GRIEVANCE_RECEIPT_KEY_FILE", "").strip()) else None,
            callback_days=_number(env, "GRIEVANCE_CALLBACK_DAYS", 7, 1, 365),
            notify_webhook_url=_webhook(env.get("GRIEVANCE_NOTIFY_WEBHOOK_URL", "").strip()),
            notify_webhook_secret_file=_path(env, "GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE"),
            notify_file=Path(nf) if (nf := env.get("GRIEVANCE_NOTIFY_FILE", "").strip()) else None,
            trusted_proxies=_proxies(env.get("GRIEVANCE_TRUSTED_PROXIES", "")),
            resident_page_url=env.get("GRIEVANCE_RESIDENT_PAGE_URL", "").strip().rstrip("/"),
            checkpoints_dir=Path(cp) if (cp := env.get("GRIEVANCE_CHECKPOINTS_DIR", "").strip()) else None,
            checkpoint_verifier_keys=_verifier_keys(env.get("GRIEVANCE_CHECKPOINT_VERIFIER_KEYS", "")),
            kafka=KafkaSettings.from_variables(env),
            dashboard_cache=cache == "on",
            database_url=env.get("GRIEVANCE_DATABASE_URL", DEFAULT_DATABASE_URL),
            chart_path=Path(env.get("GRIEVANCE_CHART", str(SHIPPED_CHART))),
            durability=durability,
            limits_hours=limits,
            log_format=log_format,
            log_level=log_level,
        )
        settings.store_env()  # fail fast on a malformed URL
        settings.time_limits()  # and on limits out of range
        return settings

    def time_limits(self) -> TimeLimits:
        """Each level's limits: the defaults, with GRIEVANCE_LIMITS_HOURS's overrides."""
        if not self.limits_hours:
            return TimeLimits()
        try:
            return TimeLimits.from_hours(self.limits_hours)
        except ConfigurationError as e:
            raise ConfigurationError(f"GRIEVANCE_LIMITS_HOURS: {e}") from None

    def store_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for this database URL and durability."""
        try:
            return self._store_env()
        except ConfigurationError:
            raise
        except ValueError as e:  # what urllib says of a URL it cannot take apart (a bad port, an open bracket)
            raise ConfigurationError(f"GRIEVANCE_DATABASE_URL: {e}") from None

    def _store_env(self) -> dict[str, str]:
        url = urlsplit(self.database_url)
        if "\x00" in unquote(self.database_url):
            raise ConfigurationError("GRIEVANCE_DATABASE_URL: holds a NUL character")
        sqlite_sync, pg_sync = DURABILITY[self.durability]
        if url.scheme == "sqlite":
            path = unquote(url.path[1:] if url.path.startswith("/") else url.path)
            if url.netloc:
                raise ConfigurationError(
                    "GRIEVANCE_DATABASE_URL: write sqlite:///relative.db or sqlite:////absolute.db"
                )
            if not path:
                raise ConfigurationError("GRIEVANCE_DATABASE_URL: a sqlite URL needs a file path")
            return {
                "PERSISTENCE_MODULE": "adapters.storage.event_stores:DurableSQLiteFactory",
                "SQLITE_DBNAME": path,
                "SQLITE_SYNCHRONOUS": sqlite_sync,
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        if url.scheme in ("postgresql", "postgres"):
            dbname = unquote(url.path.lstrip("/"))
            if not dbname:
                raise ConfigurationError("GRIEVANCE_DATABASE_URL: a postgresql URL needs a database name")
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            schema = query.get("schema", "")
            if schema and not SCHEMA_NAME.fullmatch(schema):
                raise ConfigurationError(
                    f"GRIEVANCE_DATABASE_URL: schema {schema!r} is not a plain name (letters, digits, _; at most 63)"
                )
            return {
                "PERSISTENCE_MODULE": "adapters.storage.event_stores:DurablePostgresFactory",
                "POSTGRES_DBNAME": dbname,
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_SCHEMA": query.get("schema", ""),
                "POSTGRES_POOL_SIZE": query.get("pool_size", "5"),
                "POSTGRES_CONNECT_TIMEOUT": "10",
                "POSTGRES_SYNCHRONOUS_COMMIT": pg_sync,
            }
        raise ConfigurationError(
            f"GRIEVANCE_DATABASE_URL: scheme {url.scheme!r} is not supported; use sqlite:/// or postgresql://"
        )

    def receipt_key_path(self) -> tuple[Path, bool]:
        """The receipts' key file, and whether it may be made: the one named, which must exist, or by default one
        beside a SQLite store (made on first use) or receipt.key in the working directory."""
        if self.receipt_key_file is not None:
            return self.receipt_key_file, False
        env = self.store_env()
        if "SQLITE_DBNAME" in env and env["SQLITE_DBNAME"] != ":memory:":
            return Path(env["SQLITE_DBNAME"] + ".receipt-key"), True
        return Path("receipt.key"), True

    def redacted_url(self) -> str:
        """The database URL without its password, for logs and messages."""
        url = urlsplit(self.database_url)
        if url.password:
            return self.database_url.replace(f":{url.password}@", ":***@")
        return self.database_url

    def as_env(self) -> dict[str, str]:
        """The GRIEVANCE_* variables that give another process these settings."""
        env = {
            "GRIEVANCE_DATABASE_URL": self.database_url,
            "GRIEVANCE_CHART": str(self.chart_path),
            "GRIEVANCE_DURABILITY": self.durability,
            "GRIEVANCE_LOG_FORMAT": self.log_format,
            "GRIEVANCE_DASHBOARD_CACHE": "on" if self.dashboard_cache else "off",
            "GRIEVANCE_ACTOR": self.actor,
            "GRIEVANCE_HTTP_THREADS": str(self.http_threads),
            "GRIEVANCE_DECIDED_CACHE": str(self.decided_cache_size),
            "GRIEVANCE_OPEN311_PUBLIC": "on" if self.open311_public else "off",
            "GRIEVANCE_ROSTER_CLAIMS": self.roster_claims.value,
            "GRIEVANCE_STAR_THRESHOLDS": ",".join(map(str, self.star_thresholds.points)),
            "GRIEVANCE_DISPLAY_TIMEZONE": self.display_zone.name,
            "GRIEVANCE_CALLBACK_DAYS": str(self.callback_days),
            "GRIEVANCE_RESIDENT_PAGE_URL": self.resident_page_url,
            "GRIEVANCE_CLOCK_SKEW_MINUTES": str(int(self.time_bounds.skew.total_seconds() // 60)),
            "GRIEVANCE_MAX_LAG_HOURS": str(int(self.time_bounds.lag.total_seconds() // 3600)),
            **self.kafka.as_env(),
        }
        if self.limits_hours is not None:
            env["GRIEVANCE_LIMITS_HOURS"] = json.dumps({k: list(v) for k, v in self.limits_hours.items()})
        if self.log_level is not None:
            env["GRIEVANCE_LOG_LEVEL"] = self.log_level
        if self.tokens_json is not None:
            env["GRIEVANCE_API_TOKENS"] = self.tokens_json
        if self.resident_kek_file is not None:
            env["GRIEVANCE_RESIDENT_KEK_FILE"] = str(self.resident_kek_file)
        if self.tokens_file is not None:
            env["GRIEVANCE_API_TOKENS_FILE"] = str(self.tokens_file)
        if self.notify_webhook_url:
            env["GRIEVANCE_NOTIFY_WEBHOOK_URL"] = self.notify_webhook_url
        if self.notify_webhook_secret_file is not None:
            env["GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE"] = str(self.notify_webhook_secret_file)
        if self.notify_file is not None:
            env["GRIEVANCE_NOTIFY_FILE"] = str(self.notify_file)
        if self.trusted_proxies:
            env["GRIEVANCE_TRUSTED_PROXIES"] = ",".join(self.trusted_proxies)
        if self.receipt_key_file is not None:
            env["GRIEVANCE_RECEIPT_KEY_FILE"] = str(self.receipt_key_file)
        if self.checkpoints_dir is not None:
            env["GRIEVANCE_CHECKPOINTS_DIR"] = str(self.checkpoints_dir)
        if self.checkpoint_verifier_keys:
            env["GRIEVANCE_CHECKPOINT_VERIFIER_KEYS"] = " ".join(v.encoded() for v in self.checkpoint_verifier_keys)
        return env

    def hand_down(self) -> None:
        """Put these settings in this process's environment, for the server processes it is about to start
        (uvicorn's workers read their settings as every process does, with `from_env`)."""
        os.environ.update(self.as_env())


def _number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    # ASCII digits only: str.isdigit also takes '²' (which int() refuses) and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConfigurationError(f"{name}: {raw!r} is not a whole number from {low} to {high}")
    return int(raw)


def _path(env: Mapping[str, str], name: str) -> Path | None:
    return Path(raw) if (raw := env.get(name, "").strip()) else None


def _webhook(url: str) -> str:
    """A gateway's URL: https://, or http:// to this machine only (a gateway beside the sender), since each
    message carries a resident's phone; no credentials in it, since settings are shown and logged."""
    if not url:
        return url
    name = "GRIEVANCE_NOTIFY_WEBHOOK_URL"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname or "", parts.port  # .port refuses a port that is not one
        if "\\" in url or any(ch.isspace() for ch in url):
            raise ValueError("a backslash or a space")
    except ValueError:
        raise ConfigurationError(f"{name}: {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"{name}: {url!r} is not an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{name}: the URL carries credentials; the gateway is told who speaks by the "
                                 "messages' signature (GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE)")  # fmt: skip
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigurationError(f"{name}: {url!r} would send residents' phones in clear; use https:// "
                                 "(http:// only to a gateway on this machine)")  # fmt: skip
    return url


def _proxies(text: str) -> tuple[str, ...]:
    """GRIEVANCE_TRUSTED_PROXIES: addresses or networks (CIDR), separated by commas or spaces; not `*`, which
    would let every client name its own address and so escape the residents' page's rate limits."""
    proxies = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        try:
            proxies.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigurationError(f"GRIEVANCE_TRUSTED_PROXIES: {item!r} is not an address or a network "
                                     "(10.0.0.0/8, 127.0.0.1, ::1)") from None  # fmt: skip
    return tuple(proxies)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _login_name() -> str:
    try:
        return str(getpass.getuser())
    except OSError:  # no login name in a bare container
        return "operator"


def _verifier_keys(text: str) -> tuple[Verifier, ...]:
    """GRIEVANCE_CHECKPOINT_VERIFIER_KEYS: note verifier keys (`name+hash+key`), separated by spaces or commas."""
    try:
        return tuple(Verifier.parse(k, "GRIEVANCE_CHECKPOINT_VERIFIER_KEYS") for k in re.split(r"[\s,]+", text) if k)
    except CheckpointError as e:
        raise ConfigurationError(str(e)) from None
