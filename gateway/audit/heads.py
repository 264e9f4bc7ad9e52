"""The audit chain's head, outside the audit file: on /metrics, and signed to an append-only file.

A hash chain shows a line removed, edited or moved in the middle, but not lines cut from the end
(nor a log rewritten from some line on, chain and all). Both show against a head recorded elsewhere:

- ``/metrics`` exports ``crmgw_audit_chain_head_info{head="<sha256>",seq="<n>"} 1`` and
  ``crmgw_audit_chain_seq <n>``, read from the file's last line at scrape time under the writers'
  flock: one head for all workers, whichever answers. A scraper keeps the history.
- With ``audit.head_key_env`` naming an environment variable that holds a key (16+ characters), every
  worker appends, each ``audit.head_interval`` seconds when the head moved, one line to
  ``audit.heads_path`` (JSON lines, opened O_APPEND, resolved like ``audit.path``)::

      {"time":"2026-03-02T10:00:00+00:00","seq":1234,"head":"<sha256 hex>","hmac":"<hex>"}

  ``hmac`` = HMAC-SHA256(key, ``crmgw-audit-head/v1|<time>|<seq>|<head>``). Under a flock on the
  heads file a worker skips a head that is not newer than the last one written, so the workers do
  not repeat each other. ``crmgw audit verify FILES --heads FILE`` checks every signature and that
  the line at each signed seq still has that hash, and names the signed heads the files no longer
  reach (lines removed from the end). Keep the file where the gateway's account can append but not
  rewrite it (``chattr +a``, a different volume, or ship it off the host): the key is what makes a
  forged head detectable, the file's place is what keeps the real ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

import orjson
from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric

from gateway.audit.chain import Head, Report, last_line, seq_of
from gateway.background import Periodic, periodic_ctx

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger("crmgw.audit")
MIN_KEY_LENGTH = 16


class HeadKeyError(ValueError):
    pass


class HeadSource(Protocol):
    """What the collector and the signer read the head from (gateway.audit.log.AuditLog)."""

    def head(self) -> Head: ...


class SignedHead(TypedDict):
    """One line of ``audit.heads_path``."""

    time: str
    seq: int
    head: str
    hmac: str


class ChainHeadCollector:
    """prometheus-client collector: the chain head of the audit file at scrape time."""

    def __init__(self, audit: HeadSource):
        self.audit = audit

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to describe up front

    def collect(self) -> Iterator[Metric]:
        try:
            head = self.audit.head()
        except Exception:  # an unreadable file must not break the scrape; health says unwritable
            return
        info = GaugeMetricFamily(
            "crmgw_audit_chain_head_info",
            "The audit log's chain head: sha256 and seq of its last line.",
            labels=["head", "seq"],
        )
        info.add_metric([head.hash, str(head.seq)], 1)
        yield info
        yield GaugeMetricFamily("crmgw_audit_chain_seq", "Lines in the audit log's hash chain so far.", value=head.seq)


def message(time: str, seq: int, head: str) -> bytes:
    return f"crmgw-audit-head/v1|{time}|{seq}|{head}".encode("ascii")


def sign(key: bytes, time: str, seq: int, head: str) -> str:
    return hmac.new(key, message(time, seq, head), hashlib.sha256).hexdigest()


def key_from_env(name: str) -> bytes:
    value = os.environ.get(name)
    if not value:
        raise HeadKeyError(f"environment variable {name!r} (the audit heads' HMAC key) is not set")
    if len(value) < MIN_KEY_LENGTH:
        raise HeadKeyError(f"environment variable {name!r}: the audit heads' key needs {MIN_KEY_LENGTH}+ characters")
    return value.encode("utf-8")


class HeadSigner:
    """Appends a signed head to ``path`` when the audit chain moved (one worker's view)."""

    def __init__(self, audit: HeadSource, path: Path, key: bytes, clock: Callable[[], datetime] | None = None):
        self.audit = audit
        self.path = Path(path)
        self.key = key
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.signed = 0
        self._last_seq = -1

    def sign_once(self) -> SignedHead | None:
        """Sign the head now if it is newer than the last signed one; the record written, or None."""
        head: Head = self.audit.head()
        if head.seq == 0 or head.seq <= self._last_seq:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b", buffering=0) as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released by close
            size = os.fstat(f.fileno()).st_size
            last, terminated = last_line(f.fileno(), size)
            last_seq = _seq(last) if last else 0
            self._last_seq = max(self._last_seq, last_seq)
            if head.seq <= last_seq:  # another worker signed this head (or a newer one) already
                return None
            when = self.clock().isoformat(timespec="seconds")
            record: SignedHead = {
                "time": when,
                "seq": head.seq,
                "head": head.hash,
                "hmac": sign(self.key, when, head.seq, head.hash),
            }
            f.write((b"" if terminated else b"\n") + orjson.dumps(record) + b"\n")
        self._last_seq = head.seq
        self.signed += 1
        return record


def _seq(line: bytes) -> int:
    try:
        value = orjson.loads(line).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        return seq_of(line)
    return value if isinstance(value, int) else 0


def head_signing(settings: Settings, audit: HeadSource) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx for create_app: the periodic signer when ``audit.head_key_env`` is set.

    The key is read now: a named variable that is unset or short stops start-up (HeadKeyError).
    """
    config = settings.audit
    name = config.head_key_env
    if not name:
        return _nothing
    signer = HeadSigner(audit, settings.data_path(config.heads_path), key_from_env(name))

    def sign() -> None:
        try:
            signer.sign_once()
        except OSError as exc:
            log.error("audit head not signed (%s)", exc)

    # the last head of a stopping worker is signed too
    return periodic_ctx(Periodic("audit-head-signer", config.head_interval, sign), final=sign)


async def _nothing(app: web.Application) -> AsyncIterator[None]:
    yield


def check_heads(path: Path, files: list[Path], report: Report, *, key_env: str) -> tuple[int, list[str]]:
    """Check the signed heads in ``path`` against the verified ``files``: (heads checked, problems)."""
    key = key_from_env(key_env)
    problems: list[str] = []
    checked = 0
    seqs = report.by_seq
    first = min(seqs) if seqs else None
    last = max(seqs) if seqs else 0
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        where = f"{path}:{number}"
        try:
            record = orjson.loads(raw)
            when, seq, head, mac = record["time"], record["seq"], record["head"], record["hmac"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            problems.append(f"{where}: not a signed head")
            continue
        if not isinstance(seq, int) or not hmac.compare_digest(str(mac), sign(key, str(when), seq, str(head))):
            problems.append(f"{where}: bad signature (edited, or signed with another key)")
            continue
        if first is None or seq < first:
            continue  # before the oldest file given: rotated away
        checked += 1
        line = seqs.get(seq)
        if line is None and seq > last:
            tail = seqs[last].where if last else "the files"
            problems.append(
                f"{where}: head seq {seq} signed at {when} is past the end of the log ({tail}, seq {last}): "
                f"lines removed from the end"
            )
        elif line is None:
            problems.append(f"{where}: head seq {seq} signed at {when}: no such line in the files (removed)")
        elif line.hash != head:
            problems.append(
                f"{where}: head seq {seq} signed at {when} does not match {line.where} (edited after signing)"
            )
    return checked, problems
