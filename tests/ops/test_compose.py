"""docker-compose.yml run as local processes (no Docker engine on these machines): the shipped deployment.

What comes from the files as written, and what is mapped:

  commands      the service's ``command:``; the gateways have none, so the Dockerfile's CMD, WORKDIR and
                ENV (``--workers 2``). Programs by name: crmgw and democrm from this checkout,
                redis-server and nginx from Debian (``./run test`` installs both).
  environment   as written, service addresses (``crm:8081``, ``redis:6379``) mapped to loopback ports
                and absolute container paths (``CRMGW_DATA_DIR``) to the service's own folder.
  file system   every service gets a folder standing for its file system (``<service>/root``): a bind
                mount is a symlink to the host path, a named volume a folder under ``volumes/``, and the
                Dockerfile's COPY to an absolute path (deploy/gateway.yaml) is copied in.
  network       each service listens on 127.0.0.1 on its own port instead of its own address:
                ``CRMGW_LISTEN__HOST/PORT`` for the gateways, ``--bind/--port`` for redis, democrm's
                ``--host/--port``; the entry reaches the gateways from 127.0.0.1, so
                ``CRMGW_TRUSTED_PROXIES=["127.0.0.1/32"]`` stands for the Docker networks.
  entry         nginx's image includes conf.d/*.conf inside ``http {}``; a generated main file does the
                same with deploy/entry-nginx.conf (the compose mount's source) in which only the
                upstream addresses and the listen port are substituted; pid, logs and temp files in the
                test's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from gateway.identity.devkeys import mint_token
from tests.conftest import REPO
from tests.console.conftest import CSRF
from tests.ops.conftest import children_of, free_port, listening_pids, wait_ready

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
PROGRAMS = {"crmgw": [sys.executable, "-m", "gateway.cli"], "democrm": [sys.executable, "-m", "democrm"]}
# What the images used by docker-compose.yml bring that the compose file does not say.
IMAGE_WORKDIR = {"redis:7-bookworm": "/data"}  # redis writes its append-only file in its working folder
IMAGE_PORT = {"redis:7-bookworm": 6379}
CONSOLE = "/_gw/console"
STOP_TIMEOUT = 30


def read_dockerfile(path: Path = DOCKERFILE) -> dict:
    """CMD (JSON form), ENV, WORKDIR and COPY-to-an-absolute-path of a Dockerfile."""
    text = re.sub(r"\\\n", " ", path.read_text())
    image = {"cmd": None, "env": {}, "workdir": "/", "copies": []}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        if word == "CMD":
            image["cmd"] = json.loads(rest)
        elif word == "ENV":
            image["env"].update(item.split("=", 1) for item in shlex.split(rest))
        elif word == "WORKDIR":
            image["workdir"] = rest.strip()
        elif word == "COPY":
            parts = rest.split()
            if len(parts) == 2 and parts[1].startswith("/"):
                image["copies"].append((parts[0], parts[1]))
    return image


class Topology:
    """The compose services as processes; ``async with topology.up():`` starts and stops them."""

    def __init__(self, tmp: Path, compose: dict, image: dict):
        self.tmp, self.image = tmp, image
        self.services: dict = compose["services"]
        self.ports: dict[tuple[str, int], int] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.exit_codes: dict[str, int] = {}
        self._service_address = re.compile(r"\b({}):(\d+)\b".format("|".join(map(re.escape, self.services))))

    # --- mapping --------------------------------------------------------------------------
    def port(self, service: str, container_port: int) -> int:
        """The loopback port standing for ``service:container_port``."""
        key = (service, container_port)
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def addresses(self, text: str) -> str:
        """``crm:8081`` -> ``127.0.0.1:<port>`` for every compose service named in ``text``."""
        return self._service_address.sub(lambda m: f"127.0.0.1:{self.port(m[1], int(m[2]))}", text)

    def root(self, service: str) -> Path:
        return self.tmp / service / "root"

    def host_path(self, service: str, container_path: str) -> Path:
        return self.root(service) / container_path.lstrip("/")

    def value(self, service: str, value) -> str:
        text = self.addresses(str(value))
        return str(self.host_path(service, text)) if text.startswith("/") else text

    def health_url(self, service: str) -> str | None:
        """The http://127.0.0.1:PORT/... URL of the service's healthcheck, mapped."""
        test = " ".join(self.services[service]["healthcheck"]["test"])
        found = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/.-]*)", test)
        return f"http://127.0.0.1:{self.port(service, int(found[1]))}{found[2]}" if found else None

    def listen_port(self, service: str) -> int:
        """The container port a service listens on: its healthcheck's, else its image's."""
        test = " ".join(self.services[service]["healthcheck"]["test"])
        found = re.search(r"http://127\.0\.0\.1:(\d+)", test)
        return int(found[1]) if found else IMAGE_PORT[self.services[service]["image"]]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service, self.listen_port(service))}"

    def command(self, service: str) -> list[str]:
        svc = self.services[service]
        return list(svc.get("command") or (self.image["cmd"] if "build" in svc else []))

    def prepare(self, service: str) -> tuple[list[str], dict[str, str], Path]:
        """(argv, environment, working folder) of one service, its file system laid out."""
        svc = self.services[service]
        root = self.root(service)
        for folder in ("tmp", "home"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            host = (REPO / source).resolve() if source.startswith(".") else self.tmp / "volumes" / source
            if not source.startswith("."):
                host.mkdir(parents=True, exist_ok=True)
            link = self.host_path(service, target)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(host)
        built = "build" in svc
        if built:
            for source, target in self.image["copies"]:
                self.host_path(service, target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, self.host_path(service, target))
        workdir = self.host_path(service, self.image["workdir"] if built else IMAGE_WORKDIR.get(svc["image"], "/"))
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
            "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"),
        }
        if built:
            env.update({k: self.value(service, v) for k, v in self.image["env"].items()})
        env.update({k: self.value(service, v) for k, v in (svc.get("environment") or {}).items()})
        argv = []
        for i, arg in enumerate(self.command(service)):
            if i > 0 and argv[-1] == "--port":
                arg = str(self.port(service, int(arg)))
            elif arg == "0.0.0.0":
                arg = "127.0.0.1"
            elif arg.startswith("/"):
                arg = str(self.host_path(service, arg))
            argv.append(arg)
        argv = PROGRAMS.get(argv[0], [shutil.which(argv[0]) or argv[0]]) + argv[1:]
        # The network: one loopback address for every service instead of one address each.
        if argv[0].endswith("redis-server"):
            argv += ["--bind", "127.0.0.1", "--port", str(self.port(service, IMAGE_PORT[svc["image"]]))]
        if self.command(service)[:2] == ["crmgw", "serve"]:
            env.update(
                {
                    "CRMGW_LISTEN__HOST": "127.0.0.1",
                    "CRMGW_LISTEN__PORT": str(self.port(service, self.listen_port(service))),
                    "CRMGW_TRUSTED_PROXIES": '["127.0.0.1/32"]',
                }
            )
        return argv, env, workdir

    # --- the entry (nginx) -------------------------------------------------------------------
    def prepare_entry(self, service: str) -> tuple[list[str], Path]:
        svc = self.services[service]
        conf_mount = next(v for v in svc["volumes"] if ":/etc/nginx/conf.d/" in v)
        source = (REPO / conf_mount.split(":")[0]).resolve()
        text, upstreams = self._service_address.subn(
            lambda m: f"127.0.0.1:{self.port(m[1], int(m[2]))}", source.read_text()
        )
        published = int(svc["ports"][0].split(":")[-1])
        text, listens = re.subn(
            r"(?m)^(\s*listen\s+)(\d+)(\s*;)", lambda m: f"{m[1]}127.0.0.1:{self.port(service, int(m[2]))}{m[3]}", text
        )
        assert (upstreams, listens, int(re.search(r"listen\s+(\d+)", source.read_text())[1])) == (2, 1, published)
        folder = self.tmp / service
        (folder / "conf.d").mkdir(parents=True, exist_ok=True)
        (folder / "conf.d" / "default.conf").write_text(text)
        temp = "\n".join(
            f"  {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(f"""\
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} notice;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 256; }}
http {{
  log_format upstreams '$request_method $uri $status $upstream_addr';
  access_log {folder / "access.log"} upstreams;
{temp}
  include {folder / "conf.d"}/*.conf;
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(nginx).exists(), "nginx is not installed: ./run test installs Debian's nginx package"
        return [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")], folder

    # --- running --------------------------------------------------------------------------
    def order(self) -> list[str]:
        done: list[str] = []

        def visit(name: str) -> None:
            for dep in self.services[name].get("depends_on", {}):
                visit(dep)
            if name not in done:
                done.append(name)

        for name in self.services:
            visit(name)
        return done

    def log_of(self, service: str) -> str:
        path = self.tmp / service / "output.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def start(self, service: str) -> None:
        svc = self.services[service]
        if svc.get("image", "").startswith("nginx:"):
            argv, cwd = self.prepare_entry(service)
            env = {"PATH": os.environ["PATH"]}
        else:
            argv, env, cwd = self.prepare(service)
        (self.tmp / service).mkdir(parents=True, exist_ok=True)
        with open(self.tmp / service / "output.log", "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
            )
        self.procs[service] = proc
        try:
            await self.wait_healthy(service, proc)
        except AssertionError as exc:
            raise AssertionError(f"{service}: {exc}\n{self.log_of(service)}") from None

    async def wait_healthy(self, service: str, proc) -> None:
        url = self.health_url(service)
        if url is None:  # redis: redis-cli ping
            import redis.asyncio as aioredis

            client = aioredis.from_url(f"redis://127.0.0.1:{self.port(service, self.listen_port(service))}/0")
            try:
                for _ in range(200):
                    with contextlib.suppress(Exception):
                        if await client.ping():
                            return
                    await asyncio.sleep(0.05)
            finally:
                await client.aclose()
            raise AssertionError("redis-server did not answer PING")
        workers = self.workers(service)
        port = self.port(service, self.listen_port(service))
        await wait_ready(proc, url, lambda: not workers or len(listening_pids(port, children_of(proc.pid))) == workers)

    def workers(self, service: str) -> int:
        command = self.command(service)
        return int(command[command.index("--workers") + 1]) if "--workers" in command else 0

    async def stop_all(self) -> None:
        for service in reversed(list(self.procs)):
            proc = self.procs[service]
            if proc.returncode is None:
                nginx = self.services[service].get("image", "").startswith("nginx:")
                proc.send_signal(signal.SIGQUIT if nginx else signal.SIGTERM)  # each one's graceful stop
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            self.exit_codes[service] = proc.returncode

    @contextlib.asynccontextmanager
    async def up(self):
        try:
            for group in self.start_groups():
                await asyncio.gather(*(self.start(s) for s in group))
            yield self
        finally:
            await self.stop_all()

    def start_groups(self) -> list[list[str]]:
        """Services in dependency order, those whose dependencies are all up started together."""
        groups: list[list[str]] = []
        started: set[str] = set()
        pending = self.order()
        while pending:
            ready = [s for s in pending if set(self.services[s].get("depends_on", {})) <= started]
            groups.append(ready)
            started.update(ready)
            pending = [s for s in pending if s not in ready]
        return groups


def topology(tmp_path: Path) -> Topology:
    return Topology(tmp_path, yaml.safe_load(COMPOSE.read_text()), read_dockerfile())


def files_under(root: Path) -> set[str]:
    """Regular files under ``root``, not following symlinks (the mounts)."""
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                found.add(str(path.relative_to(root)))
    return found


async def console_login(s: aiohttp.ClientSession, base: str, user: str) -> aiohttp.ClientResponse:
    """The login form as a browser fills it: GET (nonce cookie + token), POST with the page's Origin."""
    async with s.get(base + CONSOLE + "/login") as page:
        assert page.status == 200
        token = CSRF.search(await page.text())[1]
    async with s.post(
        base + CONSOLE + "/login",
        data={"csrf": token, "token": mint_token(user), "next": ""},
        headers={"Origin": base},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
        return resp


async def page_loads(s: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    """Statuses of ``n`` loads of a console page; a 303 is a bounce to the login page."""
    statuses = []
    for _ in range(n):
        async with s.get(url, allow_redirects=False) as r:
            statuses.append(r.status)
            if r.status == 200:
                assert 'name="token"' not in await r.text()  # the page, not the login form
    return statuses


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_compose_deployment_logs_in_through_the_entry_and_shows_an_alert_raised_by_traffic(tmp_path):
    topo = topology(tmp_path)
    gateways = [s for s in topo.services if topo.command(s)[:2] == ["crmgw", "serve"]]
    assert gateways == ["gateway-1", "gateway-2"] and [topo.workers(g) for g in gateways] == [2, 2]
    analyst = {"Authorization": f"Bearer {mint_token('heidi')}"}
    async with topo.up():
        entry = topo.url("entry")
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host, as a browser keeps them
        async with aiohttp.ClientSession(cookie_jar=jar) as s:
            # Traffic: 20 consecutive ids, round-robin over the replicas and their workers. No worker
            # sees two consecutive ids in a row, so the alert needs the replicas counting in one Redis.
            grace = {"Authorization": f"Bearer {mint_token('grace')}"}
            # Counting is off the request path: events of consecutive requests answered by different
            # replicas reach Redis in the order each replica counts them, so the script walking ids is
            # paced like one waiting a little for each answer, not faster than the counting.
            for i in range(1, 21):
                async with s.get(f"{entry}/api/customers/{i}", headers=grace) as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["id"] == i
                await asyncio.sleep(0.1)

            resp = await console_login(s, entry, "heidi")
            assert resp.headers["Location"] == CONSOLE + "/alerts"
            assert await page_loads(s, entry + CONSOLE + "/alerts", 20) == [200] * 20

            alert = None
            for _ in range(100):  # counting is off the request path
                async with s.get(entry + "/_gw/api/alerts", headers=analyst) as r:
                    assert r.status == 200
                    found = [a for a in (await r.json())["alerts"] if a["type"] == "enumeration-sequential"]
                if found:
                    alert = found[0]
                    break
                await asyncio.sleep(0.1)
            assert alert is not None and alert["user"] == "grace", "no enumeration alert"
            async with s.get(entry + CONSOLE + "/alerts", allow_redirects=False) as r:
                assert r.status == 200 and alert["id"] in await r.text()

            # A POST past the login through the entry: the analyst acknowledges the alert.
            async with s.get(f"{entry}{CONSOLE}/alerts/{alert['id']}", allow_redirects=False) as r:
                assert r.status == 200
                csrf = CSRF.search(await r.text())[1]
            async with s.post(
                f"{entry}{CONSOLE}/alerts/{alert['id']}/action",
                data={"csrf": csrf, "action": "ack"},
                headers={"Origin": entry},
                allow_redirects=False,
            ) as r:
                assert r.status == 303, await r.text()
            async with s.get(f"{entry}/_gw/api/alerts/{alert['id']}", headers=analyst) as r:
                assert (await r.json())["status"] == "acknowledged"

        for gateway in gateways:  # each replica answers ready: audit log and journal writable
            async with aiohttp.ClientSession() as s, s.get(topo.url(gateway) + "/readyz") as r:
                assert r.status == 200

    assert all(code == 0 for code in topo.exit_codes.values()), (topo.exit_codes, topo.log_of("gateway-1"))
    # Console pages went to both replicas (nginx's record of which upstream answered).
    access = (tmp_path / "entry" / "access.log").read_text().splitlines()
    upstreams = {line.split()[-1] for line in access if line.startswith(f"GET {CONSOLE}/alerts ")}
    assert upstreams == {f"127.0.0.1:{topo.port(g, 8080)}" for g in gateways}
    # Every file a gateway wrote is in its data volume; the rest of its file system is as the image left it.
    for gateway in gateways:
        assert files_under(topo.root(gateway)) == {"etc/crmgw/gateway.yaml"}
        data = tmp_path / "volumes" / f"{gateway}-data"
        assert (data / "audit.log").read_text().count("\n") >= 10
        assert (data / "metrics").is_dir()
    assert any((tmp_path / "volumes" / f"{g}-data" / "alerts.jsonl").exists() for g in gateways)


def test_the_compose_file_gives_each_replica_its_own_data_volume_and_one_console_secret():
    compose = yaml.safe_load(COMPOSE.read_text())
    gateways = {k: v for k, v in compose["services"].items() if k.startswith("gateway-")}
    data = [next(v for v in g["volumes"] if v.endswith(":/var/lib/crmgw")) for g in gateways.values()]
    assert len(set(data)) == len(gateways) == 2
    assert all(g["read_only"] is True for g in gateways.values())
    secrets = {g["environment"].get("CRMGW_CONSOLE_SECRET") for g in gateways.values()}
    assert len(secrets) == 1 and len(secrets.pop() or "") >= 32
    assert {g["environment"]["CRMGW_DATA_DIR"] for g in gateways.values()} == {"/var/lib/crmgw"}
