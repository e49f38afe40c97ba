"""Reads an organisation chart from a JSON or TOML file (`units`: a list of id, name, level, parent)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from engine.chart import OrgChart
from engine.errors import ChartError, ConfigurationError


def load_chart(path: Path) -> OrgChart:
    """Load and validate a chart file: `.json` or `.toml`, with a top-level `units` list; a `ConfigurationError`
    names the file and the unit at fault."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot read the chart file ({e.strerror})") from None
    try:
        document: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigurationError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {e}") from None
    units = document.get("units") if isinstance(document, dict) else None
    if not isinstance(units, list):
        raise ConfigurationError(f"{path}: expected a top-level 'units' list")
    try:
        return OrgChart.from_records(units)
    except ChartError as e:
        raise ConfigurationError(f"{path}: {e}") from None
