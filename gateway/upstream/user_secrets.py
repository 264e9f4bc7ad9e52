"""Per-user CRM credentials (``upstream.user_credentials``): where they come from, how they are kept.

Two sources, either or both:

* the environment: ``from_env: CRM_TOKEN_{USER}`` reads ``CRM_TOKEN_CAROL`` for user ``carol``.
  ``{USER}`` is the user id upper-cased with every character outside ``A-Z0-9`` written ``_``, so
  ``svc-reporting`` reads ``CRM_TOKEN_SVC_REPORTING``. Two directory users whose ids spell the same
  variable (``svc-a`` and ``svc_a``) would share one secret: such a lookup is refused, never guessed.
  The environment is read once, at start.
* a YAML file: ``from_file: secrets/crm-tokens.yaml``, a mapping ``user id: secret``. A file that
  every user of the host may read (or write) is refused: the point of per-user tokens is that only
  the gateway holds them. The file is re-read when it changes (checked at most once per
  ``reload_interval``, on the request path: a ``stat`` is cheaper than a watcher task and needs no
  wiring); a bad new version is logged and the last good one kept, like the rule files.

A user found in both sources is an error (which one would the CRM see?). Every secret is checked
once, at load, to make a valid header value with ``format`` (``Bearer {secret}``), and kept only in
that formatted form. No message, log line or ``repr`` here ever contains a secret: problems name the
variable, the file and line, and the user.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import Forbidden
from gateway.rulefile import RuleError, parse_yaml

if TYPE_CHECKING:  # annotation only: the directory is the rule set's (gateway.identity.directory)
    from gateway.identity.directory import Directory

log = logging.getLogger("crmgw.upstream")

# Visible ASCII and space: what every HTTP stack accepts in a header value. No CR/LF (header
# injection), no NUL, nothing a CRM framework might decode differently.
HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

# (settings key, message) -> a problem located in gateway.yaml (load_settings gives real lines).
At = Callable[[str, str], RuleError]


def env_key(user_id: str) -> str:
    """The ``{USER}`` part of a variable name for ``user_id``."""
    return re.sub(r"[^A-Z0-9]", "_", user_id.upper())


def header_value(fmt: str, secret: str) -> str | None:
    """``format`` with the secret put in, or None when that is not a safe header value.

    ``str.replace``, not ``str.format``: a secret or a format must never be able to reach
    attributes (``{secret.__class__}``)."""
    value = fmt.replace("{secret}", secret)
    return value if HEADER_VALUE.fullmatch(value) else None


def read_secrets_file(path: Path, display: str, fmt: str, at: At) -> tuple[dict[str, str] | None, list[RuleError]]:
    """``(user id -> formatted header value, [])`` or ``(None, problems)``."""
    try:
        st = path.stat()  # follows symlinks: a mounted secret's target is what others could read
    except OSError as exc:
        return None, [at("from_file", f"cannot read {display}: {exc.strerror or exc}")]
    if not stat.S_ISREG(st.st_mode):
        return None, [at("from_file", f"{display} is not a regular file")]
    if st.st_mode & 0o007:
        mode = stat.S_IMODE(st.st_mode)
        return None, [
            at(
                "from_file",
                f"{display} is accessible to every user of the host (mode {mode:04o}); "
                "it holds CRM credentials: chmod o-rwx (for example 600)",
            )
        ]
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [at("from_file", f"cannot read {display}: {exc}")]
    doc, errors = parse_yaml(text, display)
    if doc is None or errors:
        return None, errors
    if not isinstance(doc.data, dict):
        return None, [doc.error((), "a secrets file is a mapping of user id to secret")]
    table, problems = {}, []
    for user, secret in doc.data.items():
        # The messages name the user and the line, never the value.
        if not isinstance(secret, str) or not secret:
            problems.append(doc.error((user,), f"{user!r}: the secret must be a non-empty string"))
            continue
        value = header_value(fmt, secret)
        if value is None:
            problems.append(
                doc.error(
                    (user,),
                    f"{user!r}: the secret does not make a valid header value "
                    "(control or non-ASCII characters, or leading/trailing spaces)",
                )
            )
            continue
        table[user] = value
    return (None, problems) if problems else (table, [])


def read_env(template: str, fmt: str, environ: Mapping[str, str], at: At) -> tuple[dict[str, str], list[RuleError]]:
    """``{USER} key -> formatted header value`` for every variable the template names."""
    prefix, _, suffix = template.partition("{USER}")
    pattern = re.compile(re.escape(prefix) + r"([A-Z0-9_]+)" + re.escape(suffix))
    table, problems = {}, []
    for name in sorted(environ):
        found = pattern.fullmatch(name)
        if not found:
            continue
        value = header_value(fmt, environ[name]) if environ[name] else None
        if value is None:
            problems.append(at("from_env", f"${name} is empty or does not make a valid header value"))
            continue
        table[found.group(1)] = value
    return table, problems


class UserSecrets:
    """The loaded per-user credentials; ``lookup`` is what the request path calls."""

    def __init__(
        self,
        *,
        fmt: str,
        from_env: str | None,
        file: Path | None,
        reload_interval: float,
        environ: Mapping[str, str] | None = None,
    ):
        self.fmt = fmt
        self.from_env = from_env
        self.file = file
        self.reload_interval = reload_interval
        self.environ = os.environ if environ is None else environ
        self._env: dict[str, str] = {}
        self._file: dict[str, str] = {}
        self._file_sig: tuple[int, ...] | None = None
        self._next_check = 0.0
        self._directory: Directory | None = None  # the directory _owners was counted for
        self._owners: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:  # never the secrets
        return f"UserSecrets(env={len(self._env)}, file={len(self._file)})"

    def load(self, at: At) -> list[RuleError]:
        """Read both sources now; every problem, or [] once loaded."""
        problems: list[RuleError] = []
        env: dict[str, str] = {}
        if self.from_env:
            env, problems = read_env(self.from_env, self.fmt, self.environ, at)
        table: dict[str, str] = {}
        if self.file is not None:
            sig = self._signature()
            found, file_problems = read_secrets_file(self.file, str(self.file), self.fmt, at)
            problems += file_problems
            table = found or {}
            self._file_sig = sig
        problems += [
            at("from_file", f"{user!r} has a secret in {self.file} and in ${self._env_name(user)}: give it once")
            for user in table
            if env_key(user) in env
        ]
        if not problems:
            self._env, self._file = env, table
            self._next_check = time.monotonic() + self.reload_interval
        return problems

    def lookup(self, user_id: str, directory: Directory) -> str | None:
        """The formatted header value for ``user_id``, or None when there is none.

        Raises Forbidden ``upstream-credential-ambiguous`` when the environment variable this user
        reads is also the one of another directory user."""
        self._maybe_reload()
        if user_id in self._file:
            return self._file[user_id]
        key = env_key(user_id)
        if key not in self._env:
            return None
        if directory is not self._directory:  # the directory is swapped whole on reload
            self._directory = directory
            self._owners = collections.Counter(env_key(u) for u in directory.users)
        if self._owners[key] > 1:
            raise Forbidden(
                "upstream-credential-ambiguous",
                detail=f"${self._env_name(user_id)} is the variable of {self._owners[key]} directory users",
            )
        return self._env[key]

    def _env_name(self, user_id: str) -> str:
        return (self.from_env or "").replace("{USER}", env_key(user_id))

    def _signature(self) -> tuple[int, ...] | None:
        if self.file is None:
            return None
        try:
            st = os.stat(self.file)
        except OSError:
            return None
        # ctime and mode too: fixing a refused file's permissions alone must bring it back.
        return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode

    def _maybe_reload(self) -> None:
        if self.file is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.reload_interval
        sig = self._signature()
        if sig == self._file_sig:
            return
        # Read on the event loop: a few hundred bytes, and only when the file changed.
        self._file_sig = sig  # a bad version is reported once, not at every check
        display = str(self.file)
        table, problems = read_secrets_file(
            self.file, display, self.fmt, lambda key, msg: RuleError(display, 1, 1, msg)
        )
        if table is not None:
            problems += [
                RuleError(display, 1, 1, f"{user!r} also has ${self._env_name(user)}")
                for user in table
                if env_key(user) in self._env
            ]
        if table is None or problems:  # no table comes with its problems
            log.error(
                "upstream.user_credentials: %s not reloaded, keeping the last good version (%d users):\n%s",
                display,
                len(self._file),
                "\n".join(str(p) for p in problems),
            )
            return
        self._file = table
        log.info("upstream.user_credentials: %s reloaded (%d users)", display, len(table))
