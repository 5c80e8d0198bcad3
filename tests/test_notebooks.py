"""capframe in notebooks: the notebooks run and stay stripped, the report reruns byte for byte, and the
things a notebook user sees (reprs, progress bars, sync calls inside Jupyter's running loop) behave.

The notebooks run in a ``python3`` Jupyter kernel: ipykernel, installed with capframe's ``test`` extra,
provides it (jupyter_client starts it with the interpreter running the tests). They are also run as
tests of their own by nbmake (``pytest --nbmake``).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import capframe
from capframe import _progress
from capframe.sandbox import Sandbox

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REPORT = NOTEBOOKS / "customer-report.ipynb"
REPORT_IDS = NOTEBOOKS / "report-ids.txt"
REPORT_PARENTS = NOTEBOOKS / "report-parents.txt"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _execute(notebook: Path, cwd: Path) -> Any:
    """Run a notebook top to bottom in a fresh kernel, in ``cwd``; return it with its outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _outputs(nb: Any) -> list[tuple[str, list[Any]]]:
    return [(cell.source, cell.get("outputs", [])) for cell in nb.cells if cell.cell_type == "code"]


def _stderr(nb: Any) -> list[str]:
    """Text a notebook printed on stderr: warnings land there."""
    return [o["text"] for _, outputs in _outputs(nb) for o in outputs if o.get("name") == "stderr"]


def _requests_sent(nb: Any) -> int:
    texts = [o["text"] for _, outputs in _outputs(nb) for o in outputs if o.get("name") == "stdout"]
    counts = [int(m.group(1)) for t in texts if (m := re.search(r"requests sent by this run: (\d+)", t))]
    assert len(counts) == 1, f"the report should print its request count once, printed: {texts}"
    return counts[0]


def _run_unsaid(outputs: Any) -> str:
    """Outputs without what a repr says of its run ("this run: 500 customer ids fetched, 6 requests sent"),
    which a rerun from the snapshot says otherwise."""
    return re.sub(r"this run: [^)<]*", "this run: ...", str(outputs))  # the text repr, and the HTML one


# --- the reproducible report ----------------------------------------------------------------------


def test_report_rerun_offline_gives_byte_identical_tables_and_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_dir = tmp_path / "elsewhere"
    monkeypatch.setenv("CAPFRAME_REPORT_DIR", str(report_dir))  # the kernel inherits it
    shutil.copy(REPORT, tmp_path)
    shutil.copy(REPORT_IDS, tmp_path)
    shutil.copy(REPORT_PARENTS, tmp_path)
    output, snapshot = report_dir / "report-output", report_dir / "report-snapshot"

    first = _execute(tmp_path / REPORT.name, tmp_path)
    written = {path.name: path.read_bytes() for path in sorted(output.iterdir())}
    stored = {path: path.read_bytes() for path in sorted(snapshot.rglob("*")) if path.is_file()}
    shutil.rmtree(output)

    second = _execute(tmp_path / REPORT.name, tmp_path)
    rewritten = {path.name: path.read_bytes() for path in sorted(output.iterdir())}

    assert {"customers.parquet", "provenance.parquet", "failed.parquet"} <= set(written)
    # Every parent listed has its family size, a parent with no children too (from families.parents).
    sizes = pl.read_parquet(io.BytesIO(written["family_sizes.parquet"]))
    assert sizes["parent_number"].to_list() == list(range(1, 8))
    assert 0 in sizes["children"].to_list()
    assert len([name for name in written if name.endswith(".png")]) == 2
    assert rewritten.keys() == written.keys()
    changed = [name for name in written if rewritten[name] != written[name]]
    assert not changed, f"a rerun from the snapshot changed {changed}"
    assert {path: path.read_bytes() for path in sorted(snapshot.rglob("*")) if path.is_file()} == stored

    # The first run fetched; the rerun sent no request at all: it reads the snapshot only.
    assert _requests_sent(first) > 0
    assert _requests_sent(second) == 0
    # Apart from that count, and what a bundle's repr says of its run, the rerun's notebook shows
    # exactly what the first run showed.
    same = [(src, _run_unsaid(out)) for src, out in _outputs(first) if "requests sent by this run" not in str(out)]
    again = [(src, _run_unsaid(out)) for src, out in _outputs(second) if "requests sent by this run" not in str(out)]
    assert "this run: 500 customer ids from snapshot, 0 fetched, 0 requests sent" in str(_outputs(second))
    assert again == same
    assert not _stderr(first)
    assert not _stderr(second)
    # Nothing was written beside the notebook: the snapshot and the output went where the variable said.
    assert {path.name for path in tmp_path.iterdir()} == {
        REPORT.name,
        REPORT_IDS.name,
        REPORT_PARENTS.name,
        "elsewhere",
    }

    # What the report states as its provenance.
    provenance = dict(pl.read_parquet(output / "provenance.parquet").rows())
    failed = pl.read_parquet(output / "failed.parquet")
    org = Sandbox(customers=10_000, seed=0)
    assert provenance["host"] == Sandbox.BASE_URL
    assert provenance["source"] == "INSTORE"
    assert provenance["capframe_version"] == capframe.__version__
    assert provenance["asked"] == "500"
    assert provenance["failed"] == str(failed.height)
    assert provenance["failed ids"] == ", ".join(map(str, failed["customer_id"]))
    assert set(org.unknown_ids(5)) <= set(failed["customer_id"])
    assert 564332013 in failed["customer_id"]  # PII-deleted

    # Shares are over the returned customers: the API sends the segments of 8065 ids too, and over
    # all segment rows, Activity/Active would count 67 customers (15.62%).
    segments = pl.read_parquet(output / "segments_summary.parquet")
    active = segments.filter(segment="Activity segment", value="Active").row(0, named=True)
    returned = pl.read_parquet(output / "customers.parquet")["success"].sum()
    assert (returned, active["customers"], active["percent"]) == (429, 60, 13.99)
    by_loyalty = pl.read_parquet(output / "by_loyalty.parquet")
    assert by_loyalty["customers"].sum() == 429

    # What a reader sees: the provenance line as HTML (an HTML export shows no literal ** and no link
    # to a host), and "not applicable" where a share has no meaning, not 0.
    shown = [o.get("data", {}) for _, outputs in _outputs(first) for o in outputs]
    line = next(d["text/html"] for d in shown if "Data fetched" in d.get("text/html", ""))
    assert "**" not in line
    assert "<a " not in line
    assert "<code>https://sandbox.capframe.invalid</code>" in line
    coverage = pl.read_parquet(output / "coverage.parquet")
    assert coverage.filter(type="externalId")["channel"].to_list() == [None]
    assert any("not applicable" in d.get("text/plain", "") for d in shown)


def test_a_complete_snapshot_sends_no_request_even_when_the_cluster_is_unreachable(tmp_path: Path) -> None:
    """What makes the report work offline: every batch is read from the cache before any request."""
    org = Sandbox(customers=1_000, seed=0)
    host = "http://127.0.0.1:9"  # loopback, discard port: nothing answers there
    ids = [*org.customer_ids(250), *org.pii_deleted_ids()[:2], *org.unknown_ids(3)]
    online = capframe.Client(host, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, transport=org.transport())
    first = capframe.fetch_customer_tables(ids, "INSTORE", client=online, cache_dir=tmp_path, progress=False)
    assert org.request_log

    attempts: list[httpx.Request] = []

    def unreachable(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("the cluster is unreachable", request=request)

    offline = capframe.Client(
        host,
        username=Sandbox.USERNAME,
        password=Sandbox.PASSWORD,
        max_retries=0,
        transport=httpx.MockTransport(unreachable),
    )
    again = capframe.fetch_customer_tables(ids, "INSTORE", client=offline, cache_dir=tmp_path, progress=False)
    assert attempts == []
    assert again.provenance == first.provenance
    for name, frame in first.tables().items():
        assert_frame_equal(again.tables()[name], frame)


def test_the_suite_runs_the_report_in_a_temporary_folder() -> None:
    """nbmake runs the report where it lies (in notebooks/): the suite names a temporary folder for its
    snapshot and output (tests/conftest.py), which the test above shows the report uses."""
    folder = Path(os.environ["CAPFRAME_REPORT_DIR"]).resolve()
    assert folder.is_dir()
    assert not folder.is_relative_to(NOTEBOOKS.parent)


# --- notebooks in git -----------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(notebook: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, (
        f"{notebook.name}: cells {dirty} have outputs or execution counts; run `nbstripout notebooks/*.ipynb`"
    )
    assert "widgets" not in nb.metadata, f"{notebook.name} holds widget state; run `nbstripout notebooks/*.ipynb`"


def test_nbstripout_would_change_nothing() -> None:
    """The same rules nbstripout applies as a git filter (`nbstripout --install`) or by hand."""
    pytest.importorskip("nbstripout")
    notebooks = sorted(map(str, NOTEBOOKS.glob("*.ipynb")))
    result = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *notebooks], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"run `nbstripout notebooks/*.ipynb`:\n{result.stdout}{result.stderr}"


def test_report_has_one_parameters_cell() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(REPORT, as_version=4)
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = set(re.findall(r"^([A-Z_]+) =", tagged[0].source, flags=re.MULTILINE))
    assert {"IDS_FILE", "SOURCE", "DATA", "SNAPSHOT_DIR"} <= names


def test_quickstart_runs_in_a_fresh_kernel_without_warnings_with_widget_progress_bars(tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    shutil.copy(QUICKSTART, tmp_path)
    nb = _execute(tmp_path / QUICKSTART.name, tmp_path)
    assert not _stderr(nb), "the quickstart printed on stderr (a warning?)"
    data = [o.get("data", {}) for _, outputs in _outputs(nb) for o in outputs]
    bars = [d["text/plain"] for d in data if WIDGET in d]
    assert bars, "a pull of many requests should show a widget progress bar in Jupyter"
    # The saved text of each bar is its final state, not the 0% it started at.
    assert all("100%" in bar for bar in bars), bars
    assert any("<strong>CustomerTables</strong>" in d.get("text/html", "") for d in data)
    assert any("<strong>ChildrenTables</strong>" in d.get("text/html", "") for d in data)
    assert sum("image/png" in d for d in data) >= 3


# --- what a notebook user sees --------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> capframe.Client:
    return capframe.Client.sandbox(customers=2_000, seed=0)


def test_customer_tables_html_repr_names_tables_shapes_and_failed_ids(client: capframe.Client) -> None:
    org = client.sandbox_org
    assert org is not None
    failing = [org.pii_deleted_ids()[0], *org.unknown_ids(2)]
    tables = capframe.fetch_customer_tables([*org.customer_ids(30), *failing], "INSTORE", client=client)
    html = tables._repr_html_()
    for name, frame in tables.tables().items():
        assert f"<tr><td><code>{name}</code></td><td>{frame.height:,}</td><td>{frame.width}</td></tr>" in html
    assert set(failing) <= set(tables.failed_ids)
    assert f"failed ids: {len(tables.failed_ids)} (" in html
    for failed_id in tables.failed_ids[:5]:
        assert str(failed_id) in html
    assert "INSTORE from https://sandbox.capframe.invalid" in html
    text = repr(tables)
    assert text.startswith("CustomerTables(customers=33x")
    assert f"failed ids: {len(tables.failed_ids)} (" in text

    empty = capframe.CustomerTables.empty()
    assert "failed ids: none" in empty._repr_html_()
    assert "<code>customers</code></td><td>0</td>" in empty._repr_html_()


def test_children_tables_html_repr(client: capframe.Client) -> None:
    children = capframe.fetch_children_tables(("mobile", "917799889933"), client=client)
    html = children._repr_html_()
    assert "<strong>ChildrenTables</strong>" in html
    assert f"<code>children</code></td><td>{children.children.height:,}</td>" in html
    assert "failed parents: none" in html  # parents, however given: an identifier has no customer id


def test_errors_have_readable_reprs(client: capframe.Client) -> None:
    with pytest.raises(capframe.ParentNotFoundError) as caught:
        capframe.fetch_children(("mobile", "910000000000"), client=client)
    assert repr(caught.value).startswith("ParentNotFoundError('the API does not know parent #1")
    assert "910000000000" not in str(caught.value)  # never the identifier: personal data
    with pytest.raises(capframe.InvalidArgumentError) as bad:
        capframe.fetch_customers([1], "NOWHERE", client=client)
    assert "unknown source 'NOWHERE'" in str(bad.value)


def test_sync_api_inside_a_running_event_loop_works_without_warnings(client: capframe.Client) -> None:
    """A Jupyter cell runs inside the kernel's event loop; the sync API must neither fail nor warn there."""
    org = client.sandbox_org
    assert org is not None

    async def cell() -> tuple[pl.DataFrame, pl.DataFrame]:
        customers = capframe.fetch_customers(org.customer_ids(700), "INSTORE", client=client, progress=False)
        children = capframe.fetch_children(org.parents()[:3], client=client, progress=False)
        return customers, children

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        customers, children = asyncio.run(cell())
        outside = capframe.fetch_customers(org.customer_ids(700), "INSTORE", client=client, progress=False)
    assert customers.height == 700
    assert children.height > 0
    assert_frame_equal(customers, outside)


def test_progress_true_without_a_notebook_is_a_text_bar_without_warnings(
    client: capframe.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    org = client.sandbox_org
    assert org is not None

    async def cell() -> pl.DataFrame:
        return capframe.fetch_customers(org.customer_ids(600), "INSTORE", client=client, batch_size=100, progress=True)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(cell())
    err = capsys.readouterr().err
    assert "customers (INSTORE)" in err
    assert "6/6" in err


def test_progress_in_jupyter_without_ipywidgets_falls_back_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Jupyter frontend without ipywidgets gets a text bar: no 'IProgress not found' warning or error."""
    monkeypatch.setattr(_progress, "_in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = _progress.progress_bar(10, "customers (INSTORE)", True)
        try:
            from tqdm.std import tqdm

            assert type(bar) is tqdm
            bar.update(10)
        finally:
            bar.close()


def _documented(page: str, program: str) -> list[str]:
    """The commands a docs page shows in its console blocks that start with ``program``."""
    blocks = re.findall(r"```console\n(.*?)```", (NOTEBOOKS.parent / "docs" / page).read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith(f"{program} ")]


def test_the_documented_papermill_command_runs_as_written_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/reports.md's command, run as written in a copy of the repository's notebooks/, as a user
    would (no CAPFRAME_REPORT_DIR). With SOURCE ECOMMERCE most ids are 'not in this source' yet come
    with segments: counted over all rows, the shares reached 216%; over the returned ones, at most 100%."""
    (command,) = _documented("reports.md", "papermill")
    monkeypatch.delenv("CAPFRAME_REPORT_DIR")
    copy = tmp_path / "notebooks"
    copy.mkdir()
    for name in (REPORT, REPORT_IDS, REPORT_PARENTS):
        shutil.copy(name, copy)
    # The papermill installed beside this Python (the test extra has it), as a shell finds it.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    assert (tmp_path / "out.ipynb").is_file()
    assert (copy / "ecommerce-snapshot").is_dir()
    output = copy / "report-output"
    assert dict(pl.read_parquet(output / "provenance.parquet").rows())["source"] == "ECOMMERCE"
    segments = pl.read_parquet(output / "segments_summary.parquet")
    assert segments.height > 0
    assert segments["percent"].max() <= 100  # type: ignore[operator]
    # Each segment's values add up to at most the returned customers.
    returned = pl.read_parquet(output / "customers.parquet")["success"].sum()
    assert segments.group_by("segment").agg(pl.col("customers").sum())["customers"].max() <= returned  # type: ignore[operator]


@pytest.mark.parametrize("parameter", ["IDS_FILE", "PARENTS_FILE"])
def test_a_parameter_file_that_is_not_there_is_an_error_naming_it_and_the_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parameter: str
) -> None:
    """The report's own check, run as the report runs it (the data cell defines it), without a kernel."""
    nbformat = pytest.importorskip("nbformat")
    cell = next(c.source for c in nbformat.read(REPORT, as_version=4).cells if "def parameter_file" in c.source)
    definition = re.search(r"^def parameter_file.*?(?=^\S)", cell, re.S | re.M)
    assert definition is not None
    namespace: dict[str, Any] = {"Path": Path}
    exec(definition.group(), namespace)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as missing:
        namespace["parameter_file"]("report-ids.txt", parameter)
    message = str(missing.value)
    assert all(part in message for part in ("'report-ids.txt'", str(tmp_path), f"-p {parameter} ", "--cwd")), message
    (tmp_path / "report-ids.txt").write_text("1\n")
    assert namespace["parameter_file"]("report-ids.txt", parameter) == Path("report-ids.txt")


def test_hypothesis_writes_into_the_suites_temporary_folder() -> None:
    from hypothesis.configuration import storage_directory

    assert not storage_directory("constants").path.resolve().is_relative_to(NOTEBOOKS.parent)


def test_report_against_a_cluster_reruns_from_its_snapshot_with_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATA = "env" against a cluster (the sandbox served over HTTP): the second run sends no request and
    writes byte-identical files; a third with only CAPILLARY_HOST set (no username or password), the same."""
    import papermill  # type: ignore[import-untyped]

    from capframe.sandbox import serve

    org = Sandbox(customers=10_000, seed=0)
    monkeypatch.setenv("CAPFRAME_REPORT_DIR", str(tmp_path))
    for name in (REPORT_IDS, REPORT_PARENTS):
        shutil.copy(name, tmp_path)
    output = tmp_path / "report-output"

    def run() -> dict[str, bytes]:
        papermill.execute_notebook(
            str(REPORT), str(tmp_path / "out.ipynb"), parameters={"DATA": "env"}, cwd=str(tmp_path),
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip
        written = {path.name: path.read_bytes() for path in sorted(output.iterdir())}
        shutil.rmtree(output)
        return written

    with serve(org) as server:
        monkeypatch.setenv("CAPILLARY_HOST", server.url)
        monkeypatch.setenv("CAPILLARY_USERNAME", Sandbox.USERNAME)
        monkeypatch.setenv("CAPILLARY_PASSWORD", Sandbox.PASSWORD)
        first = run()
        assert len(org.request_log) > 0
        assert {"families.parquet", "family_sizes.parquet"} <= set(first)
        assert pl.read_parquet(io.BytesIO(first["family_sizes.parquet"]))["children"].sum() > 0
        sent = len(org.request_log)
        assert run() == first
        monkeypatch.delenv("CAPILLARY_USERNAME")
        monkeypatch.delenv("CAPILLARY_PASSWORD")
        assert run() == first
        assert len(org.request_log) == sent


def test_report_outcome_shares_add_up_to_100_percent_when_the_ids_file_repeats_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ids file pasted together from two exports repeats ids; capframe asks each once, one row each.
    Divided by the ids file's lines, the outcome shares added up to less than 100%."""
    import papermill  # type: ignore[import-untyped]

    monkeypatch.setenv("CAPFRAME_REPORT_DIR", str(tmp_path))
    org = Sandbox(customers=10_000, seed=0)
    unique = [*org.customer_ids(40), *org.unknown_ids(3), org.pii_deleted_ids()[0]]
    repeated = [*unique, *unique[:20], *unique[-3:]]
    (tmp_path / "repeated-ids.txt").write_text("# ids, some twice\n" + "\n".join(map(str, repeated)) + "\n")
    shutil.copy(REPORT_PARENTS, tmp_path)
    papermill.execute_notebook(
        str(REPORT), str(tmp_path / "out.ipynb"), parameters={"IDS_FILE": "repeated-ids.txt"}, cwd=str(tmp_path),
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    printed = (tmp_path / "out.ipynb").read_text()
    assert f"{len(repeated)} ids in repeated-ids.txt ({len(repeated) - len(unique)} repeated" in printed
    output = tmp_path / "report-output"
    assert dict(pl.read_parquet(output / "provenance.parquet").rows())["asked"] == str(len(unique))
    outcomes = pl.read_parquet(output / "outcomes.parquet")
    assert outcomes["ids"].sum() == len(unique)
    # Each share is rounded to hundredths: their sum is 100 within half a hundredth per row.
    assert outcomes["percent"].sum() == pytest.approx(100, abs=0.005 * outcomes.height)


def test_report_takes_a_file_of_mobiles_and_shows_no_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IDENTIFIER = "mobile": the ids file holds mobiles, looked up first; the lookups table is written
    with every value, and the notebook's outputs count them without showing one."""
    import papermill  # type: ignore[import-untyped]

    monkeypatch.setenv("CAPFRAME_REPORT_DIR", str(tmp_path))
    org = Sandbox(customers=10_000, seed=0)
    identifiers = org.identifiers(200)
    in_instore = {customer for customer, source, _, _ in identifiers if source == "INSTORE"}
    mobiles = [(customer, value) for customer, _, kind, value in identifiers if kind == "mobile"]
    here = [value for customer, value in mobiles if customer in in_instore][:8]
    elsewhere = next(value for customer, value in mobiles if customer not in in_instore)  # not in INSTORE
    values = [*here, elsewhere, "910000000009", here[0]]  # one unknown, one repeated
    (tmp_path / "mobiles.txt").write_text("# campaign export\n" + "\n".join(values) + "\n")
    shutil.copy(REPORT_PARENTS, tmp_path)
    parameters = {"IDS_FILE": "mobiles.txt", "IDENTIFIER": "mobile"}
    papermill.execute_notebook(
        str(REPORT), str(tmp_path / "out.ipynb"), parameters=parameters, cwd=str(tmp_path),
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    printed = (tmp_path / "out.ipynb").read_text()
    assert f"{len(values)} mobile values in mobiles.txt (1 repeated" in printed
    assert not [value for value in set(values) if value in printed]
    output = tmp_path / "report-output"
    lookups = pl.read_parquet(output / "lookups.parquet")
    assert lookups["identifier_value"].to_list() == values
    assert lookups["found"].to_list()[-3:] == [False, False, True]  # another source's, unknown, repeated
    outcomes = pl.read_parquet(output / "lookup_outcomes.parquet")
    assert outcomes["values"].sum() == len(values)
    found = lookups.filter("found")["customer_id"].n_unique()
    assert 0 < found == pl.read_parquet(output / "customers.parquet").height
