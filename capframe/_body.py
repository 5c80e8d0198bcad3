"""Response bodies read with a size cap, after decompression, whatever a server sends.

httpx reads a body whole and inflates each chunk whole: an endless chunked body, a
``Content-Length`` of 8 GB or a gzip bomb (2 MB on the wire, GiBs unpacked) would fill memory.
:func:`guard` is an httpx response hook: it takes the decoding over from httpx, inflating at most
:data:`STEP` bytes at a time, and stops a body as soon as it passes the cap. Only ``gzip`` and
``deflate`` are asked for (``Accept-Encoding``); a body that does not decode as its
``Content-Encoding`` says, or comes in a compression not asked for, is unreadable
(:class:`UndecodableBody`), not a raw ``zlib.error``.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx

__all__ = ["HEADERS", "STEP", "BodyTooLarge", "UndecodableBody", "guard"]

# What every request of capframe (the token request too) says about the answers it takes.
HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "User-Agent": "capframe"}
STEP = 1 << 16  # inflated bytes produced per step: what a body may pass its cap by, at most


class BodyTooLarge(Exception):
    """Internal: a body passed the client's ``max_body_bytes``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer was larger than max_body_bytes={limit:,} bytes")
        self.limit = limit


class UndecodableBody(Exception):
    """Internal: a body that does not decode as its ``Content-Encoding`` says."""


class _Inflate:
    """zlib in steps of at most STEP output bytes. ``deflate`` is zlib-wrapped by the RFC, raw by
    some servers: a first chunk that fails as one is tried as the other, as httpx does."""

    def __init__(self, encoding: str) -> None:
        self._wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._raw_fallback = encoding == "deflate"
        self._inflate = zlib.decompressobj(self._wbits)
        self._started = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._steps(data)
        except zlib.error:
            if self._started or not self._raw_fallback:
                raise UndecodableBody(f"the body is not the {self._name()} data its Content-Encoding says") from None
            self._raw_fallback = False
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            yield from self.decode(data)

    def _steps(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._inflate.eof:  # bytes after the end of the stream: ignored, as httpx does
                return
            out = self._inflate.decompress(data, STEP)
            self._started = self._started or bool(out)
            data = self._inflate.unconsumed_tail
            yield out

    def flush(self) -> bytes:
        try:
            return self._inflate.flush()
        except zlib.error:
            raise UndecodableBody(f"the body is not the {self._name()} data its Content-Encoding says") from None

    def _name(self) -> str:
        return "gzip" if self._wbits & 16 else "deflate"


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), STEP):
            yield data[start : start + STEP]

    def flush(self) -> bytes:
        return b""


class _CappedStream(httpx.AsyncByteStream):
    """A response's raw stream, decoded, raising BodyTooLarge as soon as the total passes ``limit``."""

    def __init__(self, raw: httpx.AsyncByteStream, decoder: _Inflate | _Identity | None, encoding: str, limit: int):
        self._raw = raw
        self._decoder = decoder
        self._encoding = encoding
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._decoder is None:
            raise UndecodableBody(f"the body has a Content-Encoding capframe did not ask for: {self._encoding[:40]!r}")
        total = 0
        async for chunk in self._raw:
            for piece in self._decoder.decode(chunk):
                total += len(piece)
                if total > self._limit:
                    raise BodyTooLarge(self._limit)
                yield piece
        tail = self._decoder.flush()
        if total + len(tail) > self._limit:
            raise BodyTooLarge(self._limit)
        yield tail

    async def aclose(self) -> None:
        await self._raw.aclose()


# Compressions capframe does not ask for: a body in one of them cannot be read. Any other name
# ("identity", or a server's mistake such as "UTF-8") leaves the body as it is, as httpx does.
_NOT_ASKED = frozenset({"br", "zstd", "compress", "x-compress"})


def _decoder(encoding: str) -> _Inflate | _Identity | None:
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflate("deflate" if encoding == "deflate" else "gzip")
    if "," in encoding or encoding in _NOT_ASKED:  # "," : several encodings, stacked
        return None
    return _Identity()


def guard(limit: int) -> Callable[[httpx.Response], Awaitable[None]]:
    """A response hook: the body is decoded here, capped at ``limit`` bytes, and httpx sees it plain."""

    async def hook(response: httpx.Response) -> None:
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if "Content-Encoding" in response.headers:
            del response.headers["Content-Encoding"]
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, _decoder(encoding), encoding, limit)

    return hook
