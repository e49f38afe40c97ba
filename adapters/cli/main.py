"""The `grievance` command group: each verb group's module adds its commands here."""

from __future__ import annotations

import click

from adapters.cli import audit, check, grievances, kafka, serving, supervisors


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="grievance-chain")
def main() -> None:
    """The party-building service chain's grievance engine (党建服务链条).

    Settings come from the environment: GRIEVANCE_DATABASE_URL (default sqlite:///grievances.db;
    or postgresql://user@host/db), GRIEVANCE_CHART, GRIEVANCE_DURABILITY (full, normal, off),
    GRIEVANCE_LIMITS_HOURS, GRIEVANCE_LOG_FORMAT. With direct access to the store, this is an
    operator's tool: what it is told, it does as the actor it names.
    """


for verbs in (grievances, supervisors, kafka, audit, serving, check):
    verbs.register(main)
