"""Commands an auditor runs with their own keys and files, away from the database host: the offline verifier as
one file to copy."""

from __future__ import annotations

from pathlib import Path

import click

from adapters.audit.verifier_bundle import write_bundle
from adapters.cli.session import fail


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(offline_verifier)


@click.command("offline-verifier")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def offline_verifier(file: Path) -> None:
    """Write the offline verifier to FILE (a new file): `python FILE PROVE.json --verifier-key KEY` checks a proof of
    `grievance prove --json` anywhere Python 3 and `cryptography` are installed, with no database."""
    try:
        write_bundle(file)
    except FileExistsError:
        fail(f"file: {file} exists; it is not overwritten")
    except OSError as e:
        fail(f"file: {file} cannot be written: {e.strerror}")
    click.echo(f"wrote {file}: python {file} PROVE.json --verifier-key KEY [--witness-key KEY ...]")
