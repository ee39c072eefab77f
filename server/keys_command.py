"""`forge-training keys create|list|revoke`: API key administration, run where the server's
metadata database is reachable (the same --data-dir / --database-url as `serve`)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.apikeys import ROLES, ApiKeys, parse_roles
from engine.app import EngineSettings
from engine.errors import ForgeError
from engine.store.database import Database
from server import config as server_config


def add_parser(commands) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys",
                               description="API keys for a server started with --auth api-key. A key holds a "
                                           f"role per project ({' < '.join(ROLES)}).")
    server_config.add_database_arguments(keys)
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once and never stored")
    create.add_argument("--name", required=True, help="what the key is for, e.g. ci or alice-laptop")
    create.add_argument("--role", action="append", required=True, metavar="PROJECT=ROLE",
                        help=f"a project and the key's role in it ({', '.join(ROLES)}); repeatable")
    listing = actions.add_parser("list", help="every key: id, name, roles, created, revoked")
    listing.add_argument("--output", choices=("table", "json"), default="table")
    revoke = actions.add_parser("revoke", help="revoke a key (servers stop accepting it within seconds)")
    revoke.add_argument("key_id", help="the key's id, as `keys list` shows it")


def run(args: argparse.Namespace) -> int:
    if not args.database_url:  # SQLite in the data dir: keys may be made before the first `serve`
        args.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(EngineSettings(data_dir=args.data_dir, database_url=args.database_url).resolved_database_url())
    try:
        db.create_schema()
        keys = ApiKeys(db)
        if args.keys_command == "create":
            row, secret = keys.create(args.name, parse_roles(args.role))
            print(secret)
            print(f"created key {row.id} ({row.name}: {_roles(row.roles)}); this is the only time it is shown",
                  file=sys.stderr)
        elif args.keys_command == "list":
            rows = keys.list()
            if args.output == "json":
                print(json.dumps([{"id": r.id, "name": r.name, "roles": r.roles,
                                   "create_time": r.create_time.isoformat(),
                                   "revoke_time": r.revoke_time.isoformat() if r.revoke_time else None}
                                  for r in rows], indent=2))
            else:
                for r in rows:
                    state = f"revoked {r.revoke_time:%Y-%m-%d %H:%M}" if r.revoke_time else "active"
                    print(f"{r.id}  {r.name:<20} {_roles(r.roles):<30} created {r.create_time:%Y-%m-%d %H:%M}  {state}")
        else:
            row = keys.revoke(args.key_id)
            print(f"revoked key {row.id} ({row.name})")
        return 0
    except ForgeError as exc:
        print(f"forge-training keys: {exc.message}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _roles(roles: dict[str, str]) -> str:
    return ",".join(f"{p}={r}" for p, r in sorted(roles.items()))
