"""Settings from the environment, and their translation into the event store's configuration."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE_URL = "sqlite:///grievances.db"
SHIPPED_CHART = Path(__file__).parent / "charts" / "yongji.json"
DURABILITY = {"full": ("FULL", "on"), "normal": ("NORMAL", "off"), "off": ("OFF", "off")}


class SettingsError(ValueError):
    """A setting is malformed; the message names the variable."""


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
    # Remember dashboard answers until the views move (see adapters/dashboard_cache.py).
    dashboard_cache: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read GRIEVANCE_* variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        durability = env.get("GRIEVANCE_DURABILITY", "full").strip().lower()
        if durability not in DURABILITY:
            raise SettingsError(f"GRIEVANCE_DURABILITY: {durability!r} is not one of full, normal, off")
        log_format = env.get("GRIEVANCE_LOG_FORMAT", "auto").strip().lower()
        if log_format not in ("auto", "json", "console"):
            raise SettingsError(f"GRIEVANCE_LOG_FORMAT: {log_format!r} is not one of auto, json, console")
        log_level = env.get("GRIEVANCE_LOG_LEVEL", "").strip().lower() or None
        if log_level not in (None, "debug", "info", "warning", "error"):
            raise SettingsError(f"GRIEVANCE_LOG_LEVEL: {log_level!r} is not one of debug, info, warning, error")
        limits = None
        if raw := env.get("GRIEVANCE_LIMITS_HOURS"):
            try:
                parsed = json.loads(raw)
                limits = {str(k): (float(v[0]), float(v[1])) for k, v in parsed.items()}
            except (ValueError, TypeError, IndexError, AttributeError):
                raise SettingsError(
                    'GRIEVANCE_LIMITS_HOURS: expected JSON like {"grid_branch": [24, 168]} '
                    "(hours to claim, hours to settle)"
                ) from None
        cache = env.get("GRIEVANCE_DASHBOARD_CACHE", "on").strip().lower()
        if cache not in ("on", "off"):
            raise SettingsError(f"GRIEVANCE_DASHBOARD_CACHE: {cache!r} is not on or off")
        settings = cls(
            dashboard_cache=cache == "on",
            database_url=env.get("GRIEVANCE_DATABASE_URL", DEFAULT_DATABASE_URL),
            chart_path=Path(env.get("GRIEVANCE_CHART", str(SHIPPED_CHART))),
            durability=durability,
            limits_hours=limits,
            log_format=log_format,
            log_level=log_level,
        )
        settings.store_env()  # fail fast on a malformed URL
        return settings

    def store_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for this database URL and durability."""
        url = urlsplit(self.database_url)
        sqlite_sync, pg_sync = DURABILITY[self.durability]
        if url.scheme == "sqlite":
            path = unquote(url.path[1:] if url.path.startswith("/") else url.path)
            if url.netloc:
                raise SettingsError("GRIEVANCE_DATABASE_URL: write sqlite:///relative.db or sqlite:////absolute.db")
            if not path:
                raise SettingsError("GRIEVANCE_DATABASE_URL: a sqlite URL needs a file path")
            return {
                "PERSISTENCE_MODULE": "adapters.event_stores:DurableSQLiteFactory",
                "SQLITE_DBNAME": path,
                "SQLITE_SYNCHRONOUS": sqlite_sync,
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        if url.scheme in ("postgresql", "postgres"):
            dbname = unquote(url.path.lstrip("/"))
            if not dbname:
                raise SettingsError("GRIEVANCE_DATABASE_URL: a postgresql URL needs a database name")
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            return {
                "PERSISTENCE_MODULE": "adapters.event_stores:DurablePostgresFactory",
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
        raise SettingsError(
            f"GRIEVANCE_DATABASE_URL: scheme {url.scheme!r} is not supported; use sqlite:/// or postgresql://"
        )

    def redacted_url(self) -> str:
        """The database URL without its password, for logs and messages."""
        url = urlsplit(self.database_url)
        if url.password:
            return self.database_url.replace(f":{url.password}@", ":***@")
        return self.database_url
