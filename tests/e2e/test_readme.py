"""Every shell block of README.md, run exactly as written, top to bottom, as a newcomer pastes them into one
terminal: in a fresh copy of the repository with its own SQLite store, so the README cannot drift again."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.kafka_broker import Broker, free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# The first block installs into a fresh venv and plays the demo: run as written, in the copy, it is the newcomer's
# first minute (pip resolves from this machine's index). The suite's block is not run: it is what runs this test.
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/grievance demo"
SUITE = "bash .ci/run"
# What a newcomer's shell would not have: this checkout's venv on the PATH, or settings of another session.
KEPT = ("HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_", "SSL_CERT", "REQUESTS_CA_BUNDLE")
UNCOPIED = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.db", "*.db-*", ".*_cache", "*.egg-info")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """The README's fenced blocks, as (language, body)."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def shell_blocks() -> list[str]:
    return [body for language, body in fenced_blocks(README.read_text(encoding="utf-8")) if language == "sh"]


def test_every_command_the_readme_shows_is_in_a_block_this_test_runs() -> None:
    """A command written in a block of another language (or none) would escape the run below."""
    for language, body in fenced_blocks(README.read_text(encoding="utf-8")):
        if language != "sh":
            assert not re.search(r"^\s*(\$ )?(grievance|\.venv/bin/|python3? |bash |curl |docker )", body, re.M), (
                f"a ```{language or '(no language)'} block holds shell commands: make it ```sh, so that it is run\n"
                + body
            )


def test_the_suite_block_is_exactly_what_ci_runs() -> None:
    """`bash .ci/run` runs the whole suite, this test included, so it is checked rather than run: it is the
    README's block, the script parses, and the script's last step is the suite."""
    assert SUITE in [block.strip() for block in shell_blocks()]
    script = ROOT / ".ci" / "run"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    steps = [line for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert steps[-1].startswith(".venv/bin/pytest -q")


@pytest.fixture
def newcomer(tmp_path: Path, kafka_broker: Broker) -> tuple[Path, dict[str, str]]:
    """A fresh copy of the repository and the environment of a newcomer's terminal; the broker is the one the
    Kafka section names (`GRIEVANCE_KAFKA_BOOTSTRAP`), and `PORT` a free one for the HTTP section."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if tracked.returncode == 0 and tracked.stdout:
        # What a clone holds, not what sessions in this checkout left (a store, key files, tokens).
        for name in tracked.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (clone / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, clone / name)
    else:  # an export without git: the tree less what builds and runs leave
        shutil.copytree(ROOT, clone, ignore=UNCOPIED)
    env = {k: v for k, v in os.environ.items() if k.startswith(KEPT)}
    env |= {"PATH": "/usr/local/bin:/usr/bin:/bin", "GRIEVANCE_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "PORT": str(free_port())}  # fmt: skip
    return clone, env


def session_script(blocks: list[str]) -> str:
    """One bash session: every block in order, stopping at the first command that fails, with a marker after
    each block on both streams so that a failure is laid at its block's door."""
    lines = ["set -eE -o pipefail", "trap 'echo \"@@ block $BLOCK failed (line $LINENO)\" >&2' ERR"]
    for number, block in enumerate(blocks, start=1):
        lines.append(f"BLOCK={number}")
        lines.append(":  # " + shlex.quote(SUITE) + " runs this test; see test_the_suite_block_is_exactly_what_ci_runs"
                     if block.strip() == SUITE else block)  # fmt: skip
        # On a line of its own even when the block's last output ends without a newline (curl's, say).
        lines.append(f"printf '\\n@@ block {number} done\\n' | tee /dev/stderr")
    return "\n".join(lines) + "\n"


def run_session(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The session in a process group of its own, so that what a failed or hung block left running in the
    background (a worker, a server) is stopped with it."""
    session = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = session.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(session.pid, signal.SIGKILL)
        stdout, stderr = session.communicate()
        stderr += "\n@@ the session did not end within 600 s (a block left something in the foreground?)"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(session.pid, signal.SIGTERM)
    return subprocess.CompletedProcess(session.args, session.returncode, stdout, stderr)


def test_every_shell_block_of_the_readme_runs_as_written(newcomer: tuple[Path, dict[str, str]]) -> None:
    clone, env = newcomer
    blocks = shell_blocks()
    assert blocks[0].strip() == INSTALL, "the README's first block is the install; the session starts with it"
    done = run_session(session_script(blocks), clone, env)
    finished = re.findall(r"^@@ block (\d+) done$", done.stdout, re.M)
    where = f"blocks done: {len(finished)} of {len(blocks)}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n"
    assert done.returncode == 0, where + done.stderr[-6000:]
    assert len(finished) == len(blocks), where + done.stderr[-6000:]
    assert "Traceback" not in done.stderr, where + done.stderr
    assert "1,115" in done.stdout  # the demo's year ended as the README says
    # The Auditors section prints what its comments say.
    for said in ("unseen: 1 event was written after the checkpoint", "unseen: 1 of its events was written after",
                 "verified: grievance ", "consistent: "):  # fmt: skip
        assert said in done.stdout, said
    assert re.search(r"^intact: the store's [\d,]+ events extend checkpoint grievances\.example\.org/log", done.stdout,
                     re.M), done.stdout[-4000:]  # fmt: skip
    assert "(the first: taken on trust)" in done.stderr
    assert re.search(r"^cosigned [\d,]+ leaves as audit\.example\.org/w1\+", done.stderr, re.M), done.stderr[-4000:]
