"""Shared fixtures: the cassette configuration, a loopback sandbox, fast retry settings."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

import capframe.testing
from capframe.sandbox import Sandbox, SandboxServer, serve

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
_SCRATCH = pytest.StashKey[str]()
_SET_VARIABLES = pytest.StashKey[list[str]]()  # environment variables pytest_configure set
_SCRATCH_INPUT = "capframe_scratch"


def pytest_configure(config: pytest.Config) -> None:
    """The suite writes only to a temporary folder, never into the source tree:
    - the report notebook, run by nbmake where it lies, keeps its snapshot and output in the folder
      ``CAPFRAME_REPORT_DIR`` names (a snapshot left in ``notebooks/`` would be read by the next
      manual run of the report);
    - hypothesis keeps its files (example database, caches) there instead of ``.hypothesis/``.
    The xdist workers share the controller's folder: hypothesis parses every local module for the
    constants it draws, and caches them there, so one worker parses them for all.

    Polars runs on one thread in each process the suite starts (unless ``POLARS_MAX_THREADS`` is set):
    the workers are the suite's parallelism, and a pool of a thread a core in each of them, on 2 cores,
    spent a fifth of the suite's system time handing work between idle threads (sched_yield, futex)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        config.stash[_SCRATCH] = scratch = tempfile.mkdtemp(prefix="capframe-tests-")
    else:
        scratch = workerinput[_SCRATCH_INPUT]
    set_hypothesis_home_dir(os.path.join(scratch, "hypothesis"))
    set_here = config.stash[_SET_VARIABLES] = []
    if "CAPFRAME_REPORT_DIR" not in os.environ:
        os.environ["CAPFRAME_REPORT_DIR"] = os.path.join(scratch, "report")
        os.mkdir(os.environ["CAPFRAME_REPORT_DIR"])
        set_here.append("CAPFRAME_REPORT_DIR")
    if "POLARS_MAX_THREADS" not in os.environ:
        os.environ["POLARS_MAX_THREADS"] = "1"
        set_here.append("POLARS_MAX_THREADS")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Each xdist worker is handed the controller's temporary folder (``pytest_configure``)."""
    node.workerinput[_SCRATCH_INPUT] = node.config.stash[_SCRATCH]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers more than the cores. Many tests wait (a notebook's kernel, a killed
    subprocess, a sandbox server's latency, a timeout); on 2 cores, 4 workers ran the suite in 1 min 36 s
    where 2 took 1 min 53 s. Not twice the cores: each worker pays the collection (about 4 s of CPU)."""
    return len(os.sched_getaffinity(0)) + 2 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 2


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SCRATCH in config.stash:
        shutil.rmtree(config.stash[_SCRATCH], ignore_errors=True)
    for name in config.stash.get(_SET_VARIABLES, []):
        del os.environ[name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A ``live`` test records against a real cluster: when recording without one, skip it, so that
    its committed cassette is kept (``--record-mode=rewrite`` would delete it before the test runs)."""
    if (config.getoption("--record-mode") or "none") == "none" or os.environ.get("CAPILLARY_HOST"):
        return
    skip = pytest.mark.skip(reason="re-recording a live cassette needs CAPILLARY_HOST and credentials")
    for item in items:
        if item.get_closest_marker("live"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return capframe.testing.vcr_config()


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """``cassettes/<test module>/``: one folder per module, so equal test names cannot collide."""
    return str(CASSETTES / request.path.stem)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    """The sandbox served over real HTTP on a loopback port."""
    with serve(Sandbox(customers=2000, seed=0)) as server:
        yield server


@pytest.fixture
def fast() -> dict[str, Any]:
    """Client options for quick retries in tests."""
    return {"retry_backoff": 0.01, "max_retry_after": 0.05}
