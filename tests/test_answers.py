"""capframe._answers: what a pull does before its answers are tidied."""

from __future__ import annotations

import subprocess
import sys

# A fresh process: pandera is not imported yet by anything else.
_CHILD = """
import sys, threading
import capframe
from capframe._answers import import_validation
assert "pandera" not in sys.modules
import_validation()
import_validation()
workers = [t for t in threading.enumerate() if t is not threading.main_thread()]
for t in workers:
    t.join()
print(len(workers), "capframe.schemas" in sys.modules)
"""


def test_the_models_are_imported_once_on_a_worker_thread_when_a_pull_starts() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], check=True, capture_output=True, text=True)
    assert done.stdout.split() == ["1", "True"]
