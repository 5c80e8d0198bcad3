"""Re-record the sandbox cassettes of tests/test_cassettes.py.

    .venv/bin/python tests/cassette_recorder.py            # all of them
    .venv/bin/python tests/cassette_recorder.py -k faults  # extra arguments go to pytest

What it does: serves ``Sandbox(customers=2000, seed=0)`` on a loopback port, puts its URL in
``CAPFRAME_RECORD_URL`` and runs ``pytest tests/test_cassettes.py --record-mode=rewrite -m "not live"``.
Each sandbox test then deletes its cassette, talks to the server and writes a new one, scrubbed by
``capframe.testing`` (the faults test serves its own sandbox, with the faults it asserts on). The
tests check the recorded run as they check a replay, and the credential scan runs last.

Afterwards: run ``pytest tests/test_cassettes.py`` (replay, offline), review ``git diff cassettes/``
and commit the cassettes. Re-record when the sandbox or the request capframe sends changes: the
cassettes hold the sandbox's answers of the day they were recorded, and some tests pin values of it.

Not touched: the documented exchange (``cassettes/test_cassettes/test_documented_exchange.yaml``,
hand-built from the Get Customers Bulk page) and the other ``live`` tests; see tests/test_live.py
for recording against a real cluster.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from capframe.sandbox import Sandbox, serve

TESTS = Path(__file__).resolve().parent


def main(args: list[str]) -> int:
    with serve(Sandbox(customers=2000, seed=0)) as server:
        os.environ["CAPFRAME_RECORD_URL"] = server.url
        print(f"recording against the sandbox at {server.url}", flush=True)
        return int(
            pytest.main(
                [
                    str(TESTS / "test_cassettes.py"),
                    "--record-mode=rewrite",
                    "-m",
                    "not live",
                    # capframe (and pandera's typeguard) were imported before pytest started: nothing to rewrite.
                    "-W",
                    "ignore::pytest.PytestAssertRewriteWarning",
                    *args,
                ]
            )
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
