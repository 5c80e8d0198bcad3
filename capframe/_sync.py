"""Run capframe's async core from sync code, including inside Jupyter's already running loop.

Without a running loop, ``asyncio.run`` does the job (and Ctrl-C cancels the pull's tasks).
With one (a notebook cell), the event loop is not patched: the coroutine runs on a worker thread
with its own loop, and Ctrl-C in the calling thread cancels it there and waits for it to unwind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:  # outside the except block, so errors are not chained to "no running event loop"
        return asyncio.run(coroutine)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="capframe-loop", daemon=True)
    thread.start()
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        while True:
            try:
                return future.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        future.cancel()
        concurrent.futures.wait([future], timeout=10)
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
