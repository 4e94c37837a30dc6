"""``confidant users add|list|key``: the logins of ``confidant serve --auth USERS_FILE``.

The password is asked twice at a terminal, or read as one line from stdin in a pipe; only its
salted scrypt hash is written (``app.auth``). ``users key LOGIN`` prints a new API key for the
OpenAI-compatible endpoint once (only its hash is kept, ``app.api_keys``); ``--revoke`` drops
every key of the login. The file defaults to ``users.json`` in the data dir.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from assistant.errors import InputError
from assistant.settings import load_settings


def add_commands(commands) -> None:
    users = commands.add_parser("users", help="logins for `confidant serve --auth USERS_FILE`")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--users-file", metavar="FILE", help="the users file (default: users.json in the data dir)")
    common.add_argument("--data-dir", help="where the database lives (default: the user data dir)")
    add = actions.add_parser("add", parents=[common], help="create a login, or set its password and profiles again")
    add.add_argument("login")
    add.add_argument("--profile", dest="profiles", action="append", default=[], metavar="NAME",
                     help="a profile this login may use (repeat for several); people it creates are added")
    add.add_argument("--admin", action="store_true", help="may use every profile and the household's archive")
    add.set_defaults(handler=cmd_users_add)
    listing = actions.add_parser("list", parents=[common], help="logins and their profiles (never passwords)")
    listing.set_defaults(handler=cmd_users_list)
    key = actions.add_parser("key", parents=[common], help="print a new API key for LOGIN (shown once), or --revoke its keys")
    key.add_argument("login")
    key.add_argument("--revoke", action="store_true", help="revoke every API key of LOGIN instead")
    key.set_defaults(handler=cmd_users_key)


def users_file(args: argparse.Namespace) -> Path:
    return Path(args.users_file) if args.users_file else load_settings(data_dir=args.data_dir).data_dir / "users.json"


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise InputError("the two passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from app.auth import add_user

    path = users_file(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    user = add_user(path, args.login, read_password(), args.profiles, args.admin)
    may = "every profile" if user.admin else (", ".join(user.profiles) or "no profile yet (people it adds)")
    print(f"{args.login} may use {may}; logins in {path} (serve with --auth {path})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from app.auth import Users

    for login, user in sorted(Users.load(users_file(args)).users.items()):
        print(f"{login}\t{'admin (every profile)' if user.admin else ', '.join(user.profiles) or '-'}")
    return 0


def cmd_users_key(args: argparse.Namespace) -> int:
    from app import api_keys
    from app.auth import Users

    users = Users.load(users_file(args))
    if args.revoke:
        count = api_keys.revoke(users, args.login)
        print(f"revoked {count} API key{'' if count == 1 else 's'} of {args.login}")
        return 0
    print(api_keys.issue(users, args.login))
    print(f"(a new API key of {args.login}; it is not shown again: keep it where your app keeps secrets)", file=sys.stderr)
    return 0
