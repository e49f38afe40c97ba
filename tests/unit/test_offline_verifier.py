"""The offline verifier: its chained-hash formula is the engine's, and it loads nothing an auditor's machine
would lack (only the standard library and cryptography)."""

from __future__ import annotations

import ast
import subprocess
import sys
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.chained_hash import chained_hash
from adapters.storage.hash_chain import link


@given(st.binary(min_size=32, max_size=32), st.uuids(), st.integers(1, 2**40), st.text(max_size=60), st.binary())
def test_its_chained_hash_is_the_engines(previous: bytes, gid: UUID, version: int, topic: str, state: bytes) -> None:
    event = StoredEvent(originator_id=gid, originator_version=version, topic=topic, state=state)
    assert chained_hash(previous, gid, version, topic, state) == link(previous, event)


def test_it_loads_only_the_standard_library_and_cryptography() -> None:
    probe = (
        "import sys, adapters.audit.offline_verifier; "
        "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    # cryptography's own bindings, setuptools' start-up hook and the probe itself besides.
    allowed = {"adapters", "cryptography", "_cffi_backend", "_openssl", "_distutils_hack", "__main__"}
    assert set(ast.literal_eval(done.stdout)) <= allowed
