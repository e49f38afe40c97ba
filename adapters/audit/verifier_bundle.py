"""The offline verifier as one file an auditor copies anywhere: a zip application (PEP 441) of the few modules it
runs, which import only the standard library and `cryptography`; `python FILE PROVE.json --verifier-key KEY`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import adapters

# Every module the verifier imports, and the packages around them (a test runs the file with nothing else).
MODULES = (
    "adapters/__init__.py",
    "adapters/audit/__init__.py",
    "adapters/audit/checkpoint.py",
    "adapters/audit/offline_verifier.py",
    "adapters/storage/__init__.py",
    "adapters/storage/chained_hash.py",
    "adapters/storage/merkle_log.py",
)
MAIN = "import sys\n\nfrom adapters.audit.offline_verifier import main\n\nsys.exit(main())\n"


def write_bundle(path: Path) -> None:
    """Write the verifier to `path` (a new file), runnable by any Python 3 with `cryptography` installed."""
    root = Path(adapters.__file__).parent.parent
    with path.open("xb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("__main__.py", MAIN)
        for name in MODULES:
            bundle.write(root / name, name)
