"""The ``confidant`` command line.

Thin by design: parses arguments into settings, calls the engine, prints. Every
``ConfidantError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a model hub

from assistant import __version__
from assistant.errors import ConfidantError, InputError
from assistant.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except ConfidantError as error:
        print(f"confidant: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="where the database and indexes live (default: the user data dir)")

    parser = argparse.ArgumentParser(prog="confidant", description="A local-first assistant that knows who is asking.")
    parser.add_argument("--version", action="version", version=f"confidant {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="start the web app")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 7860)")
    serve.set_defaults(handler=cmd_serve)

    chat = commands.add_parser("chat", parents=[common], help="chat in the terminal, one message per line")
    chat.add_argument("--as", dest="speaker", required=True, metavar="NAME", help="who is speaking (created if new)")
    chat.set_defaults(handler=cmd_chat)

    profiles = commands.add_parser("profiles", help="list, add, rename or delete people")
    actions = profiles.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="everyone, most recently active first").set_defaults(
        handler=cmd_profiles_list
    )
    add = actions.add_parser("add", parents=[common], help="add a person")
    add.add_argument("name")
    add.set_defaults(handler=cmd_profiles_add)
    rename = actions.add_parser("rename", parents=[common], help="rename a person")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(handler=cmd_profiles_rename)
    delete = actions.add_parser("delete", parents=[common], help="delete a person and everything they said")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=cmd_profiles_delete)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        data_dir=getattr(args, "data_dir", None), host=getattr(args, "host", None), port=getattr(args, "port", None)
    )


def open_store(args: argparse.Namespace):
    from assistant.store import Store

    settings = settings_from(args)
    return Store(settings.database_path, settings.max_name_chars)


def cmd_serve(args: argparse.Namespace) -> int:
    from app.web import serve

    serve(settings_from(args))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.pipeline import Assistant, Chunk, Finished, Started

    assistant = Assistant(settings_from(args))
    speaker = assistant.store.get_or_add_profile(args.speaker)
    interactive = sys.stdin.isatty()
    session_id, failures = None, 0
    while True:
        if interactive:
            print(f"{speaker.name}> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            for event in assistant.turn(line, speaker.id, session_id):
                if isinstance(event, Started):
                    session_id = event.session.id
                elif isinstance(event, Chunk):
                    print(event.text, end="", flush=True)
                elif isinstance(event, Finished):
                    print(flush=True)
                    print(status_line(event.exchange), file=sys.stderr, flush=True)
        except InputError as error:  # a bad message costs that message only
            print(f"confidant: {error}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def status_line(exchange) -> str:
    return f"[{exchange.route} · {exchange.model} · first token {exchange.ttft_ms / 1000:.2f} s · {exchange.tokens_per_s:.0f} tok/s]"


def cmd_profiles_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    for profile in store.profiles():
        print(f"{profile.name}\t{store.count_exchanges(profile.id)} exchanges\tsince {profile.created_at[:10]}")
    return 0


def cmd_profiles_add(args: argparse.Namespace) -> int:
    print(f"added {open_store(args).add_profile(args.name).name}")
    return 0


def cmd_profiles_rename(args: argparse.Namespace) -> int:
    profile = open_store(args).rename_profile(args.old, args.new)
    print(f"renamed {args.old} to {profile.name}")
    return 0


def cmd_profiles_delete(args: argparse.Namespace) -> int:
    store = open_store(args)
    profile = store.profile(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to delete without confirmation; add --yes to delete non-interactively")
        count = store.count_exchanges(profile.id)
        answer = input(f"Delete {profile.name} and their {count} exchanges for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    store.delete_profile(profile.name)
    print(f"deleted {profile.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
