"""``datamig token create|list|revoke``: manage API tokens in the metadata store directly.

These commands talk to the metadata database (``DM_DATABASE_URL``), not to the API, so
that the first token can be made before anyone can log in.
"""
from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from shared.settings import Settings
from shared.store.db import session_factory
from shared.store.models import TokenRow
from shared.store.tokens import ROLES, create_token, revoke_token


def add_token_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="create, list or revoke API tokens (talks to the metadata database)")
    tsub = p.add_subparsers(dest="token_command", required=True)
    create = tsub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.add_argument("--role", choices=ROLES, default="viewer", help="viewer reads; editor also changes and runs")
    tsub.add_parser("list", help="list tokens (never their values)")
    revoke = tsub.add_parser("revoke", help="revoke a token by id, name or prefix")
    revoke.add_argument("token", help="id, name or the prefix shown by 'list'")


def run_token_command(args: argparse.Namespace, settings: Settings) -> int:
    from shared.bootstrap import build_store

    sessions = session_factory(build_store(settings))
    with sessions() as session:
        if args.token_command == "create":
            row, token = create_token(session, name=args.name, role=args.role)
            session.commit()
            print(token)
            print(f"created token {row.id} ({row.role}) for {row.name!r}; it is shown only now", file=sys.stderr)
            return 0
        if args.token_command == "list":
            rows = session.scalars(sa.select(TokenRow).order_by(TokenRow.id)).all()
            print(f"{'id':>4}  {'prefix':<12} {'role':<7} {'created':<20} {'last used':<20} {'revoked':<20} name")
            for r in rows:
                when = [t.strftime("%Y-%m-%d %H:%M:%S") if t else "-" for t in (r.created_at, r.last_used_at,
                                                                                  r.revoked_at)]
                print(f"{r.id:>4}  {r.prefix:<12} {r.role:<7} {when[0]:<20} {when[1]:<20} {when[2]:<20} {r.name}")
            return 0
        count = revoke_token(session, args.token)
        session.commit()
        if not count:
            print(f"datamig: no active token matches {args.token!r}", file=sys.stderr)
            return 1
        print(f"revoked {count} token(s)")
        return 0
