"""`grievance serve` in its own process on a free loopback port, with API tokens, for clients that need a
real server (a browser, the georeport Open311 client)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from adapters.http.tokens import digest
from tests.kafka_broker import free_port


@contextmanager
def served(
    database_url: str, tokens: Mapping[str, tuple[str, str, str | None]], log: Path, *extra: str,
    settings: Mapping[str, str] | None = None,
) -> Iterator[str]:  # fmt: skip
    """The service's base URL; `tokens` maps each token to (name, role, unit); `settings` adds variables."""
    entries = [{"name": n, "role": r, "unit_id": u, "sha256": digest(t)} for t, (n, r, u) in tokens.items()]
    port = free_port()
    env = {
        **os.environ,
        "GRIEVANCE_DATABASE_URL": database_url,
        "GRIEVANCE_API_TOKENS": json.dumps({"tokens": entries}),
        **(settings or {}),
    }
    with log.open("ab") as out:
        command = [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), *extra]
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"grievance serve exited with {process.returncode}; see {log}")
            try:
                if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"grievance serve did not answer within 60 s; see {log}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
