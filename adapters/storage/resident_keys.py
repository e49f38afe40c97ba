"""A key per resident, kept in a table of its own beside the events (never in them): residents' names and
phones are sealed with AES-GCM under their own key, and forgetting a resident destroys the key.

Sealed values read `sealed:v1:<base64 of nonce and ciphertext>`; the resident's id and the field's name
are bound in as associated data, so a sealed value cannot be moved to another resident or field. Keys
are remembered in memory for `remember_seconds`, so a process opens a forgotten resident's fields as
"[erased]" within that time of `grievance forget-resident`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.postgres import PostgresDatastore

from adapters.storage.key_encryption import KeyEncryptionKeys
from adapters.storage.side_table import SideTable
from engine.errors import ConfigurationError, InfrastructureError
from engine.personal_data import ERASED, masked

PREFIX = "sealed:v1:"
TABLE = "resident_keys"
# SQLite's default limit on bound parameters is 32,766; stay well below it.
IDS_PER_QUERY = 500
KEY_BYTES = 32  # AES-256


def _damaged(row: Any) -> InfrastructureError:
    return InfrastructureError(f"{TABLE}: the key stored for resident {masked('resident_id', row['resident_id'])} "
                               f"is not a {KEY_BYTES * 8}-bit key: the table was edited or damaged")  # fmt: skip


def _sealed(cipher: AESGCM, subject: str, field: str, value: str) -> str:
    nonce = os.urandom(12)
    sealed = cipher.encrypt(nonce, value.encode(), f"{subject}\0{field}".encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


class ResidentKeys(SideTable):
    """The PersonalData port (engine.personal_data) on the event store's own database."""

    def __init__(self, datastore: Any, *, remember_seconds: float = 5.0, keks: KeyEncryptionKeys | None = None) -> None:
        blob = "bytea" if isinstance(datastore, PostgresDatastore) else "BLOB"
        super().__init__(datastore, TABLE, f"resident_id TEXT PRIMARY KEY, key {blob}, erased_at TEXT, kek_id TEXT")
        self.remember = remember_seconds
        # Keys are stored wrapped under these when given (adapters/storage/key_encryption.py), else as they are.
        self.keks = keks
        self._keys: dict[str, tuple[bytes | None, float]] = {}
        # When this process last forgot each resident it forgot: a batch committed just after must not bring back
        # the key it made before.
        self._forgotten_at: dict[str, float] = {}
        self._lock = threading.Lock()
        with contextlib.suppress(Exception):  # tables made before keys were wrapped: add the column once
            self._execute(f"ALTER TABLE {self.table} ADD COLUMN kek_id TEXT")

    def _stored(self, row: Any) -> bytes | None:
        """A row's key, unwrapped if it was stored wrapped."""
        if row["key"] is None:
            return None
        stored = row["key"]
        if not isinstance(stored, bytes | bytearray | memoryview):
            raise _damaged(row)
        key = bytes(stored)
        if row["kek_id"] is not None:
            if self.keks is None:
                raise ConfigurationError("GRIEVANCE_RESIDENT_KEK_FILE: residents' keys are stored wrapped; name the "
                                         "key-encryption key file")  # fmt: skip
            key = self.keks.unwrap(row["kek_id"], key)
        if len(key) != KEY_BYTES:
            raise _damaged(row)
        return key

    def rewrap(self) -> tuple[int, set[str]]:
        """Wrap every stored key again under the current key-encryption key: how many were, and the ids of the
        key-encryption keys that still wrap some (none but the current one, after this)."""
        if self.keks is None:
            raise ConfigurationError("GRIEVANCE_RESIDENT_KEK_FILE: no key-encryption keys to wrap under")
        rows = self._execute(f"SELECT resident_id, key, kek_id FROM {self.table} WHERE key IS NOT NULL")
        count = 0
        for row in rows:
            if row["kek_id"] == self.keks.current:
                continue
            kek_id, wrapped = self.keks.wrap(self._stored(row) or b"")
            self._execute(f"UPDATE {self.table} SET key = ?, kek_id = ? WHERE resident_id = ?",
                          (wrapped, kek_id, row["resident_id"]))  # fmt: skip
            count += 1
        self._scrub()
        return count, self.wrapping()

    def wrapping(self) -> set[str]:
        """The ids of the key-encryption keys stored keys are wrapped under."""
        rows = self._execute(f"SELECT DISTINCT kek_id FROM {self.table} WHERE key IS NOT NULL AND kek_id IS NOT NULL")
        return {r["kek_id"] for r in rows}

    def _key(self, subject: str, *, create: bool) -> bytes | None:
        with self._lock:
            known = self._keys.get(subject)
            if known is not None and time.monotonic() - known[1] < self.remember and (known[0] or not create):
                return known[0]
        select = f"SELECT resident_id, key, kek_id FROM {self.table} WHERE resident_id = ?"
        rows = self._execute(select, (subject,))
        key = self._stored(rows[0]) if rows else None
        if key is None and create:
            fresh = AESGCM.generate_key(bit_length=256)
            kek_id, stored = self.keks.wrap(fresh) if self.keks else (None, fresh)
            # Another process may create the key at the same moment: whichever is stored wins.
            # PostgreSQL names the upsert's target by an alias; SQLite by the table's own name.
            into, target = (f"{self.table} AS k", "k") if self.postgres else (self.table, self.table)
            self._execute(f"INSERT INTO {into} (resident_id, key, kek_id) VALUES (?, ?, ?) ON CONFLICT (resident_id) "
                          f"DO UPDATE SET key = excluded.key, kek_id = excluded.kek_id, erased_at = NULL "
                          f"WHERE {target}.key IS NULL", (subject, stored, kek_id))  # fmt: skip
            key = self._stored(self._execute(select, (subject,))[0])
        with self._lock:
            self._keys[subject] = (key, time.monotonic())
        return key

    def seal(self, subject: str, field: str, value: str) -> str:
        """`value` encrypted under the resident's key (made on first use)."""
        key = self._key(subject, create=True)
        assert key is not None
        return _sealed(AESGCM(key), subject, field, value)

    def for_batch(self, subjects: Collection[str]) -> BatchKeys:
        """The keys of a batch's residents, read in one query (but those remembered); keys for residents who have
        none yet are made here, and stored with the batch by the event store (`BatchKeys.store`)."""
        keys: dict[str, bytes] = {}
        now = time.monotonic()
        with self._lock:
            for subject in subjects:
                known = self._keys.get(subject)
                if known is not None and known[0] is not None and now - known[1] < self.remember:
                    keys[subject] = known[0]
        unknown = sorted(s for s in subjects if s not in keys)
        for i in range(0, len(unknown), IDS_PER_QUERY):
            chunk = unknown[i : i + IDS_PER_QUERY]
            rows = self._execute(f"SELECT resident_id, key, kek_id FROM {self.table} WHERE resident_id IN "
                                 f"({','.join('?' * len(chunk))}) AND key IS NOT NULL", tuple(chunk))  # fmt: skip
            found = {row["resident_id"]: key for row in rows if (key := self._stored(row)) is not None}
            keys.update(found)
            with self._lock:
                self._keys.update((subject, (key, now)) for subject, key in found.items())
        made: dict[str, tuple[bytes, str | None, bytes]] = {}
        for subject in unknown:
            if subject not in keys:
                fresh = AESGCM.generate_key(bit_length=256)
                kek_id, stored = self.keks.wrap(fresh) if self.keks else (None, fresh)
                made[subject] = (fresh, kek_id, stored)
        return BatchKeys(self, keys, made, prepared_at=now)

    def _remember(self, keys: dict[str, bytes], *, prepared_at: float) -> None:
        """Remember keys a batch prepared at `prepared_at` made, but those of residents forgotten since."""
        now = time.monotonic()
        with self._lock:
            self._keys.update(
                (subject, (key, now))
                for subject, key in keys.items()
                if self._forgotten_at.get(subject, -1.0) < prepared_at
            )

    def open(self, subject: str, field: str, stored: str) -> str:
        """The value `seal` sealed, or "[erased]" once the resident's key is destroyed."""
        if not stored.startswith(PREFIX):
            return stored  # stored before sealing was configured
        key = self._key(subject, create=False)
        if key is None:
            return ERASED
        raw = base64.b64decode(stored[len(PREFIX) :])
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], f"{subject}\0{field}".encode()).decode()
        except InvalidTag:
            return ERASED  # sealed under a key destroyed since (the resident was forgotten, then came back)

    def knows(self, subject: str) -> bool:
        """Whether a key was ever made for the resident: every report naming one makes it, erasure keeps the row."""
        return bool(self._execute(f"SELECT 1 FROM {self.table} WHERE resident_id = ?", (subject,)))

    def forget(self, subject: str) -> bool:
        """Destroy the resident's key; whether there was one to destroy."""
        had = self._execute(f"SELECT key FROM {self.table} WHERE resident_id = ? AND key IS NOT NULL", (subject,))
        erased_at = datetime.now(UTC).isoformat()
        self._execute(f"INSERT INTO {self.table} (resident_id, key, erased_at) VALUES (?, NULL, ?) "
                      "ON CONFLICT (resident_id) DO UPDATE SET key = NULL, kek_id = NULL, "
                      "erased_at = excluded.erased_at", (subject, erased_at))  # fmt: skip
        with self._lock:
            self._keys.pop(subject, None)
            self._forgotten_at[subject] = time.monotonic()
        self._scrub()
        return bool(had)

    def _scrub(self) -> None:
        """Leave no copy of a destroyed key in the database's live files. SQLite zeroes what is overwritten
        (secure_delete, set on every connection) and its write-ahead log is checkpointed and truncated here;
        PostgreSQL's old row version stays until VACUUM, run here. What remains elsewhere (PostgreSQL's WAL
        archives, replicas, backups) README states."""
        if self.postgres:
            with self.datastore.get_connection() as conn:
                conn.autocommit = True
                try:
                    conn.execute(f"VACUUM {self.table}")
                finally:
                    conn.autocommit = False
        else:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class BatchKeys:
    """The keys one batch of events is sealed under (engine.personal_data.Sealer): those stored already, and those
    made for residents new to the store, which the event store writes in the batch's own transaction (`store`). A
    key made for a resident whose key another writer stored meanwhile fails the batch, which is then decided again
    under the stored key; this process remembers the made keys only once the batch is committed (`stored`)."""

    def __init__(
        self,
        owner: ResidentKeys,
        keys: dict[str, bytes],
        made: dict[str, tuple[bytes, str | None, bytes]],
        *,
        prepared_at: float,
    ) -> None:
        self.owner = owner
        self.prepared_at = prepared_at
        self.keys = keys
        self.made = made
        self._ciphers: dict[str, AESGCM] = {}  # a resident's name and phone are sealed with one cipher

    def seal(self, subject: str, field: str, value: str) -> str:
        """`value` encrypted under the resident's key: the stored one, or the one made for this batch."""
        cipher = self._ciphers.get(subject)
        if cipher is None:
            key = self.keys.get(subject)
            if key is None:
                if subject not in self.made:
                    return self.owner.seal(subject, field, value)  # not named when the batch was prepared
                key = self.made[subject][0]
            cipher = self._ciphers[subject] = AESGCM(key)
        return _sealed(cipher, subject, field, value)

    def store(self, cursor: Any) -> None:
        """Write the made keys with `cursor`, inside the batch's transaction. A key another writer stored meanwhile
        for one of these residents fails the statement itself (the table's primary key), so the database rolls
        the whole batch back, its upstream position too, and the batch is decided again under the stored key."""
        if not self.made:
            return
        owner, table = self.owner, self.owner.table
        rows = [(subject, stored, kek_id) for subject, (_, kek_id, stored) in self.made.items()]
        ids = [r[0] for r in rows]
        # A forgotten resident's row (key NULL, kept as the record of the erasure) makes way for the new key; a
        # row holding a key stays, and the insert below then meets it.
        if owner.postgres:
            with cursor.connection.cursor() as keys:
                keys.execute(f"DELETE FROM {table} WHERE key IS NULL AND resident_id = ANY(%s)", [ids], prepare=False)
                keys.execute(f"INSERT INTO {table} (resident_id, key, kek_id) SELECT * FROM unnest(%s::text[], "
                             "%s::bytea[], %s::text[])", (ids, [r[1] for r in rows], [r[2] for r in rows]),
                             prepare=False)  # fmt: skip
            return
        for i in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[i : i + IDS_PER_QUERY]
            cursor.execute(f"DELETE FROM {table} WHERE key IS NULL AND resident_id IN ({','.join('?' * len(chunk))})",
                           chunk)  # fmt: skip
        cursor.executemany(f"INSERT INTO {table} (resident_id, key, kek_id) VALUES (?, ?, ?)", rows)

    def store_keys(self) -> None:
        """Store the made keys in a transaction of their own, for an event store that cannot take them with a batch."""
        with self.owner.datastore.transaction(commit=True) as cursor:
            self.store(cursor)
        self.stored()

    def stored(self) -> None:
        """The batch is committed: remember the keys made for it."""
        self.owner._remember({subject: fresh for subject, (fresh, _, _) in self.made.items()},
                             prepared_at=self.prepared_at)  # fmt: skip
