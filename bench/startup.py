"""``python -m bench startup [--runs 5] [--model] [--src DIR ...] [--json FILE]``: how fast crmgw starts.

    token        `crmgw token alice` (python -m gateway.cli), from spawn to exit
    serve        `crmgw serve` (python -m gateway.server, one worker, the example rules, no model),
                 from spawn to its first 200 on /readyz (rules loaded, audit writable)
    serve+model  the same with scoring.model_dir set (--model: trains a small model here first);
                 loading a model is what imports scikit-learn, and readiness waits for it

Each figure is the median (with min and max) of ``--runs`` runs, interleaved so a change in the
machine's load affects them alike. A measurement, not a test: the figures depend on the machine.
``token_imported`` says which of scikit-learn, scipy, numpy and skops `crmgw token` imported (from
``python -X importtime``; tests/test_startup_imports.py checks the same for every path).
``--src DIR`` measures another checkout of the code with this virtualenv; given twice (before,
after) both are measured in the same interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from bench.servers import REPO, free_port

HEAVY = ("sklearn", "scipy", "numpy", "skops")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    p.add_argument("--model", action="store_true", help="also serve with a detector model (trains one, ~1 min)")
    p.add_argument(
        "--src",
        type=Path,
        action="append",
        help="a checkout to measure (default: this one); repeat to compare, runs interleaved",
    )
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    return p.parse_args(argv)


def _env(src: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def time_token(src: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "token", "alice", "--rules", str(src / "rules")],
        cwd=src,
        env=_env(src),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def serve_config(workdir: Path, src: Path, model_dir: Path | None) -> tuple[Path, int]:
    from gateway.identity.devkeys import DEV_IDENTITY_CONFIG

    port = free_port()
    config: dict = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"url": f"http://127.0.0.1:{free_port()}"},  # never called: readiness only
        "rules_dir": str(src / "rules"),
        "audit": {"path": str(workdir / f"audit-{port}.log")},
        "identity": DEV_IDENTITY_CONFIG.model_dump(mode="json", exclude_defaults=True),
    }
    if model_dir is not None:
        config["scoring"] = {"model_dir": str(model_dir)}
    path = workdir / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, port


def time_serve(workdir: Path, src: Path, model_dir: Path | None, timeout: float = 120.0) -> float:
    """Seconds from spawning the server to its first 200 on /readyz (polled every 10 ms)."""
    config, port = serve_config(workdir, src, model_dir)
    log_path = workdir / f"serve-{port}.log"
    log = open(log_path, "wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.server", "--config", str(config)],
        cwd=workdir,
        env=_env(src),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    # Ours, not another gateway sharing the port through SO_REUSEPORT (same user):
                    # ours has logged that it listens.
                    if r.status == 200 and b"gateway listening on" in log_path.read_bytes():
                        return time.perf_counter() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"gateway not ready: {log_path.read_text()[-2000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def heavy_imports(src: Path, argv: list[str]) -> list[str]:
    """Which of HEAVY a command imported, from ``-X importtime`` (stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], cwd=src, env=_env(src), capture_output=True, text=True, timeout=120
    )
    names = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return sorted(set(HEAVY) & names)


def train_small_model(workdir: Path) -> Path:
    from detectors.simulate import simulate
    from detectors.train import train

    world, out = workdir / "world", workdir / "model"
    simulate(40, 28, 11, world, incidents=3)
    train([world], out, labels_path=world / "labels.jsonl", budget=10.0, holdout=0.0)
    return out


def summary(values: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "runs": len(values),
    }


def run_startup(runs: int, sources: list[Path], with_model: bool) -> dict:
    """Figures per checkout; every run measures each checkout in turn, so load drift hits all alike."""
    work = Path(tempfile.mkdtemp(prefix="crmgw-startup-"))
    try:
        model = train_small_model(work) if with_model else None
        names = ["token", "serve"] + (["serve+model"] if model is not None else [])
        samples = {str(src): {name: [] for name in names} for src in sources}
        for _ in range(runs):
            for src in sources:
                mine = samples[str(src)]
                mine["token"].append(time_token(src))
                mine["serve"].append(time_serve(work, src, None))
                if model is not None:
                    mine["serve+model"].append(time_serve(work, src, model))
        results = {src: {name: summary(v) for name, v in figures.items()} for src, figures in samples.items()}
        for src in sources:
            results[str(src)]["token_imported"] = heavy_imports(src, ["-m", "gateway.cli", "token", "alice"])
        info = {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "python": sys.version.split()[0]}
        return {"results": results, "info": info}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render(out: dict) -> str:
    lines = ["start-up (seconds, median [min-max] of runs)"]
    for src, figures in out["results"].items():
        lines.append(f"  {src}")
        for name in ("token", "serve", "serve+model"):
            if name in figures:
                f = figures[name]
                lines.append(f"    {name:12} {f['median_s']:6.2f}  [{f['min_s']:.2f}-{f['max_s']:.2f}]  x{f['runs']}")
        lines.append(
            f"    crmgw token imported: {', '.join(figures['token_imported']) or 'none of ' + ', '.join(HEAVY)}"
        )
    info = out["info"]
    lines.append(f"  {info['cpus']} cpus, load average {' '.join(f'{x:.2f}' for x in info['load_average'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = run_startup(args.runs, [src.resolve() for src in args.src or [REPO]], args.model)
    print(render(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
