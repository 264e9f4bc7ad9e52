"""Issue 11: the environment's secrets and overrides, config discovery and `crmgw init`, as real processes.

    CRMGW_MASK_KEY=... CRMGW_CONSOLE_SECRET=... crmgw serve --config examples/gateway.yaml
starts, and a `hash` mask uses that key; docker-compose.yml's own environment is accepted; an unknown
CRMGW_* variable is a warning naming it; a bad override names the variable; `crmgw init` writes files
that `rules check` passes and `serve` accepts; every command finds its settings the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from democrm.app import create_app as create_crm
from gateway.console.session import SESSION_COOKIE, Sessions
from gateway.identity.devkeys import mint_token
from tests.alerts.conftest import raise_kwargs
from tests.conftest import REPO, RULES
from tests.integration.test_demo_command import free_port

pytestmark = pytest.mark.slow

CRM_TOKEN = "demo-crm-service-token"  # examples/gateway.yaml's credential towards the demo CRM
MASK_KEY = "m" * 16 + "-mask-key-for-the-acceptance-test"
CONSOLE_SECRET = "c" * 16 + "-console-secret-for-the-acceptance-test"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CRMGW_ setting (the test harness's Redis kept)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMGW_") or k.startswith("CRMGW_TEST_")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


async def crmgw(*args: str, env: dict[str, str], cwd=None, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def start_serve(*args: str, env: dict[str, str], port: int, cwd=None) -> asyncio.subprocess.Process:
    """`crmgw serve ARGS` until /readyz answers 200; fails with its output if it exits first."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    deadline = time.monotonic() + 40
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {(await proc.stdout.read()).decode()}")
            try:
                async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve not ready: {(await proc.stdout.read()).decode()}")


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def rules_with_hashed_email(tmp_path):
    """The shipped rules, support agents getting customers' e-mail as a `hash` pseudonym."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    support = rules / "policies" / "20-support.yaml"
    text = support.read_text()
    anchor = "      - {field: phone, op: redact, keep_last: 4}\n"
    assert anchor in text
    support.write_text(text.replace(anchor, anchor + "      - {field: email, op: hash}\n", 1))
    return rules


async def test_the_readme_secrets_start_examples_gateway_yaml_and_the_mask_key_is_used(aiohttp_server, tmp_path):
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    port = free_port()
    env = clean_env(
        CRMGW_MASK_KEY=MASK_KEY,
        CRMGW_CONSOLE_SECRET=CONSOLE_SECRET,
        # overrides of declared keys: the example file as it is, on this machine's ports and folders
        CRMGW_LISTEN__PORT=str(port),
        CRMGW_UPSTREAM__URL=str(crm.make_url("")).rstrip("/"),
        CRMGW_RULES_DIR=str(rules_with_hashed_email(tmp_path)),
        CRMGW_AUDIT__PATH=str(tmp_path / "audit.log"),
        CRMGW_ALERTS__JOURNAL=str(tmp_path / "alerts.jsonl"),
        CRMGW_FOO="1",  # neither a key nor a secret: a warning, not a refusal
    )
    proc = await start_serve("--config", "examples/gateway.yaml", env=env, port=port, cwd=REPO)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(
                f"{crm.make_url('/api/customers/1')}", headers={"Authorization": f"Bearer {CRM_TOKEN}"}
            ) as r:
                email = (await r.json())["email"]
            async with s.get(
                f"http://127.0.0.1:{port}/api/customers/1", headers={"Authorization": f"Bearer {mint_token('frank')}"}
            ) as r:
                assert r.status == 200
                masked = (await r.json())["email"]
            expected = "hmac:" + hmac.new(MASK_KEY.encode(), email.encode(), hashlib.sha256).hexdigest()[:16]
            assert masked == expected
            # the console's session key is the one in CRMGW_CONSOLE_SECRET: a cookie sealed with it is accepted
            cookie = Sessions(CONSOLE_SECRET.encode(), max_age=3600, allowed_origins=[]).seal(mint_token("heidi"))
            async with s.get(
                f"http://127.0.0.1:{port}/_gw/console/alerts",
                allow_redirects=False,
                headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
            ) as r:
                assert r.status == 200, await r.text()
    finally:
        out = await stop(proc)
    assert "settings from examples/gateway.yaml (--config)" in out
    assert "CRMGW_FOO is set but is neither a gateway.yaml key nor a secret" in out
    for name in ("CRMGW_MASK_KEY", "CRMGW_CONSOLE_SECRET"):
        assert name not in out  # read as secrets: never warned about, never an override


async def test_docker_compose_environment_is_accepted_by_serve(aiohttp_server, redis_url, tmp_path):
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    gateways = [s for name, s in compose["services"].items() if name.startswith("gateway")]
    assert gateways
    environment = {k: str(v) for k, v in gateways[0]["environment"].items()}
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    port = free_port()
    # Only what names the compose network or a container path changes; every variable stays set.
    local = {"CRMGW_UPSTREAM__URL": str(crm.make_url("")).rstrip("/"), "CRMGW_REDIS_URL": redis_url}
    for name, value in environment.items():  # container folders (data, metrics) -> folders under tmp_path
        if value.startswith(("/var/", "/run/", "/etc/")) and name not in local:
            local[name] = str(tmp_path / value.strip("/").replace("/", "-"))
            Path(local[name]).mkdir()
    env = clean_env(
        **{k: local.get(k, v) for k, v in environment.items()},
        CRMGW_LISTEN__HOST="127.0.0.1",
        CRMGW_LISTEN__PORT=str(port),
        CRMGW_RULES_DIR=str(RULES),
        CRMGW_AUDIT__PATH=str(tmp_path / "audit.log"),
        CRMGW_ALERTS__JOURNAL=str(tmp_path / "alerts.jsonl"),
    )
    proc = await start_serve("--config", str(REPO / "deploy" / "gateway.yaml"), env=env, port=port)
    try:
        async with aiohttp.ClientSession() as s:
            # compose's CRMGW_JWT_SECRET is the development key: its tokens are accepted
            async with s.get(
                f"http://127.0.0.1:{port}/api/customers?page_size=3",
                headers={"Authorization": f"Bearer {mint_token('grace')}"},
            ) as r:
                assert r.status == 200 and len((await r.json())["data"]) == 3
    finally:
        out = await stop(proc)
    assert "unknown key" not in out and "is set but is neither" not in out, out


async def test_a_bad_override_names_the_variable_not_a_line_of_the_file(tmp_path):
    code, out, err = await crmgw(
        "serve",
        "--config",
        "examples/gateway.yaml",
        cwd=REPO,
        env=clean_env(CRMGW_LISTEN__PORT="eighty", CRMGW_MASK_KEY=MASK_KEY),
    )
    assert code == 2
    assert "CRMGW_LISTEN__PORT: listen.port:" in err
    assert "examples/gateway.yaml:" not in err  # no file:line blamed for the environment's value


async def test_init_writes_a_gateway_that_checks_serves_and_signs_its_own_tokens(aiohttp_server, tmp_path):
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    port = free_port()
    target = tmp_path / "mygateway"
    env = clean_env(
        CRMGW_JWT_SECRET="j" * 40,
        CRMGW_MASK_KEY=MASK_KEY,
        CRMGW_CONSOLE_SECRET=CONSOLE_SECRET,
        CRM_SERVICE_TOKEN=f"Bearer {CRM_TOKEN}",
    )
    code, out, err = await crmgw("init", str(target), "--crm-url", str(crm.make_url("")), "--port", str(port), env=env)
    assert code == 0, err
    assert (target / "gateway.yaml").is_file() and (target / "rules" / "operations.yaml").is_file()
    code, out, err = await crmgw("rules", "check", str(target / "rules"), env=env)
    assert code == 0 and out.startswith("ok:"), out + err
    code, out, err = await crmgw("rules", "test", str(target / "rules"), env=env)
    assert code == 0, out + err
    # init never overwrites
    code, _, err = await crmgw("init", str(target), "--crm-url", "http://x", env=env)
    assert code == 2 and "exists" in err
    # the demo CRM wants its service credential: the commented line of the written file, switched on
    config = target / "gateway.yaml"
    config.write_text(
        config.read_text().replace(
            "  # credential: {header: Authorization, value_env: CRM_SERVICE_TOKEN}",
            "  credential: {header: Authorization, value_env: CRM_SERVICE_TOKEN}",
        )
    )
    code, token, err = await crmgw("token", "grace", "--config", "gateway.yaml", cwd=target, env=env)
    assert code == 0, err
    proc = await start_serve(env=env, port=port, cwd=target)  # no --config: ./gateway.yaml
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(
                f"http://127.0.0.1:{port}/api/customers?page_size=2",
                headers={"Authorization": f"Bearer {token.strip()}"},
            ) as r:
                assert r.status == 200 and len((await r.json())["data"]) == 2
            # the development key is not this gateway's
            async with s.get(
                f"http://127.0.0.1:{port}/api/customers", headers={"Authorization": f"Bearer {mint_token('grace')}"}
            ) as r:
                assert r.status == 401
    finally:
        out = await stop(proc)
    assert "settings from gateway.yaml (./gateway.yaml in the current folder)" in out
    assert (target / "var" / "audit.log").is_file()


def write_settings(path, journal: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "upstream": {"url": "http://127.0.0.1:9"},
                "rules_dir": str(RULES),
                "audit": {"path": "audit.log"},
                "alerts": {"journal": journal},
                "identity": {"api_key": {"header": "X-API-Key"}},
            }
        )
    )


async def test_every_command_finds_its_settings_the_same_way_and_says_which(tmp_path):
    from gateway.alerts import open_alert_store
    from gateway.alerts.config import AlertsConfig

    here, other = tmp_path / "here", tmp_path / "other"
    here.mkdir(), other.mkdir()
    write_settings(here / "gateway.yaml", "journal/alerts.jsonl")
    write_settings(other / "elsewhere.yaml", "empty.jsonl")
    store = await open_alert_store(
        AlertsConfig(journal=str(here / "journal" / "alerts.jsonl")),
        redis_url=None,
        base_dir=here,
        background=False,
        with_sinks=False,
    )
    try:
        alert_id = await store.raise_alert(**raise_kwargs())
    finally:
        await store.close()

    # ./gateway.yaml: the configured journal, not another one
    code, out, err = await crmgw("alerts", "list", cwd=here, env=clean_env())
    assert code == 0 and alert_id in out, out + err
    assert "settings from gateway.yaml (./gateway.yaml in the current folder)" in err
    assert f"1 alert(s) in {here / 'journal' / 'alerts.jsonl'}" in err
    code, out, err = await crmgw("alerts", "show", alert_id, cwd=here, env=clean_env())
    assert code == 0 and alert_id in out, err
    # $CRMGW_CONFIG comes before ./gateway.yaml
    elsewhere = clean_env(CRMGW_CONFIG=str(other / "elsewhere.yaml"))
    code, out, err = await crmgw("alerts", "list", cwd=here, env=elsewhere)
    assert code == 0 and alert_id not in out
    assert f"settings from {other / 'elsewhere.yaml'} ($CRMGW_CONFIG)" in err and "0 alert(s) in" in err
    # --config comes before both
    code, out, err = await crmgw("alerts", "list", "--config", "gateway.yaml", cwd=here, env=elsewhere)
    assert code == 0 and alert_id in out and "settings from gateway.yaml (--config)" in err
    # serve uses the same order
    code, out, err = await crmgw("serve", cwd=here, env=clean_env(CRMGW_LISTEN__PORT="-1"))
    assert code == 2 and "settings from gateway.yaml (./gateway.yaml in the current folder)" in err
    # nothing anywhere: said, exit 2
    for command in (["alerts", "list"], ["serve"], ["signals", "rebuild", "--audit-log", "x"]):
        code, out, err = await crmgw(*command, cwd=other, env=clean_env())
        assert code == 2 and "no settings: give --config FILE, set CRMGW_CONFIG" in err, (command, err)
