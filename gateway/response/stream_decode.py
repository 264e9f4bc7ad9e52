"""Undo a streamed answer's Content-Encoding piece by piece, never holding more than one piece.

The streaming twin of ``formats.decode_content``: the same codings (identity, gzip with several
members, zlib-wrapped or raw deflate) and the same refusals (br, compress, stacked or unknown codings
raise ``ObligationUnenforceable`` before anything is sent). Each ``feed`` yields plain pieces of at
most ``piece_bytes``: a 10 KB zip bomb becomes many small pieces the filter consumes one at a time,
never 10 GB in memory. ``finish`` refuses a body that stopped inside a compressed stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from gateway.response.formats import _GZIP, _IDENTITY, _RAW, _ZLIB, unenforceable


def coding_of(content_encoding: str | None) -> str:
    """``identity``, ``gzip`` or ``deflate``; raises for what the filter cannot decode."""
    tokens = [t.strip().lower() for t in (content_encoding or "").split(",")]
    codings = [t for t in tokens if t not in _IDENTITY]
    if len(codings) > 1:
        raise unenforceable(f"stacked content encodings are not supported: {content_encoding!r}")
    coding = codings[0] if codings else "identity"
    if coding == "x-gzip":
        return "gzip"
    if coding not in ("identity", "gzip", "deflate"):
        raise unenforceable(f"unsupported content encoding {coding!r}")
    return coding


class StreamDecoder:
    """Feed encoded bytes, get plain pieces (at most ``piece_bytes`` each)."""

    def __init__(self, content_encoding: str | None, piece_bytes: int):
        self.coding = coding_of(content_encoding)
        self.piece = max(1024, piece_bytes)
        self._d: zlib._Decompress | None = None
        self._started = False  # deflate: the first two bytes tell zlib-wrapped from raw
        self._head = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.coding == "identity":
            for i in range(0, len(data), self.piece):
                yield data[i : i + self.piece]
            return
        if not self._started:
            self._head += data
            if self.coding == "deflate" and len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._started = True
            self._d = zlib.decompressobj(self._wbits(data))
        yield from self._inflate(data)

    def _wbits(self, first: bytes) -> int:
        if self.coding == "gzip":
            return _GZIP
        zlib_wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and ((first[0] << 8) | first[1]) % 31 == 0
        return _ZLIB if zlib_wrapped else _RAW

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        assert d is not None
        while data:
            if d.eof:  # after a member: only another gzip member may follow (RFC 1952 2.2)
                if self.coding != "gzip":
                    raise unenforceable("trailing garbage after deflate body")
                d = self._d = zlib.decompressobj(_GZIP)
            try:
                out = d.decompress(data, self.piece)
            except zlib.error as exc:
                raise unenforceable(f"corrupt compressed body: {exc}") from None
            if out:
                yield out
            data = d.unused_data if d.eof else d.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        """What is left at the end of the body; raises when the compressed stream is incomplete."""
        if self.coding == "identity":
            return
        if not self._started:
            if not self._head:
                return  # an empty body, whatever the header claims
            self._started = True
            self._d = zlib.decompressobj(self._wbits(self._head))
            yield from self._inflate(self._head)
        d = self._d
        assert d is not None
        if not d.eof:
            raise unenforceable("truncated compressed body")
