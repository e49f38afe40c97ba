"""The `grievance` command group: each verb group's module adds its commands here."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

from adapters.cli import (
    audit,
    auditors,
    check,
    grievances,
    kafka,
    resident_loop,
    roster,
    serving,
    supervisors,
    transparency,
)
from adapters.cli.session import EXIT_INFRASTRUCTURE, fail


class OneLineError(click.UsageError):
    """What click refuses on a command line (a missing option, a bad value), as every other refusal is shown:
    `error: FIELD: REASON [code]` on one line."""

    def __init__(self, refused: click.UsageError) -> None:
        super().__init__(" ".join(refused.format_message().split()), refused.ctx)
        param = getattr(refused, "param", None)
        named = getattr(refused, "option_name", None)
        self.field = (param.opts[0] if param.opts else param.name) if param else named or "command line"
        self.help = f" (see {refused.ctx.command_path} --help)" if refused.ctx else ""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.field}: {self.message.rstrip('.')}{self.help} [usage]", err=True)


class ReaderGone:
    """Standard output that drops what it is given once its reader has stopped reading (`grievance submit | head
    -1`): the verb has already done its work, so it finishes and exits with its own code, not a broken pipe's."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self._gone = True
        # What is still buffered would fail again as the interpreter exits; send the descriptor nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Commands(click.Group):
    """The `grievance` group, whose command-line refusals are one line like the rest."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as refused:
            raise OneLineError(refused) from None

    def invoke(self, ctx: click.Context) -> Any:
        if not isinstance(sys.stdout, ReaderGone) and hasattr(sys.stdout, "fileno"):
            sys.stdout = ReaderGone(sys.stdout)
        try:
            return super().invoke(ctx)
        except OneLineError:
            raise
        except click.UsageError as refused:
            raise OneLineError(refused) from None
        except OSError as e:
            # A file a verb reads or writes (a key, a token file, an export) that is missing, unwritable or in a
            # directory that does not exist: what the system said, about which file, as one line.
            where = f"{e.filename}: " if e.filename else ""
            fail(f"{where}{e.strerror or e}", EXIT_INFRASTRUCTURE)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="grievance-chain")
def main() -> None:
    """The party-building service chain's grievance engine (党建服务链条).

    Settings come from the environment: GRIEVANCE_DATABASE_URL (default sqlite:///grievances.db;
    or postgresql://user@host/db), GRIEVANCE_CHART, GRIEVANCE_DURABILITY (full, normal, off),
    GRIEVANCE_LIMITS_HOURS, GRIEVANCE_LOG_FORMAT. With direct access to the store, this is an
    operator's tool: what it is told, it does as the actor it names.
    """


for verbs in (grievances, supervisors, kafka, audit, transparency, auditors, serving, check, resident_loop, roster):
    verbs.register(main)
