"""The processes a rebuild of the dashboard's views projects its other parts of the log in (`runner.Part`): one
interpreter a core, since projecting is Python's work and one interpreter runs on one core at a time."""

from __future__ import annotations

import multiprocessing
import pickle
import queue
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from eventsourcing.persistence import OperationalError

from adapters.settings import Settings
from projections.dashboard.runner import TALLIED_ROWS, DashboardProjection, Part

# How often `join` looks whether a process ended without a word (killed, say), in seconds.
_LOOK_EVERY = 0.2


class ProcessParts:
    """`ElsewhereParts` as processes of their own, each opening the store from these settings (spawned, not
    forked: a fork would share this process's connections and threads)."""

    def __init__(self, settings: Settings, processes: int, *, page_size: int) -> None:
        self.processes = processes
        self._env = settings.as_env()
        self._page_size = page_size
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[int, BaseProcess] = {}
        self._results: Any = None

    def start(self, parts: Sequence[Part]) -> None:
        """Start one process a part."""
        self._results = self._context.Queue()
        for part in parts:
            process = self._context.Process(
                target=_project_part, args=(self._env, part, self._page_size, self._results),
                name=f"rebuild part {part.index} of {part.parts}", daemon=True,
            )  # fmt: skip
            process.start()
            self._running[part.index] = process

    def join(self) -> int:
        """Wait for every part; the events they projected. The first error a part met is raised here (the others
        are then stopped), and so is a part whose process ended without saying how it went."""
        projected = 0
        while self._running:
            try:
                index, events, error = self._results.get(timeout=_LOOK_EVERY)
            except queue.Empty:
                ended = [p for p in self._running.values() if not p.is_alive()]
                if not ended:
                    continue
                try:  # what it said before it ended may still be on its way
                    index, events, error = self._results.get(timeout=1)
                except queue.Empty:
                    gone = ended[0]
                    raise OperationalError(f"{gone.name} ended (exit code {gone.exitcode}) unfinished") from None
            self._running.pop(index).join()
            if error is not None:
                raise error
            projected += events
        return projected

    def stop(self) -> None:
        """End the processes still running (a part failed, or this process's own)."""
        for process in self._running.values():
            process.terminate()
        for process in self._running.values():
            process.join()
        self._running.clear()


def _project_part(env: dict[str, str], part: Part, page_size: int, results: Any) -> None:
    """A part's process: open the store as the settings say, project the part into the views being rebuilt, and
    report the events projected, or what went wrong."""
    from adapters.composition import build_chain, build_views
    from adapters.logs import configure_logging

    try:
        settings = Settings.from_env(env)
        configure_logging(settings.log_format, settings.log_level or "warning")
        chain = build_chain(settings)
        try:
            views = build_views(settings).beside()
            views.expect_chart(chain.chart)  # the part's pages are refused if the rebuild started on another chart
            projection = DashboardProjection(chain, views, page_size=page_size, tallied_rows=TALLIED_ROWS, part=part)
            events = projection.catch_up()
        finally:
            chain.close()
    except Exception as error:
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # an error that does not go through a pipe whole goes as its text
            error = RuntimeError(f"{type(error).__name__}: {error}")
        results.put((part.index, None, error))
        return
    results.put((part.index, events, None))
