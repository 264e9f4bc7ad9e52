"""``python -m democrm`` / the ``democrm`` console script: run the demo CRM."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from democrm.app import PROFILES, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="democrm", description="Run the demo legacy CRM API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--gzip", action="store_true", help="compress responses when the client accepts gzip/deflate")
    parser.add_argument("--db", default=":memory:", help="SQLite file (seeded when empty); default in memory")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="classic",
        help="classic: the original shapes; realistic: a Django-REST-style CRM with UUIDs (in memory, no --db)",
    )
    args = parser.parse_args(argv)
    if args.profile == "realistic" and args.db != ":memory:":
        parser.error("--db: the realistic profile keeps its records in memory")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(profile=args.profile, db_path=args.db, gzip=args.gzip, seed=args.seed)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
