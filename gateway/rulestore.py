"""Holds the live rule set; reloads it when files change, keeping the last good one on error.

The watcher polls file signatures (names, sizes, mtimes) rather than using inotify: it works the
same on every file system (bind mounts, NFS, Kubernetes ConfigMaps swapped by symlink) and costs a
few stat() calls per interval. A change is loaded only once it has *settled* -- the same signature
on two polls in a row -- so an editor that truncates a file and writes it back is not read half-way
(a half-written deny file can be valid YAML with rules missing: loading it would silently widen
access). It is loaded aside and swapped in by one assignment only when it loaded without errors and
the files did not change while loading. A failed reload keeps serving the previous rules, logs every
problem and exposes them on the health endpoint. Writers slower than one poll interval should still
write a new file and rename it into place (atomic on POSIX), as Kubernetes ConfigMaps do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

from gateway.rulefile import RuleError
from gateway.ruleset import RuleSet, load_ruleset, signature

log = logging.getLogger("crmgw.rules")


@dataclasses.dataclass(slots=True)
class ReloadStatus:
    reloads: int = 0
    failures: int = 0
    last_attempt: float | None = None
    last_error: tuple[str, ...] = ()  # file:line:col: message of the last failed reload
    last_error_at: float | None = None


class RuleStore:
    def __init__(self, root: Path, ruleset: RuleSet):
        self.root = Path(root)
        self._current = ruleset
        self._signature = signature(self.root)
        self._pending: tuple | None = None  # a changed signature seen once, waiting to settle
        self.status = ReloadStatus()
        self._listeners: list = []

    @classmethod
    def open(cls, root: Path) -> tuple["RuleStore | None", list[RuleError]]:
        ruleset, errors = load_ruleset(root)
        if ruleset is None:
            return None, errors
        return cls(root, ruleset), []

    @property
    def current(self) -> RuleSet:
        return self._current

    def on_swap(self, callback) -> None:
        """Call ``callback(ruleset)`` after every successful swap (e.g. to clear caches)."""
        self._listeners.append(callback)

    def check(self) -> bool | None:
        """Reload if the files changed and settled. True: swapped; False: failed (kept last good);
        None: no change, or a change not settled yet (seen for the first time, or changed while loading)."""
        sig = signature(self.root)
        if sig == self._signature:
            self._pending = None
            return None
        if sig != self._pending:
            self._pending = sig  # first sight: a writer may still be at work; look again next round
            return None
        self.status.last_attempt = time.time()
        ruleset, errors = load_ruleset(self.root)
        if signature(self.root) != sig:
            return None  # changed while we read: try again next round with settled files
        self._signature = sig
        if ruleset is None:
            self.status.failures += 1
            self.status.last_error = tuple(str(e) for e in errors)
            self.status.last_error_at = time.time()
            log.error(
                "rules reload failed; keeping revision %s:\n%s",
                self._current.revision,
                "\n".join(self.status.last_error),
            )
            return False
        self._current = ruleset
        self.status.reloads += 1
        self.status.last_error = ()
        self.status.last_error_at = None
        log.info("rules reloaded: revision %s", ruleset.revision)
        for callback in self._listeners:
            callback(ruleset)
        return True

    async def watch(self, interval: float) -> None:
        """Background task: poll for changes every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                # Loading parses YAML: run it off the event loop so requests keep flowing.
                await asyncio.to_thread(self.check)
            except Exception:  # never let the watcher die: a dead watcher means stale rules
                log.exception("rules watcher error")

    def health(self) -> dict:
        rs = self._current
        return {
            "revision": rs.revision,
            "loaded_at": rs.loaded_at,
            "files": list(rs.files),
            "reloads": self.status.reloads,
            "reload_failures": self.status.failures,
            "last_reload_error": list(self.status.last_error) or None,
            "last_reload_error_at": self.status.last_error_at,
        }
