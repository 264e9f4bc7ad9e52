"""One canonical form of the request target, decided on and forwarded byte for byte.

A gateway and the server behind it must never read a path differently: if the gateway decides on
``/api/customers/1`` while the CRM routes ``/api/customers/..%2fadmin/users``, rules are bypassed.
So the target is normalised exactly once, here, and the *same string* is matched against the
catalogue and used to build the upstream URL (``gateway.upstream.forward`` sends it with
``encoded=True``). Whatever a server could read in more than one way is refused, never guessed:

    absolute-form / authority-form targets          -> target-absolute-form
    not starting with "/", "//" anywhere, dot segments, backslash, ";" (path parameters),
    "#", control characters (raw or %-encoded), %-encoded / \\ . ; ? # %  -> path-ambiguous
    malformed %-escapes, %-bytes that are not UTF-8 (overlong forms too),
    raw non-ASCII or raw space                      -> path-encoding-invalid

What is left has one meaning, and is re-emitted canonically: %-escapes of unreserved characters
(``%41`` -> ``A``) are decoded, every other escape is kept with upper-case hex, and printable ASCII
that may not appear raw in a path (``"<>[]^`{|}``) is %-encoded. The function is idempotent.
A trailing slash is kept: the catalogue decides whether ``/api/customers/`` is an endpoint.

Queries are forwarded raw; :func:`parse_query` gives the gateway its single-valued view and refuses
what two parsers could read differently (a repeated name, ``;`` separators, NUL, invalid UTF-8).
"""

from __future__ import annotations

import re
import string

from gateway.errors import AmbiguousRequest

AMBIGUOUS = "path-ambiguous"
ENCODING = "path-encoding-invalid"
ABSOLUTE = "target-absolute-form"
QUERY_AMBIGUOUS = "query-ambiguous"

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# pchar = unreserved / sub-delims / ":" / "@" (RFC 3986); ";" is a sub-delim but refused above.
_RAW_OK = _UNRESERVED | frozenset("!$&'()*+,=:@")
# Printable ASCII a client should have encoded; encoding it does not change what the CRM decodes.
_ENCODE = frozenset('"<>[]^`{|}')
# Bytes whose %-encoded form would change the path's structure (or its decoding) downstream.
_REFUSED_ENCODED = frozenset(b"/\\.;?#%")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_HEX = frozenset("0123456789abcdefABCDEF")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@]*")  # == _RAW_OK, as one regex
_SUSPECT = re.compile(r"[^\x21-\x7e]|#")  # anything but printable ASCII, or a fragment


def _refuse(reason: str, detail: str) -> AmbiguousRequest:
    return AmbiguousRequest(reason, detail=detail)


def _is_control(code: int) -> bool:
    return code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F


def normalise_target(raw_target: str) -> tuple[str, str]:
    """Split and normalise a raw request target; returns ``(path, raw_query)`` or raises 400."""
    if not isinstance(raw_target, str) or not raw_target:
        raise _refuse(AMBIGUOUS, "empty request target")
    bad = _SUSPECT.search(raw_target)  # one C-speed scan; classify only when something is off
    if bad is not None:
        ch = bad.group()
        code = ord(ch)
        if code > 0x7E:
            raise _refuse(ENCODING, f"raw non-ASCII character U+{code:04X} (must be %-encoded)")
        if _is_control(code):
            raise _refuse(AMBIGUOUS, f"control character 0x{code:02X} in target")
        if ch == " ":
            raise _refuse(ENCODING, "raw space in target")
        raise _refuse(AMBIGUOUS, "fragment '#' in target")
    if not raw_target.startswith("/"):
        if _SCHEME.match(raw_target):
            raise _refuse(ABSOLUTE, "absolute-form or authority-form target")
        raise _refuse(AMBIGUOUS, "target does not start with '/'")
    path, _, raw_query = raw_target.partition("?")
    if path.startswith("//"):
        raise _refuse(AMBIGUOUS, "authority-like '//' at the start of the path")
    if "//" in path:
        raise _refuse(AMBIGUOUS, "empty path segment '//'")
    if "\\" in path:
        raise _refuse(AMBIGUOUS, "backslash in path")
    if ";" in path:
        raise _refuse(AMBIGUOUS, "';' path parameter")
    segments = path.split("/")
    return "/".join(_canonical_segment(seg) for seg in segments), raw_query


def _canonical_segment(segment: str) -> str:
    if segment in (".", ".."):
        raise _refuse(AMBIGUOUS, f"dot segment {segment!r}")
    if _PLAIN_SEGMENT.fullmatch(segment):
        return segment  # fast path: nothing to decode or encode
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        ch = segment[i]
        if ch != "%":
            out.append(f"%{ord(ch):02X}" if ch in _ENCODE else ch)
            i += 1
            continue
        # A run of consecutive escapes is decoded together: UTF-8 sequences span several.
        run = bytearray()
        while i < n and segment[i] == "%":
            hex2 = segment[i + 1 : i + 3]
            if len(hex2) != 2 or not all(h in _HEX for h in hex2):
                raise _refuse(ENCODING, f"malformed %-escape {segment[i : i + 3]!r}")
            run.append(int(hex2, 16))
            i += 3
        out.append(_canonical_bytes(bytes(run)))
    return "".join(out)


def _canonical_bytes(run: bytes) -> str:
    """Re-emit %-decoded bytes: unreserved ASCII as itself, the rest %XX (upper case)."""
    out: list[str] = []
    j, n = 0, len(run)
    while j < n:
        b = run[j]
        if b < 0x80:
            if b in _REFUSED_ENCODED:
                raise _refuse(AMBIGUOUS, f"%-encoded {chr(b)!r} (%{b:02X})")
            if _is_control(b):
                raise _refuse(AMBIGUOUS, f"%-encoded control character %{b:02X}")
            ch = chr(b)
            out.append(ch if ch in _UNRESERVED else f"%{b:02X}")
            j += 1
            continue
        k = j
        while k < n and run[k] >= 0x80:
            k += 1
        chunk = run[j:k]
        try:
            text = chunk.decode("utf-8")  # strict: refuses overlong forms and surrogates
        except UnicodeDecodeError:
            raise _refuse(ENCODING, f"%-bytes are not valid UTF-8: {chunk.hex()}") from None
        if any(_is_control(ord(c)) for c in text):
            raise _refuse(AMBIGUOUS, "%-encoded C1 control character")
        out.extend(f"%{x:02X}" for x in chunk)
        j = k
    return "".join(out)


def _decode_component(text: str) -> str:
    """Form-decode one query name or value (``+`` is a space, as aiohttp reads it)."""
    raw = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            hex2 = text[i + 1 : i + 3]
            if len(hex2) != 2 or not all(h in _HEX for h in hex2):
                raise _refuse(QUERY_AMBIGUOUS, f"malformed %-escape {text[i : i + 3]!r} in query")
            raw.append(int(hex2, 16))
            i += 3
            continue
        raw += b" " if ch == "+" else ch.encode("ascii", "strict")
        i += 1
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(QUERY_AMBIGUOUS, "query is not valid UTF-8") from None
    if any(_is_control(ord(c)) for c in decoded):
        raise _refuse(QUERY_AMBIGUOUS, "control character in query")
    return decoded


def parse_query(raw_query: str) -> dict[str, str]:
    """The query as single-valued parameters; refuses anything two parsers could read differently."""
    if not raw_query:
        return {}
    if ";" in raw_query:  # some servers split on ';' as well as '&'
        raise _refuse(QUERY_AMBIGUOUS, "';' in query")
    try:
        raw_query.encode("ascii")
    except UnicodeEncodeError:
        raise _refuse(QUERY_AMBIGUOUS, "raw non-ASCII in query") from None
    params: dict[str, str] = {}
    for piece in raw_query.split("&"):
        if not piece:
            continue  # 'a=1&&b=2': every parser skips empty pieces
        raw_name, _, raw_value = piece.partition("=")
        name = _decode_component(raw_name)
        if not name:
            raise _refuse(QUERY_AMBIGUOUS, "query parameter without a name")
        if name in params:
            raise _refuse(QUERY_AMBIGUOUS, f"query parameter {name!r} given more than once")
        params[name] = _decode_component(raw_value)
    return params
