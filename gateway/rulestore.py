"""Holds the live rule set; reloads it when files change, keeping the last good one on error.

The watcher polls the rules folder rather than using inotify: it works the same on every file
system (bind mounts, NFS, Kubernetes ConfigMaps swapped by symlink) and costs a few stat() calls and
one read of the (small) rule files per interval. What it compares is the *content*: the revision
(a sha256 of every rule file's name and bytes, ``gateway.ruleset.revision_of``), so neither a coarse
mtime nor an edit that keeps the size hides a change, and a ``touch`` is no change.

When a change is loaded (issue 11: a file written in two steps was served half-written -- its first
half was valid YAML without a mask -- because the watcher only asked for the same size and mtime on
two polls in a row, i.e. one ``reload_interval``, and the second write came later than that):

    publish marker (``rules/.revision`` exists)
        The marker names the revision to serve; files are loaded only when their content *is* that
        revision. Admins and CI copy the files (in any order, at any speed), then write the marker
        last (``crmgw rules check DIR`` prints the revision). A half-written file has another
        revision, so it is never loaded, however long the writer pauses. No settle wait: the marker
        is the commit. A marker that names no revision (empty, half-written) loads nothing.
    no marker
        A change is loaded once its content has been the same on two polls in a row *and* for
        ``settle`` seconds (``reload_settle``, 2 s by default) since it was first seen. That covers
        editors that truncate and write back, ``cp`` of several files and scripts writing in steps
        a little apart; it cannot cover a writer that pauses longer than ``settle`` between two
        steps of a file that is valid YAML half-way: such writers must write a new file and rename
        it into place (atomic on POSIX, as Kubernetes ConfigMaps do) or use the marker.

Either way the set is loaded aside and swapped in by one assignment only when it loaded without
errors and neither the stat signature nor the content of the files changed while loading (and the
loaded revision is the one that settled / the marker names). A failed reload keeps serving the
previous rules, logs every problem and exposes them on the health endpoint.

At start-up (``RuleStore.open``) the files are loaded as they are; if a marker names another
revision, health shows it under ``rules.pending`` and the marked revision is loaded once the files
match it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.rulefile import RuleError
from gateway.ruleset import RuleSet, load_ruleset, revision_of, signature

log = logging.getLogger("crmgw.rules")


MARKER = ".revision"  # the publish marker, in the rules folder (not part of the revision)
_MARKED = re.compile(r"(?:^|\brevision\s+)([0-9a-f]{12})\b")
_UNREADABLE = "unreadable"  # a content key for a folder that could not be read (a file vanished mid-read)


def read_marker(root: Path) -> str | None:
    """The revision ``root/.revision`` names; None without a marker, "" when it names none.

    The first line that is neither blank nor a ``#`` comment holds the 12-hex-digit revision, alone
    or as ``crmgw rules check`` prints it (``ok: 12 files, revision 0123456789ab``).
    """
    try:
        text = (Path(root) / MARKER).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            found = _MARKED.search(line)
            return found.group(1) if found else ""
    return ""


def _content(root: Path) -> str:
    try:
        return revision_of(root)
    except OSError:
        return _UNREADABLE


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
        # (content revision, marker) last loaded or tried: the same again is no change
        self._attempted: tuple[str, str | None] = (ruleset.revision, read_marker(self.root))
        # a change seen, waiting to settle: (content revision, marker), first seen (monotonic, wall)
        self._pending: tuple[tuple[str, str | None], float, float] | None = None
        self._waiting: dict[str, Any] | None = None  # what health shows under rules.pending
        self.status = ReloadStatus()
        self._listeners: list[Callable[[RuleSet], object]] = []

    @classmethod
    def open(cls, root: Path) -> tuple[RuleStore | None, list[RuleError]]:
        ruleset, errors = load_ruleset(root)
        if ruleset is None:
            return None, errors
        store = cls(root, ruleset)
        marker = read_marker(store.root)
        if marker is not None and marker != ruleset.revision:
            store._waiting = {
                "revision": ruleset.revision,
                "marker": marker,
                "reason": "files-do-not-match-marker",
                "since": time.time(),
            }
        return store, []

    @property
    def current(self) -> RuleSet:
        return self._current

    def on_swap(self, callback: Callable[[RuleSet], object]) -> None:
        """Call ``callback(ruleset)`` after every successful swap (e.g. to clear caches)."""
        self._listeners.append(callback)

    def check(self, settle: float = 0.0) -> bool | None:
        """Reload if the files changed and the change is complete. True: swapped; False: failed
        (kept last good); None: no change, or a change not complete yet (seen for the first time,
        younger than ``settle`` seconds, not the revision the marker names, or changed while loading).

        ``settle`` 0 means "the same content on two polls in a row" (unit tests call check() twice).
        """
        before = signature(self.root)
        content = _content(self.root)
        marker = read_marker(self.root)
        key = (content, marker)
        if key == self._attempted:
            self._pending = None
            if marker is None or marker == content:
                self._waiting = None
            return None
        if content == _UNREADABLE:
            self._pending = None
            return None
        if marker is not None:
            self._pending = None
            if marker != content:  # a publish in progress: the files are not (yet) the named revision
                if (
                    not self._waiting
                    or self._waiting.get("revision") != content
                    or self._waiting.get("marker") != marker
                ):
                    self._waiting = {
                        "revision": content,
                        "marker": marker,
                        "reason": "files-do-not-match-marker",
                        "since": time.time(),
                    }
                return None
            # the marker names exactly these files: they are complete, load them now
        else:
            if self._pending is None or self._pending[0] != key:
                self._pending = (key, time.monotonic(), time.time())  # first sight: a writer may be at work
                self._waiting = {"revision": content, "marker": None, "reason": "settling", "since": self._pending[2]}
                return None
            if time.monotonic() - self._pending[1] < settle:
                return None
        if content == self._current.revision and not self.status.last_error:
            self._attempted, self._pending, self._waiting = key, None, None  # only the marker came or went
            return None
        self.status.last_attempt = time.time()
        ruleset, errors = load_ruleset(self.root)
        if (
            signature(self.root) != before
            or _content(self.root) != content
            or (ruleset is not None and ruleset.revision != content)
        ):
            return None  # changed while we read: try again once the files are complete
        self._attempted = key
        self._pending = None
        self._waiting = None
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
        log.info("rules reloaded: revision %s%s", ruleset.revision, " (publish marker)" if marker else "")
        for callback in self._listeners:
            callback(ruleset)
        return True

    async def watch(self, interval: float, *, settle: float = 0.0) -> None:
        """Background task: poll for changes every ``interval`` seconds until cancelled; without a
        publish marker a change loads once unchanged for ``settle`` seconds (and two polls)."""
        while True:
            await asyncio.sleep(interval)
            try:
                # Loading parses YAML: run it off the event loop so requests keep flowing.
                await asyncio.to_thread(self.check, settle)
            except Exception:  # never let the watcher die: a dead watcher means stale rules
                log.exception("rules watcher error")

    def health(self) -> dict[str, Any]:
        rs = self._current
        return {
            "revision": rs.revision,
            "loaded_at": rs.loaded_at,
            "files": list(rs.files),
            "reloads": self.status.reloads,
            "reload_failures": self.status.failures,
            "last_reload_error": list(self.status.last_error) or None,
            "last_reload_error_at": self.status.last_error_at,
            # a change not served yet: {revision of the files, marker, reason (settling |
            # files-do-not-match-marker), since}; None when the files are what is served
            "pending": dict(self._waiting) if self._waiting else None,
        }
