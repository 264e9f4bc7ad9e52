"""Pre-fork supervisor for ``crmgw serve --workers N``: start N workers, keep them running, stop them.

Why fork and SO_REUSEPORT rather than one shared listening socket: each worker binds the port
itself (``reuse_port``), the kernel balances new connections across the listeners, and a worker that
closes its listener while draining takes nothing from the others. The supervisor holds a bound but
*not listening* socket on the same port for its whole life: it reserves the port (``port: 0`` picks
one, and no other program can take it between worker restarts), yet receives no connections.

The supervisor never opens an event loop, the rules or the audit file; workers are forked before
any of that exists, and each builds its own gateway. Signals:

    SIGTERM / SIGINT   forwarded to every worker (each drains, see gateway.server); exit 0 when all
                       workers exit 0. Workers still alive drain_timeout + 10 s later are killed.
    a worker dies      restarted, unless it exited with 2 (settings/rules refused: restarting cannot
                       help) or workers keep dying (5 within 10 s): then everything stops, exit 1/2.

Metrics: ``PROMETHEUS_MULTIPROC_DIR`` is set before forking (unless already given: to
``<data_dir>/metrics`` when the settings name a data folder, else to a private temporary folder), so
every worker's metrics are aggregated by whichever worker answers /metrics. The folder's ``*.db``
files are removed at start: one folder per instance, never shared between replicas.

The console secret and the ``hash`` mask key are shared the same way: gateway.server sets them in
the environment before this supervisor forks (a random one each when none is configured).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.server import ServeOptions

log = logging.getLogger("crmgw.supervisor")

MAX_CRASHES = 5
CRASH_WINDOW = 10.0
KILL_GRACE = 10.0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


class Supervisor:
    def __init__(self, settings: Settings, opts: ServeOptions, run_worker: Callable[[Settings, ServeOptions], int]):
        self.settings = settings
        self.opts = opts
        self.run_worker = run_worker  # (settings, opts) -> exit code; runs in the forked child
        self.children: dict[int, int] = {}  # pid -> worker slot
        self.stopping = False
        self.crashes: list[float] = []
        self.exit_code = 0
        self._reserved: socket.socket | None = None
        self._metrics_dir_owned: str | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def run(self) -> int:
        self._reserve_port()
        self._metrics_dir()
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        try:
            for slot in range(self.opts.workers):
                self._spawn(slot)
            log.info(
                "supervisor %d: %d workers on http://%s:%s",
                os.getpid(),
                self.opts.workers,
                self.settings.listen.host,
                self.settings.listen.port,
            )
            self._wait_loop()
        finally:
            self._kill_all()
            if self._reserved is not None:
                self._reserved.close()
            if self._metrics_dir_owned:
                shutil.rmtree(self._metrics_dir_owned, ignore_errors=True)
        return self.exit_code

    def _reserve_port(self) -> None:
        """Bind (without listening) so the port is ours; learn it when the settings say 0."""
        listen = self.settings.listen
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((listen.host, listen.port))
        self._reserved = sock
        port = sock.getsockname()[1]
        if port != listen.port:
            self.settings = self.settings.model_copy(update={"listen": listen.model_copy(update={"port": port})})

    def _metrics_dir(self) -> None:
        from gateway.metrics import MULTIPROC_ENV

        path = os.environ.get(MULTIPROC_ENV)
        if not path and self.settings.data_dir:  # every writable path under the data folder
            path = os.environ[MULTIPROC_ENV] = str(self.settings.data_root() / "metrics")
        if path:
            Path(path).mkdir(parents=True, exist_ok=True)
            for stale in Path(path).glob("*.db"):  # values of a previous run would be added in
                stale.unlink(missing_ok=True)
        else:
            path = self._metrics_dir_owned = tempfile.mkdtemp(prefix="crmgw-metrics-")
            os.environ[MULTIPROC_ENV] = path

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                # Stopped before its event loop handles signals: nothing is in flight, exit 0.
                signal.signal(signal.SIGTERM, _exit_cleanly)
                signal.signal(signal.SIGINT, _exit_cleanly)
                if self._reserved is not None:
                    self._reserved.close()
                code = self.run_worker(self.settings, self.opts)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = slot
        log.info("worker %d started (slot %d)", pid, slot)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("supervisor: %s, stopping %d workers", signal.Signals(signum).name, len(self.children))
        self.stopping = True
        self._deadline = time.monotonic() + self.opts.drain_timeout + KILL_GRACE
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _wait_loop(self) -> None:
        while self.children:
            if self.stopping:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    if time.monotonic() > self._deadline:
                        log.error("workers still running after the drain timeout: killing them")
                        self._kill_all(signal.SIGKILL)
                    time.sleep(0.05)
                    continue
            else:
                pid, status = os.wait()
            slot = self.children.pop(pid, None)
            if slot is None:
                continue
            self._mark_dead(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if code != 0:
                    self.exit_code = 1
                continue
            self._restart(pid, slot, code)

    def _restart(self, pid: int, slot: int, code: int) -> None:
        log.error("worker %d exited with %d", pid, code)
        if code == 2:  # the worker refused its settings or rules: restarting cannot help
            self.exit_code = 2
            self._on_stop(signal.SIGTERM, None)
            return
        now = time.monotonic()
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
        if len(self.crashes) >= MAX_CRASHES:
            log.error("workers keep dying (%d in %.0f s): stopping", len(self.crashes), CRASH_WINDOW)
            self.exit_code = 1
            self._on_stop(signal.SIGTERM, None)
            return
        time.sleep(0.2)
        self._spawn(slot)

    def _mark_dead(self, pid: int) -> None:
        try:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # unannotated upstream
        except Exception:  # metrics bookkeeping must not stop the supervisor
            pass

    def _kill_all(self, sig: int = signal.SIGKILL) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            for pid in list(self.children):
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                self.children.pop(pid, None)
