"""``datamig token create|list|revoke``: manage API tokens in the metadata store directly.

These commands talk to the metadata database (``DM_DATABASE_URL``), not to the API, so
that the first token can be made before anyone can log in.
"""
from __future__ import annotations

import argparse
import sys

import sqlalchemy as sa

from shared.connections import masked_url
from shared.errors import ConfigError
from shared.settings import Settings
from shared.store.db import session_factory
from shared.store.models import TokenRow
from shared.store.tokens import ROLES, create_token, revoke_token


def add_token_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="create, list or revoke API tokens (talks to the metadata database)")
    tsub = p.add_subparsers(dest="token_command", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--create-store", "--create", dest="create_store", action="store_true",
                       help="create the default SQLite metadata store if it does not exist yet "
                            "(without it, a missing store is an error)")
    create = tsub.add_parser("create", help="create a token and print it once", parents=[store])
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.add_argument("--role", choices=ROLES, default="viewer", help="viewer reads; editor also changes and runs")
    tsub.add_parser("list", help="list tokens (never their values)", parents=[store])
    revoke = tsub.add_parser("revoke", help="revoke a token by id, name or prefix", parents=[store])
    revoke.add_argument("token", help="id, name or the prefix shown by 'list'")


def open_existing_store(settings: Settings, *, create: bool) -> sa.Engine:
    """The metadata store a command works on, named on stderr. Raises ConfigError when it is the
    default SQLite file and that does not exist (unless ``create``): a command run in the wrong
    directory must not silently start an empty store. An explicit DM_DATABASE_URL is used as given."""
    from shared.bootstrap import build_store

    url = settings.metadata_url()
    if not settings.database_url:
        path = settings.data_dir.resolve() / "datamig.db"
        if not path.exists() and not create:
            raise ConfigError(f"no metadata store at {path} (DM_DATA_DIR={settings.data_dir}); run this where the "
                              "service keeps its data, set DM_DATA_DIR or DM_DATABASE_URL, or pass --create-store")
    print(f"datamig: metadata store {masked_url(url)}", file=sys.stderr)
    return build_store(settings)


def run_token_command(args: argparse.Namespace, settings: Settings) -> int:
    """Raises ConfigError when the metadata store is missing (see :func:`open_existing_store`)."""
    sessions = session_factory(open_existing_store(settings, create=args.create_store))
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
