"""Faults below the engine: a read-only SQLite file, a full disk, and supervision SIGKILLed again and again.
Each process stops with one clear line (or recovers), and what was stored stays whole."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import PersistenceError

from adapters.audit.trail import AuditTrail
from adapters.composition import build_chain, build_projection
from adapters.settings import Settings
from engine.commands import Command, Report
from engine.grievance import Category
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR
from tests.scenario import HOUSEHOLD

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to mount a small or read-only file system")


def report(at: datetime, n: int = 1, prefix: str = "r") -> list[Command]:
    return [
        Report(
            grievance_id=uuid4(), command_id=f"{prefix}-{uuid4()}", actor="grid-worker-li", occurred_at=at,
            unit_id=HOUSEHOLD, category=Category.PARKING, title="车位紧张", description="d" * 200,
        )
        for _ in range(n)
    ]  # fmt: skip


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRIEVANCE_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def events_in(db: Path) -> int:
    chain = build_chain(Settings(database_url=f"sqlite:///{db}"))
    try:
        return chain.recorder.max_notification_id() or 0
    finally:
        chain.close()


@as_root
def test_a_read_only_store_is_one_clear_line_and_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    db = store / "g.db"
    assert cli(db, "tour").returncode == 0
    stored = events_in(db)
    # A read-only mount: unlike file permissions, it binds root too.
    if subprocess.run(["mount", "--bind", str(store), str(store)], check=False).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(store)], check=True)
        done = cli(db, "report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "t", "--description", "d")
        assert done.returncode == 3, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("error: ")
        assert "readonly" in line or "read-only" in line or "unable to open" in line, line
    finally:
        subprocess.run(["umount", str(store)], check=False)
    assert events_in(db) == stored


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB file system, so the store fills it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@as_root
def test_a_full_disk_refuses_the_batch_whole_and_keeps_what_was_stored(small_disk: Path) -> None:
    db = small_disk / "g.db"
    chain = build_chain(Settings(database_url=f"sqlite:///{db}"))
    try:
        accepted, refusal = fill(chain)
        assert "full" in str(refusal)
        assert accepted > 0, "the disk was full before anything fitted"
        assert chain.recorder.max_notification_id() == accepted, "the refused batch left nothing behind"
        assert list(AuditTrail(chain).verify_all()) == []
    finally:
        chain.close()
    # The refused batch may have left room for a smaller write (the log's file keeps what it had grown to),
    # so a user's reports are taken until the disk refuses one too.
    taken = 0
    a_report = ("report", "--unit", HOUSEHOLD, "--category", "parking", "--title", "t", "--description", "d" * 3000)
    for _ in range(30):
        done = cli(db, *a_report)
        if done.returncode != 0:
            break
        taken += 1
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    # The store says it is full, or, first, the receipts' secret beside it could not be made (ENOSPC).
    assert "full" in line or "No space left on device" in line, line
    assert events_in(db) == accepted + taken


def fill(chain: ServiceChain) -> tuple[int, PersistenceError]:
    """Store batches until the disk refuses one: the commands stored, and the refusal."""
    accepted = 0
    at = datetime.now(UTC) - timedelta(hours=1)
    for _ in range(1000):
        batch = report(at, 20)
        try:
            chain.execute(batch, principal=OPERATOR)
        except PersistenceError as refusal:
            return accepted, refusal
        accepted += len(batch)
    raise AssertionError("the disk never filled")


def test_supervision_killed_again_and_again_escalates_each_overdue_grievance_once(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    settings = Settings(database_url=f"sqlite:///{db}")
    chain = build_chain(settings)
    long_ago = datetime.now(UTC) - timedelta(days=5)
    try:
        batch = report(long_ago, 400)
        chain.execute(batch, principal=OPERATOR)
        projection = build_projection(settings, chain)
        projection.catch_up()
        env = {**os.environ, "GRIEVANCE_DATABASE_URL": f"sqlite:///{db}"}
        rng = random.Random(9)
        for _ in range(12):
            supervisor = subprocess.Popen([sys.executable, "-m", "adapters.cli", "supervise", "--every", "1"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(rng.uniform(0.3, 2.5))  # start-up takes about a second: some die before, some inside a sweep
            supervisor.send_signal(signal.SIGKILL)
            supervisor.wait()
        if (chain.recorder.max_notification_id() or 0) == len(batch):
            # On a slow machine every one of those may have died starting up: one more is killed once it has
            # escalated something, so that the final sweep meets commands already applied.
            supervisor = subprocess.Popen([sys.executable, "-m", "adapters.cli", "supervise", "--every", "1"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + 60
            while (chain.recorder.max_notification_id() or 0) == len(batch) and time.monotonic() < deadline:
                time.sleep(0.01)
            supervisor.send_signal(signal.SIGKILL)
            supervisor.wait()
        # Some killed supervisor got to escalate: the final sweep then meets commands already applied.
        assert (chain.recorder.max_notification_id() or 0) > len(batch), "no supervisor lived long enough to sweep"
        done = subprocess.run([sys.executable, "-m", "adapters.cli", "supervise"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert_escalated_once(chain, [c.grievance_id for c in batch])
    finally:
        chain.close()


def assert_escalated_once(chain: ServiceChain, ids: list[object]) -> None:
    for gid in ids:
        kinds = [type(e).__name__ for e in chain.history(gid)]  # type: ignore[arg-type]
        assert kinds == ["Reported", "Escalated"], (gid, kinds)
