"""The Merkle log over HTTP, fed by the notary (adapters.audit.notary) publishing in a directory: the service
serves the latest note as text, a grievance's proof that the offline verifier accepts, and consistency
proofs between tree sizes that join two published checkpoints; every refusal is a problem naming its field."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import TestClient

from adapters.audit.checkpoint import (
    Checkpoint,
    Cosigner,
    SignedCheckpoint,
    Signer,
    new_signing_key,
    parse_note,
    sign,
    verified,
)
from adapters.audit.notary import LATEST, Notary
from adapters.audit.offline_verifier import check
from adapters.audit.transparency import NotExtended
from adapters.composition import build_http_services, build_transparency
from adapters.http.app import create_app
from adapters.http.services import Services
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from adapters.storage.merkle_log import verify_consistency
from engine.access import Role
from tests.e2e.test_http_api import OTHER_STREET, assert_problem, report, step
from tests.integration.test_tamper_evidence import tamper
from tests.scenario import GRID, HOUSEHOLD, STREET

ORIGIN = "grievances.test/log"
TOKENS = {
    "worker": (Role.GRID_WORKER, GRID),
    "street": (Role.SUPERVISOR, STREET),
    "elsewhere": (Role.SUPERVISOR, OTHER_STREET),
    "auditor": (Role.AUDITOR, None),
}


class Service:
    def __init__(self, client: TestClient[Any], services: Services, folder: Path) -> None:
        self.client, self.folder = client, folder
        self.published = folder / "checkpoints"
        self.published.mkdir()
        self.signer: Signer = new_signing_key(folder / "notary.key", ORIGIN)
        self.services = services
        # As GRIEVANCE_CHECKPOINT_VERIFIER_KEYS would configure it: the notary's key is the one the reports check.
        services.checkpoint_verifiers = (self.signer.verifier,)
        self.keeper = Notary(self.signer, build_transparency(services.chain), self.published)

    def get(self, path: str, who: str | None = "auditor", params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer token-of-{who}"} if who else {}
        return self.client.get(path, headers=headers, params=params)

    def post(self, body: Any) -> None:
        done = self.client.post("/api/v1/commands", headers={"Authorization": "Bearer token-of-worker"}, json=body)
        assert done.status_code in (200, 201), done.text

    def notary(self) -> SignedCheckpoint | None:
        """One round of `grievance notary`'s loop."""
        return self.keeper.sign_if_grown()

    def forge(self, size: int, root: bytes) -> None:
        """A checkpoint of the log's own key, as published, that the store does not bear out."""
        (self.published / LATEST).write_text(sign(Checkpoint(ORIGIN, size, root), self.signer).note())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    db = tmp_path / "g.db"
    services, _ = build_http_services(
        Settings(database_url=f"sqlite:///{db}", checkpoints_dir=tmp_path / "checkpoints")
    )
    services.tokens = TokenBook([TokenEntry(name=k, role=r, unit_id=u, sha256=digest(f"token-of-{k}"))
                                 for k, (r, u) in TOKENS.items()], services.chain.chart)  # fmt: skip
    with TestClient(app=create_app(services)) as client:
        yield Service(client, services, tmp_path)
    services.chain.close()


def test_the_notary_publishes_and_the_service_serves_checkpoints_proofs_and_consistency(service: Service) -> None:
    assert_problem(service.get("/api/v1/checkpoints/latest"), 404, "checkpoint")
    gid = uuid4()
    service.post(report(gid))
    service.post(step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m"))
    assert "已收录" not in service.get(f"/api/v1/grievances/{gid}/history.html").text, "no checkpoint yet"
    signed = service.notary()
    assert signed is not None
    assert signed.checkpoint.size == 2
    latest = service.get("/api/v1/checkpoints/latest")
    assert latest.status_code == 200
    assert latest.headers["content-type"].startswith("text/plain")
    assert latest.text == (service.published / LATEST).read_text()
    old = verified(latest.text, [service.signer.verifier]).checkpoint
    assert (old.origin, old.size) == (ORIGIN, 2)
    assert service.notary() is None, "an unchanged head is not signed again"

    report_html = service.get(f"/api/v1/grievances/{gid}/history.html").text
    key = f"{ORIGIN}+{service.signer.verifier.key_hash.hex()}"
    assert (f"✔ 已收录 Versions 1–2 are included in checkpoint {ORIGIN} of 2 leaves (root {old.root.hex()[:16]}…), "
            f"signed by {key}; check it offline") in report_html  # fmt: skip
    proof = service.get(f"/api/v1/grievances/{gid}/proof", who="street")
    assert proof.status_code == 200, proof.text
    proved = check(proof.json(), service.signer.verifier)
    assert (proved.grievance_id, proved.events, proved.first_leaf, proved.last_leaf) == (gid, 2, 0, 1)
    assert_problem(service.get(f"/api/v1/grievances/{gid}/proof", who="elsewhere"), 404, "grievance_id")

    service.post(report())
    assert service.notary() is not None
    new = parse_note(service.get("/api/v1/checkpoints/latest").text).checkpoint
    assert new.size == 3
    assert sorted(p.name for p in service.published.iterdir()) == ["checkpoint.2", "checkpoint.3", LATEST]
    answer = service.get("/api/v1/log/consistency", params={"from": 2, "to": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["old_size"], body["new_size"], body["old_root"], body["new_root"]) == (2, 3, old.root.hex(),
                                                                                         new.root.hex())  # fmt: skip
    assert verify_consistency(2, 3, [bytes.fromhex(h) for h in body["proof"]], old.root, new.root)


def test_consistency_between_sizes_the_log_cannot_join_is_refused_naming_the_size(service: Service) -> None:
    service.post(report())
    assert_problem(service.get("/api/v1/log/consistency", params={"from": 1, "to": 0}), 422, "from")
    assert_problem(service.get("/api/v1/log/consistency", params={"from": 0, "to": 2}), 422, "to")
    assert_problem(service.get("/api/v1/log/consistency", params={"from": -1, "to": 1}), 400, "from")
    assert_problem(service.get("/api/v1/log/consistency", None, params={"from": 0, "to": 1}), 401, "authorization")


def test_the_notary_never_signs_a_head_that_does_not_extend_the_last_one_published(service: Service) -> None:
    gid = uuid4()
    service.post(report(gid))
    # A checkpoint of more leaves than the store now holds: the store was rolled back under it.
    service.forge(5, bytes(32))
    with pytest.raises(NotExtended, match="the older checkpoint has 5 leaves, more than the newer"):
        service.notary()
    assert sorted(p.name for p in service.published.iterdir()) == [LATEST]
    # The same size with another root: the service will not prove against a checkpoint its log contradicts.
    service.forge(1, bytes(32))
    body = assert_problem(service.get(f"/api/v1/grievances/{gid}/proof"), 409, "checkpoint")
    assert body["code"] == "log_rewritten"
    report_html = service.get(f"/api/v1/grievances/{gid}/history.html").text
    assert "✘ 未能证明 The store&#x27;s log does not bear out the latest checkpoint of 1 leaves" in report_html
    with pytest.raises(NotExtended):
        service.notary()


def test_a_tree_size_that_is_not_a_whole_number_is_named_by_its_query_name(service: Service) -> None:
    for bad in ("-1", "1.5", "x", "٣", "99999999999999999"):
        assert_problem(service.get("/api/v1/log/consistency", params={"from": bad, "to": "0"}), 400, "from")
        assert_problem(service.get("/api/v1/log/consistency", params={"from": "0", "to": bad}), 400, "to")


def test_a_witness_cosigns_from_what_the_service_serves_and_the_offline_verifier_checks_it(service: Service) -> None:
    """An auditor with no database access: the checkpoints and the consistency proof from HTTP, `grievance witness
    --proof` to cosign, the offline verifier to check a proof against the cosigned checkpoint."""
    witness_key = service.folder / "witness.key"
    new_signing_key(witness_key, "witness.test/w1")
    elsewhere = {"GRIEVANCE_DATABASE_URL": f"sqlite:///{service.folder}/nowhere.db", "PATH": "/usr/bin:/bin"}

    def witness(note: str, *proof: str) -> subprocess.CompletedProcess[str]:
        (service.folder / "new.checkpoint").write_text(note)
        return subprocess.run([sys.executable, "-m", "adapters.cli", "witness", "--key", str(witness_key), "--log-key",
                               service.signer.verifier.encoded(), *proof, str(service.folder / "new.checkpoint")],
                              env=elsewhere, capture_output=True, text=True, timeout=120)  # fmt: skip

    gid = uuid4()
    service.post(report(gid))
    assert service.notary() is not None
    old_note = service.get("/api/v1/checkpoints/latest").text
    first = witness(old_note)
    assert first.returncode == 0, first.stderr
    service.post(step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m"))
    assert service.notary() is not None
    consistency = service.get("/api/v1/log/consistency", params={"from": "1", "to": "2"})
    (service.folder / "consistency.json").write_text(consistency.text)
    cosigned = witness(
        service.get("/api/v1/checkpoints/latest").text, "--proof", str(service.folder / "consistency.json")
    )
    assert cosigned.returncode == 0, cosigned.stderr
    proof = service.get(f"/api/v1/grievances/{gid}/proof").json()
    proof["checkpoint"] = cosigned.stdout
    witness_verifier = Cosigner.of(Signer.parse(witness_key.read_text()))
    proved = check(proof, service.signer.verifier, [witness_verifier])
    assert (proved.events, [k.name for k, _ in proved.witnesses]) == (2, ["witness.test/w1"])
    (service.folder / "old.checkpoint").write_text(old_note)
    (service.folder / "cosigned.checkpoint").write_text(cosigned.stdout)
    files = [str(service.folder / name) for name in ("consistency.json", "old.checkpoint", "cosigned.checkpoint")]
    done = subprocess.run([sys.executable, "-I", "-m", "adapters.audit.offline_verifier", "--consistency",
                           files[0], "--from", files[1], "--to", files[2], "--verifier-key",
                           service.signer.verifier.encoded(), "--witness-key", witness_verifier.encoded()],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"consistent: checkpoint {ORIGIN} of 2 leaves extends the one of 1; cosigned by "
                                  "witness.test/w1 at ")  # fmt: skip


def test_the_clis_audit_report_says_so_too(service: Service) -> None:
    gid = uuid4()
    service.post(report(gid))
    service.notary()
    env = {"GRIEVANCE_DATABASE_URL": f"sqlite:///{service.folder}/g.db", "GRIEVANCE_CHECKPOINTS_DIR":
           str(service.published), "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "adapters.cli", "export", str(gid), "--format", "html"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"✔ 已收录 Versions 1–1 are included in checkpoint {ORIGIN} of 1 leaves" in done.stdout


def test_a_proof_of_an_event_its_leaf_does_not_record_is_a_problem_not_a_500(service: Service) -> None:
    gid = uuid4()
    service.post(report(gid))
    service.post(step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m"))
    service.post(report())
    assert service.notary() is not None
    db = f"sqlite:///{service.folder}/g.db"
    tamper(db, "UPDATE stored_events SET state = %s WHERE originator_id = %s AND originator_version = 2",
           b'{"claimant": "nobody"}', gid)  # fmt: skip
    body = assert_problem(service.get(f"/api/v1/grievances/{gid}/proof"), 409, "history")
    assert body["code"] == "event_altered"
    assert body["reason"].startswith(f"grievance {gid} version 2 (leaf 1): its stored bytes chain to ")
    # The log's tile cut to two leaves: the service answers from the log it holds, which no longer reaches 3.
    tamper(db, "UPDATE log_tiles SET hashes = substr(hashes, 1, 64) WHERE level = 0 AND idx = 0")
    body = assert_problem(service.get("/api/v1/log/consistency", params={"from": 1, "to": 3}), 422, "to")
    assert body["reason"] == "the log has 2 leaves, fewer than 3"


def test_the_report_names_a_signer_only_once_its_signature_checks(service: Service) -> None:
    gid = uuid4()
    service.post(report(gid))
    assert service.notary() is not None
    page = f"/api/v1/grievances/{gid}/history.html"
    key = f"{ORIGIN}+{service.signer.verifier.key_hash.hex()}"
    assert f"signed by {key};" in service.get(page).text
    # A checkpoint the notary's key did not sign, published under its name: the report does not say "signed by".
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    published = service.published / LATEST
    good = published.read_text()
    published.write_text(sign(parse_note(good).checkpoint, impostor).note())
    forged = service.get(page).text
    assert f"), signed by {key}" not in forged
    assert "✘" in forged
    assert "The latest published checkpoint is not the log&#x27;s: not signed by " + key in forged
    # No verifier key configured: the signatures are not checked, and the report says so instead of naming them.
    service.services.checkpoint_verifiers = ()
    unchecked = service.get(page).text
    assert ", signed by" not in unchecked
    assert (
        "its signature unverified here (this service was given no verifier key: GRIEVANCE_CHECKPOINT_VERIFIER_KEYS)"
        in (unchecked)
    )
