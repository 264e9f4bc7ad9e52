"""How a lenient server behind the gateway might read a request path.

Legacy servers differ: some %-decode twice, turn ``\\`` into ``/``, drop ``;`` path parameters,
merge ``//``, resolve dot segments after decoding, or fold full-width characters (NFKC). The
invariant the adversarial tests check is that for every path the gateway forwards, *every* such
reading routes to the operation the gateway decided on: the gateway's canonical form must leave
nothing for a lenient reader to reinterpret.
"""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import unquote


def lenient_readings(path: str) -> set[str]:
    """Every path a lenient server could derive from ``path`` (each a plain, decoded path)."""
    out = set()
    for rounds in (1, 2, 3):
        decoded = path
        for _ in range(rounds):
            decoded = unquote(decoded, errors="surrogateescape")
        for nfkc in (False, True):
            text = unicodedata.normalize("NFKC", decoded) if nfkc else decoded
            text = text.replace("\\", "/").split("?", 1)[0].split("#", 1)[0].split("\x00", 1)[0]
            text = "/".join(seg.split(";", 1)[0] for seg in text.split("/"))
            resolved = posixpath.normpath(text) if text else "/"
            if resolved.startswith("//"):
                resolved = "/" + resolved.lstrip("/")
            if text.endswith("/") and resolved != "/":
                resolved += "/"
            out.add(resolved)
            out.add(resolved.lower())
    return out
