"""The `grievance` command line, one module per group of verbs: grievances (report … rate, show, submit),
supervisors (dashboard, projections, supervise, demo), kafka (worker, relay, emit), audit (history, verify,
export, forget-resident), serving (serve, token) and check; `session` is what they share."""

from adapters.cli.main import main

__all__ = ["main"]
