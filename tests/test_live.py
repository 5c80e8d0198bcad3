"""Recording against a real Capillary cluster. Never needed in CI: without a cluster these tests skip.

To record (the cassettes go to cassettes/test_live/, scrubbed by capframe.testing)::

    export CAPILLARY_HOST=eu                      # a cluster alias or https:// URL
    export CAPILLARY_USERNAME=<till code> CAPILLARY_PASSWORD=<till password>
    #   or CAPILLARY_CLIENT_KEY=... CAPILLARY_CLIENT_SECRET=...   (OAuth)
    export CAPILLARY_TEST_IDS=565338404,566135941 # customer ids of your org, comma-separated
    export CAPILLARY_TEST_SOURCE=INSTORE          # optional, INSTORE by default
    export CAPFRAME_SCRUB_KEY=<a private random string>   # so placeholders cannot be traced back
    .venv/bin/python -m pytest -m live --record-mode=rewrite tests/test_live.py tests/test_cassettes.py

``-m live`` also re-asks the documented exchange (tests/test_cassettes.py), into its own
``test_documented_exchange-live.yaml``. Read the new cassettes before committing them: names,
mobiles, emails and identifiers should all be placeholders; tests/test_cassettes.py scans for
credentials.
"""

from __future__ import annotations

import os

import polars as pl
import pytest
from vcr.cassette import Cassette

import capframe

pytestmark = [
    pytest.mark.live,
    pytest.mark.vcr,
    # Decided before any fixture runs: --record-mode=rewrite deletes the cassette while setting up.
    pytest.mark.skipif(
        not (os.environ.get("CAPILLARY_HOST") and os.environ.get("CAPILLARY_TEST_IDS")),
        reason="live: set CAPILLARY_HOST, its credentials and CAPILLARY_TEST_IDS to record against a cluster",
    ),
]


@pytest.fixture(autouse=True)
def _only_while_recording(record_mode: str) -> None:
    if record_mode == "none":
        pytest.skip("live: runs only while recording, e.g. with --record-mode=rewrite")


def _test_ids() -> list[int]:
    return [int(part) for part in os.environ["CAPILLARY_TEST_IDS"].replace(",", " ").split()]


def test_live_customers(vcr: Cassette) -> None:
    """Every id asked comes back once, found or with the API's error code, in valid tables."""
    ids = _test_ids()
    source = os.environ.get("CAPILLARY_TEST_SOURCE", "INSTORE")
    tables = capframe.fetch_customer_tables(ids, source, client=capframe.Client.from_env(), progress=False)

    assert tables.customers["customer_id"].to_list() == list(dict.fromkeys(ids))
    failed = tables.customers.filter(~pl.col("success"))
    assert failed["error_code"].null_count() == 0, "a failed id without the API's error code"
    assert len(vcr) >= 1
