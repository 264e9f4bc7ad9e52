"""The audit hash chain on a real `crmgw serve --workers 2`: traffic, rotation, /metrics, signed heads.

Two worker processes append to one audit file (and rotate it); `crmgw audit verify` must pass on the
untouched files and fail, naming the line, once a line is removed, edited, or two are swapped. The
head on /metrics (whichever worker answers) is the verified head, and the signed heads written by
the workers catch lines cut from the end, which no chain can.
"""

from __future__ import annotations

import asyncio
import re
import shutil

import aiohttp
import pytest
import yaml

from democrm.app import create_app as create_crm
from gateway.audit.chain import line_hash
from gateway.cli import main
from gateway.identity.devkeys import mint_token
from tests.ops.conftest import CRM_TOKEN, children_of, free_port, start_gateway, stop, write_config

KEY = "k" * 32
HEAD = re.compile(r'^crmgw_audit_chain_head_info\{head="([0-9a-f]{64})",seq="(\d+)"\} 1\.0$', re.M)


def config_with_audit(folder, *, upstream: str, port: int, **audit):
    """write_config's file with more audit settings (write_config names the path only)."""
    path = write_config(folder, upstream=upstream, port=port)
    config = yaml.safe_load(path.read_text())
    config["audit"].update(audit)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def oldest_first(folder):
    backups = sorted(folder.glob("audit.log.*[0-9]"), key=lambda f: int(f.suffix[1:]), reverse=True)
    return [*backups, folder / "audit.log"]


def verify(files, capsys, *extra) -> tuple[int, str]:
    code = main(["audit", "verify", *map(str, files), *extra])
    return code, capsys.readouterr().out


@pytest.mark.slow
async def test_two_workers_write_one_chain_that_verifies_and_catches_tampering(
    aiohttp_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TEST_AUDIT_HEAD_KEY", KEY)  # for verify --heads, in this process
    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    port = free_port()
    logs = tmp_path / "logs"
    heads = tmp_path / "signed" / "heads.jsonl"
    config = config_with_audit(
        logs,
        upstream=str(crm.make_url("")),
        port=port,
        max_bytes=8192,
        backups=50,
        head_key_env="TEST_AUDIT_HEAD_KEY",
        heads_path=str(heads),
        head_interval=0.2,
    )
    proc = await start_gateway(config, "--workers", "2", env={"TEST_AUDIT_HEAD_KEY": KEY})
    try:
        assert len(children_of(proc.pid)) == 2
        auth = {"Authorization": f"Bearer {mint_token('grace')}"}

        async def one(s, path):
            async with s.get(f"http://127.0.0.1:{port}{path}", headers=auth) as r:
                await r.read()

        # new connections, concurrently: both workers append, interleaved
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(6):
                await asyncio.gather(
                    *(one(s, p) for p in ["/api/customers/1", "/api/customers/2", "/api/customers/export.csv"] * 4)
                )
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
            metrics = await r.text()
        for _ in range(100):  # a signer's interval passes
            if heads.exists() and heads.read_text().strip():
                break
            await asyncio.sleep(0.05)
    finally:
        code, out = await stop(proc)
    assert code == 0, out
    files = oldest_first(logs)
    assert len(files) >= 3, "the workers rotated the file"
    lines = [raw for f in files for raw in f.read_bytes().splitlines()]
    assert len(lines) == 72

    # untouched: the chain holds through both workers and every rotation
    code, out = verify(files, capsys, "--heads", str(heads), "--key-env", "TEST_AUDIT_HEAD_KEY")
    assert code == 0, out
    assert f"head seq 72 sha256 {line_hash(lines[-1])}" in out

    # /metrics showed the head as it was then: a line of this same chain, at its seq
    head, seq = HEAD.search(metrics).groups()
    assert 1 <= int(seq) <= 72 and line_hash(lines[int(seq) - 1]) == head
    assert f"crmgw_audit_chain_seq {seq}.0" in metrics or f"crmgw_audit_chain_seq {float(seq)}" in metrics

    # the workers signed the head when it moved, and at their stop the final one
    signed = heads.read_text().splitlines()
    assert signed and '"seq":72,' in signed[-1]

    def tampered(name: str, change) -> tuple[list, int, str]:
        copy = tmp_path / name
        shutil.copytree(logs, copy, ignore=shutil.ignore_patterns("*.yaml", "*.lock"))
        copied = oldest_first(copy)
        target = copied[1]
        rows = target.read_bytes().splitlines()
        change(rows)
        target.write_bytes(b"".join(r + b"\n" for r in rows))
        code, out = verify(copied, capsys)
        return copied, code, out

    def remove(rows):
        del rows[2]

    def edit(rows):
        rows[2] = rows[2].replace(b'"user":"grace"', b'"user":"alice"')

    def swap(rows):
        rows[2], rows[3] = rows[3], rows[2]

    copied, code, out = tampered("removed", remove)
    assert code == 1 and f"{copied[1]}:3: 1 line(s) missing before it" in out, out
    copied, code, out = tampered("edited", edit)
    assert code == 1 and f"{copied[1]}:3: edited" in out, out
    copied, code, out = tampered("swapped", swap)
    assert code == 1 and f"{copied[1]}:3: out of order" in out and f"{copied[1]}:4: out of order" in out, out

    # the last line cut: the chain alone cannot tell, the signed head can
    newest = files[-1]
    newest.write_bytes(b"".join(r + b"\n" for r in newest.read_bytes().splitlines()[:-1]))
    code, out = verify(files, capsys)
    assert code == 0, out
    code, out = verify(files, capsys, "--heads", str(heads), "--key-env", "TEST_AUDIT_HEAD_KEY")
    assert code == 1 and "head seq 72" in out and "past the end of the log" in out, out


@pytest.mark.slow
async def test_a_named_head_key_that_is_not_set_stops_start_up(aiohttp_server, tmp_path):
    port = free_port()
    config = config_with_audit(
        tmp_path, upstream="http://127.0.0.1:9", port=port, head_key_env="TEST_AUDIT_HEAD_KEY_UNSET"
    )
    try:
        await start_gateway(config, env={"TEST_AUDIT_HEAD_KEY_UNSET": ""})
    except AssertionError as exc:
        assert "TEST_AUDIT_HEAD_KEY_UNSET" in str(exc)
    else:
        raise AssertionError("the gateway started without its audit head key")


async def test_metrics_show_the_head_of_the_audit_file(aiohttp_server, aiohttp_client, tmp_path, clock, rules_copy):
    from tests.integration.conftest import auth
    from tests.ops.test_metrics import gateway_client

    crm = await aiohttp_server(create_crm(service_token=CRM_TOKEN))
    gw = await gateway_client(aiohttp_client, tmp_path, clock, str(crm.make_url("")).rstrip("/"), rules_copy)
    for _ in range(3):
        assert (await gw.get("/api/customers/1", headers=auth("grace"))).status == 200
    text = await (await gw.get("/metrics")).text()
    lines = (tmp_path / "audit.log").read_bytes().splitlines()
    assert HEAD.search(text).groups() == (line_hash(lines[-1]), "3")
    assert "crmgw_audit_chain_seq 3.0" in text
