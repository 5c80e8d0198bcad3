"""The sandbox as a real HTTP server on a loopback port, for tools that cannot take a transport."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self

import httpx

from ._handler import Sandbox

__all__ = ["SandboxServer", "serve"]

# How long a "timeout" fault keeps the client waiting before the socket is closed.
TIMEOUT_FAULT_SECONDS: Final = 2.0
_IDLE_TIMEOUT: Final = 60.0  # idle keep-alive connections are closed after this
_POLL_INTERVAL: Final = 0.05  # how soon close() is noticed (the stdlib default is 0.5 s)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the interpreter alive
    # The listen queue: socketserver's 5 drops the SYNs of a client opening more connections at once
    # (a pull opens its whole concurrency), which then wait a second for the SYN to be sent again.
    # The kernel caps it at net.core.somaxconn.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.url = ""  # set once the port is bound
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        """A client that went away mid-answer (interrupted, timed out) is no error of the server's:
        its connection is closed quietly. Anything else is printed, as socketserver does."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
    # The headers and the body are two writes: with Nagle's algorithm the body's last segment would
    # wait for the client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True
    timeout = _IDLE_TIMEOUT
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the sandbox keeps its own request_log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
        url = f"{self.server.url}{self.path}"
        request = httpx.Request(self.command, url, headers=headers, content=body)
        try:
            with sandbox._occupancy() as delay:
                if delay is None:
                    response = sandbox._overloaded(request)
                else:
                    time.sleep(delay)
                    response = sandbox.handle(request)
        except httpx.RemoteProtocolError:
            # "reset": close the socket without a byte of response.
            self.close_connection = True
            return
        except httpx.ReadTimeout:
            time.sleep(TIMEOUT_FAULT_SECONDS)
            self.close_connection = True
            return
        except Exception:
            # A sandbox bug: answer like the API's own 500 rather than hanging the client.
            traceback.print_exc()
            response = httpx.Response(
                500,
                json={"errors": [{"status": False, "code": 500, "message": "UNEXPECTED_ERROR"}]},
            )
        content = response.content
        self.send_response(response.status_code)
        for name, value in response.headers.multi_items():
            if name.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
            ):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


class SandboxServer:
    """A running loopback server; ``url`` is its base URL. Close it, or use it as a context manager."""

    def __init__(self, sandbox: Sandbox, httpd: _HTTPServer, thread: threading.Thread, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self._httpd = httpd
        self._thread = thread
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def close(self) -> None:
        """Stop serving and drop open connections (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        # Keep-alive connections would otherwise linger in their handler threads.
        with self._httpd.connections_lock:
            open_connections = list(self._httpd.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SandboxServer {self.url}{' closed' if self._closed else ''}>"


def serve(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    """Serve ``sandbox`` over HTTP on a loopback address in a daemon thread (port 0 = any free port).

    Only loopback hosts are allowed: the sandbox accepts well-known credentials.
    """
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"serve() only binds loopback addresses (127.0.0.0/8, ::1, localhost), got {host!r}") from None
    if not ip.is_loopback:
        raise ValueError(f"serve() only binds loopback addresses (127.0.0.0/8, ::1, localhost), got {host!r}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    httpd = _HTTPServer((address, port), sandbox, family)
    bound = int(httpd.server_address[1])
    url = f"http://[{address}]:{bound}" if ip.version == 6 else f"http://{address}:{bound}"
    httpd.url = url
    thread = threading.Thread(
        target=httpd.serve_forever, args=(_POLL_INTERVAL,), name=f"capframe-sandbox-{bound}", daemon=True
    )
    thread.start()
    return SandboxServer(sandbox, httpd, thread, url)
