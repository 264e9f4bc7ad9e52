"""Signing keys fetched from the identity provider: ``jwks_url``, or OIDC discovery from ``issuer``.

    RemoteKeySet.entries()    the current keys, by kid (no I/O; raises when there are none)
    RemoteKeySet.unknown_kid  a token names a kid the set does not have: refresh once, rate-limited
    refresh_now()             fetch (discovery document, then JWKS) and swap the set; blocking

Authenticators are synchronous and run on the event loop, so nothing here fetches on the calling
thread. A verifier that needs keys it does not have raises :class:`KeysNeeded`, which carries the
refresh it started in a worker thread; :meth:`IdentityStage.identify_async` awaits it without
blocking the loop and retries once. Synchronous callers just get the 401 the exception also is,
and the next request finds the keys in place. One refresh runs at a time (later callers join it)
and at most one starts per ``refresh_min_interval_seconds``, so a flood of tokens with made-up kids
costs one fetch, not one per request.

Fail closed: a set older than ``ttl_seconds`` is never used. Past 80 % of the TTL a background
refresh starts while the current keys still serve; if fetching keeps failing until the TTL runs
out, every token is refused (401 ``jwks-unavailable``) and health says so (``last_error``).

The HTTP fetch is PyJWT's :class:`~jwt.PyJWKClient` (``fetch_data``: http/https only, a timeout,
no redirects in current versions). Its own cache and refresh-on-unknown-kid are not used: they
block the caller, and the gateway needs more from a key set than PyJWT checks: no symmetric or
private keys, RSA of at least 2048 bits, keys that fit the listed algorithms
(:func:`gateway.identity.keys.parse_jwks`), a health report, and a revision that tells the
verifier's claims cache that a key was withdrawn (tokens it verified are checked again).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import jwt

from gateway.errors import Unauthenticated
from gateway.identity.config import ASYMMETRIC_ALGORITHMS, JwtKeys, remote_url
from gateway.identity.keys import JwkEntry, key_fits, parse_jwks

log = logging.getLogger("crmgw.identity")

DISCOVERY_PATH = "/.well-known/openid-configuration"
EARLY_REFRESH = 0.8  # fraction of the TTL after which a refresh starts in the background


class KeyFetchError(Exception):
    """A key set could not be fetched or used; the message goes to the log and to health."""


class KeysNeeded(Unauthenticated):
    """The verifier cannot decide without a fresher key set; ``pending`` is the refresh under way.

    It is the 401 ``refusal`` for callers that cannot wait; ``identify_async`` awaits ``pending``
    (True when the refresh succeeded) and verifies again.
    """

    def __init__(self, refusal: Unauthenticated, pending: Future[bool]):
        super().__init__(refusal.reason, refusal.detail)
        self.refusal = refusal
        self.pending = pending


def fetch_json(url: str, timeout: float) -> dict[str, Any]:
    """GET ``url`` and return its JSON object (blocking: call it from a worker thread)."""
    try:
        data = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout).fetch_data()
    except (jwt.PyJWKClientError, ValueError, OSError) as exc:
        raise KeyFetchError(f"GET {url}: {exc}") from None
    if not isinstance(data, dict):
        raise KeyFetchError(f"GET {url}: not a JSON object")
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class _Snapshot:
    keys: Mapping[str, JwkEntry]
    fingerprints: Mapping[str, str]  # kid -> the JWK as published, to notice a withdrawn key
    fetched_at: float  # the key clock (monotonic)
    fetched_wall: float
    jwks_uri: str
    revision: int  # with the keys, so a reader never pairs new keys with an old revision


class RemoteKeySet:
    """One issuer's fetched signing keys, cached for ``ttl_seconds`` and refreshed off the loop."""

    def __init__(
        self,
        cfg: JwtKeys,
        where: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str, float], dict[str, Any]] = fetch_json,
    ):
        self.where = where
        self.algorithms = [a for a in cfg.algorithms if a in ASYMMETRIC_ALGORITHMS]
        self.issuer = cfg.issuer
        self.jwks_url = cfg.jwks_url
        # oidc_discovery without an issuer is refused by the settings (JwtKeys)
        self.discovery_url = (
            cfg.issuer.rstrip("/") + DISCOVERY_PATH if cfg.oidc_discovery and cfg.issuer is not None else None
        )
        self.ttl = cfg.jwks_cache.ttl_seconds
        self.min_interval = cfg.jwks_cache.refresh_min_interval_seconds
        self.timeout = cfg.jwks_cache.fetch_timeout_seconds
        self._clock = clock
        self._fetch = fetch
        self._snapshot: _Snapshot | None = None
        self._discovered: str | None = None  # jwks_uri from the discovery document
        self._lock = threading.Lock()
        self._inflight: Future[bool] | None = None
        self._last_attempt: float | None = None
        self.revision = 0  # bumped when a refresh withdraws or changes a key
        self.fetches = 0
        self.failures = 0
        self.last_error: str | None = None
        self.skipped: tuple[str, ...] = ()  # keys of the last set that cannot be used, and why

    # --- the request path: no I/O ---------------------------------------------------------
    def generation(self) -> int | None:
        """The revision while the set is fresh, None when it is not (cached claims then do not
        count: fail closed covers tokens verified before the keys went stale)."""
        snap = self._snapshot
        if snap is None or self._clock() - snap.fetched_at >= self.ttl:
            return None
        return snap.revision

    def entries(self) -> Mapping[str, JwkEntry]:
        """The current keys by kid; raises KeysNeeded, or a 401 ``jwks-unavailable`` when no
        fresh set exists and no refresh may start yet."""
        snap = self._snapshot
        if snap is not None:
            age = self._clock() - snap.fetched_at
            if age < self.ttl:
                if age >= self.ttl * EARLY_REFRESH:
                    self._start_refresh()  # in the background; these keys serve meanwhile
                return snap.keys
        why = self.last_error or ("expired" if snap is not None else "not fetched yet")
        raise self._refresh_or(Unauthenticated("jwks-unavailable", f"{self.where}: no current key set ({why})"))

    def unknown_kid(self, kid: str) -> Unauthenticated:
        """What to raise for a kid the set lacks: KeysNeeded while a refresh may run, else 401."""
        return self._refresh_or(Unauthenticated("token-invalid", f"unknown kid {kid!r}"))

    def _refresh_or(self, refusal: Unauthenticated) -> Unauthenticated:
        pending = self._start_refresh()
        return refusal if pending is None else KeysNeeded(refusal, pending)

    def _start_refresh(self) -> Future[bool] | None:
        """The refresh under way, a new one in a worker thread, or None when rate-limited."""
        with self._lock:
            if self._inflight is not None:
                return self._inflight
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self.min_interval:
                return None
            self._last_attempt = now
            future: Future[bool] = Future()
            future.set_running_or_notify_cancel()  # a waiter that gives up must not cancel it
            self._inflight = future
        threading.Thread(target=self._refresh_into, args=(future,), name=f"jwks {self.where}", daemon=True).start()
        return future

    def _refresh_into(self, future: Future[bool]) -> None:
        ok = False
        try:
            ok = self.refresh_now()
        except Exception:  # a bug here must not leave waiters hanging
            log.exception("%s: key set refresh failed", self.where)
        finally:
            with self._lock:
                self._inflight = None  # before the result: a woken waiter may need another one
            future.set_result(ok)

    # --- fetching: blocking, worker threads and the CLI only --------------------------------
    def refresh_now(self) -> bool:
        """Fetch and install the key set; False (logged, in health) when that failed."""
        self.fetches += 1
        try:
            uri = self._jwks_uri()
            doc = self._fetch(uri, self.timeout)
            keys, fingerprints, problems = self._usable(doc)
        except KeyFetchError as exc:
            self.failures += 1
            self.last_error = str(exc)
            self._discovered = None  # discover again next time: the provider may have moved it
            log.warning("%s: %s", self.where, exc)
            return False
        old = self._snapshot
        if old is not None and any(fingerprints.get(k) != f for k, f in old.fingerprints.items()):
            self.revision += 1
        self.skipped = tuple(problems)
        for problem in problems:
            log.warning("%s: key set from %s: %s (key not used)", self.where, uri, problem)
        self._snapshot = _Snapshot(keys, fingerprints, self._clock(), time.time(), uri, self.revision)
        self.last_error = None
        return True

    def _jwks_uri(self) -> str:
        if self.jwks_url is not None:
            return self.jwks_url
        if self.discovery_url is None:  # the settings name one or the other
            raise KeyFetchError(f"{self.where}: neither jwks_url nor oidc_discovery (with an issuer) is set")
        if self._discovered is None:
            doc = self._fetch(self.discovery_url, self.timeout)
            # OpenID Connect Discovery 1.0, 4.3: the document's issuer must be exactly ours.
            if doc.get("issuer") != self.issuer:
                raise KeyFetchError(
                    f"{self.discovery_url} names issuer {doc.get('issuer')!r}, expected {self.issuer!r}"
                )
            uri = doc.get("jwks_uri")
            try:
                self._discovered = remote_url(uri, "jwks_uri") if isinstance(uri, str) else None
            except ValueError as exc:
                raise KeyFetchError(f"{self.discovery_url}: {exc}") from None
            if self._discovered is None:
                raise KeyFetchError(f"{self.discovery_url} has no jwks_uri")
        return self._discovered

    def _usable(self, doc: dict[str, Any]) -> tuple[dict[str, JwkEntry], dict[str, str], list[str]]:
        keys = doc.get("keys")
        if not isinstance(keys, list) or not keys:
            raise KeyFetchError("the JWKS has no 'keys' list")
        problems: list[str] = []
        entries = parse_jwks(keys, "jwks", problems)
        usable = {}
        for kid, entry in entries.items():
            if any(key_fits(a, entry.key) and entry.alg in (None, a) for a in self.algorithms):
                usable[kid] = entry
            else:
                problems.append(f"key {kid!r} fits none of the listed algorithms {self.algorithms}")
        if not usable:
            raise KeyFetchError("no usable signing key in the JWKS: " + "; ".join(problems))
        fingerprints = {
            jwk["kid"]: json.dumps(jwk, sort_keys=True)
            for jwk in keys
            if isinstance(jwk, dict) and jwk.get("kid") in usable
        }
        return usable, fingerprints, problems

    # --- operations -----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        snap = self._snapshot
        fresh = self.generation() is not None
        return {
            "section": self.where,
            "source": self.jwks_url or self.discovery_url,
            "jwks_uri": snap.jwks_uri if snap else None,
            "fresh": fresh,
            "kids": sorted(snap.keys) if snap else [],
            "fetched_at": snap.fetched_wall if snap else None,
            "fetches": self.fetches,
            "failures": self.failures,
            "last_error": self.last_error,
            "skipped": list(self.skipped),
        }
