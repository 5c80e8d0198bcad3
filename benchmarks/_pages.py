"""Shared helpers for the benchmarks: sandbox response bodies (cached on disk), timing, memory.

Pages are the exact bytes the sandbox answers to ``POST /v2/bulk/getCustomers?source=...`` with a
JSON array of ids, made by calling ``Sandbox.handle`` directly (no client, no network). They are
cached under the temp dir, keyed by the sandbox's source code, so a rerun reads them back in a
moment and a change to the sandbox makes new ones.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import resource
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: benchmark the working tree
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from _report import revision  # noqa: E402

from capframe.sandbox import Sandbox  # noqa: E402

__all__ = [
    "ROOT",
    "auth_header",
    "best_of",
    "child_env",
    "customer_pages",
    "fmt_table",
    "peak_rss_mb",
    "revision",
]

_CACHE = Path(tempfile.gettempdir()) / "capframe-bench-pages"
_FRAME = struct.Struct("<Q")


def auth_header() -> str:
    """Capillary Basic auth as the sandbox expects it: base64(till code + ':' + md5hex(password))."""
    digest = hashlib.md5(Sandbox.PASSWORD.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{Sandbox.USERNAME}:{digest}".encode()).decode()


def _sandbox_fingerprint() -> str:
    folder = ROOT / "capframe" / "sandbox"
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _write(path: Path, pages: Sequence[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        for page in pages:
            out.write(_FRAME.pack(len(page)))
            out.write(page)
    os.replace(tmp, path)


def _read(path: Path) -> list[bytes]:
    data = path.read_bytes()
    pages, pos = [], 0
    while pos < len(data):
        (n,) = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        pages.append(data[pos : pos + n])
        pos += n
    return pages


def customer_pages(
    n: int, *, batch: int = 100, seed: int = 0, source: str = "INSTORE", verbose: bool = True
) -> list[bytes]:
    """Get Customers Bulk bodies for the first ``n`` ids of ``Sandbox(customers=n, seed=seed)``, ``batch`` ids each."""
    fingerprint = _sandbox_fingerprint()
    path = _CACHE / f"{fingerprint}-n{n}-b{batch}-s{seed}-{source}.bin"
    if path.exists():
        return _read(path)
    for stale in _CACHE.glob("*.bin"):  # pages of an older sandbox will not be read again
        if not stale.name.startswith(fingerprint):
            stale.unlink(missing_ok=True)
    started = time.perf_counter()
    sandbox = Sandbox(customers=n, seed=seed)
    ids = sandbox.customer_ids(n)
    headers = {"Authorization": auth_header()}
    url = f"{Sandbox.BASE_URL}/v2/bulk/getCustomers?source={source}"
    pages = []
    for i in range(0, len(ids), batch):
        response = sandbox.handle(httpx.Request("POST", url, json=ids[i : i + batch], headers=headers))
        if response.status_code != 200:
            raise RuntimeError(f"the sandbox answered {response.status_code}: {response.text[:200]}")
        pages.append(response.content)
    _write(path, pages)
    if verbose:
        print(
            f"(generated {len(pages)} pages in {time.perf_counter() - started:.1f} s, cached at {path})",
            file=sys.stderr,
        )
    return pages


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The best wall time of ``repeat`` calls (time.perf_counter), and the last result.

    The garbage collector stays on while a call runs (as in real use); it is run before each call.
    """
    times, result = [], None
    for _ in range(repeat):
        result = None  # let the previous result go before the next run
        gc.collect()  # every run starts from the same garbage-collector state
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB; falls back to getrusage."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_env() -> dict[str, str]:
    """The environment for a child Python that imports capframe from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def fmt_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)
