"""The cyclic garbage collector held back while a batch is worked through.

A batch (a page of the log for a projection, a batch of commands for the chain) makes thousands of objects that
stay alive until it ends; the collector, run every 700 allocations, finds them all alive, moves them to older
generations and goes over them again and again. Paused for the batch, it runs once after it and finds only
what is left. Reference counting frees everything else meanwhile, as always.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cyclic collector back for the block, unless someone else has it off already (then leave it so)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
