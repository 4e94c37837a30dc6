"""The ``confidant`` commands around one person's memories: ``profiles export``, ``profiles import``
and ``memory forget``.

Kept apart from ``app.cli`` (which owns the parser); ``add_commands()`` registers these on the
main parser and on its ``profiles`` action group. The work is done in ``assistant.portable``
and ``assistant.forgetting``; each command prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from assistant.errors import InputError
from assistant.settings import load_settings


def add_commands(commands, common: argparse.ArgumentParser, profile_actions) -> None:
    export = profile_actions.add_parser("export", parents=[common], help="write a person and their memories to a JSON file")
    export.add_argument("name")
    export.add_argument("--out", required=True, metavar="FILE", help="where to write it (see docs/export-format.md)")
    export.set_defaults(handler=cmd_profiles_export)
    imported = profile_actions.add_parser(
        "import", parents=[common], help="bring a person in from an export; merges into someone of that name"
    )
    imported.add_argument("file")
    imported.add_argument("--as", dest="as_name", metavar="NAME", help="import under this name instead of the file's")
    imported.set_defaults(handler=cmd_profiles_import)

    memory = commands.add_parser("memory", help="what the assistant remembers")
    actions = memory.add_subparsers(dest="action", required=True, metavar="ACTION")
    forget = actions.add_parser("forget", parents=[common], help="erase what a person said, for good (the profile stays)")
    forget.add_argument("name")
    forget.add_argument("--before", type=day, metavar="DATE", help="only what was said before this day (YYYY-MM-DD)")
    forget.add_argument("--after", type=day, metavar="DATE", help="only what was said on this day or later (YYYY-MM-DD)")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forget.set_defaults(handler=cmd_memory_forget)


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-05-01") from None


def _open(args: argparse.Namespace, with_memory: bool):
    from assistant.store import Store

    settings = load_settings(data_dir=args.data_dir)
    store = Store(settings.database_path, settings.max_name_chars)
    if not with_memory:
        return store
    from assistant.memory import Memory  # heavy (the embedder): only for the commands that encode

    return Memory(settings, store)


def cmd_profiles_export(args: argparse.Namespace) -> int:
    from assistant.portable import write_export

    data = write_export(_open(args, with_memory=False), args.name, args.out)
    count = sum(len(c["exchanges"]) for c in data["conversations"])
    print(f"exported {count} exchanges in {len(data['conversations'])} conversations of {data['profile']['name']} to {args.out}")
    return 0


def cmd_profiles_import(args: argparse.Namespace) -> int:
    from assistant.portable import import_profile, load_export

    load_export(args.file)  # a bad file stops here, before the embedder is loaded or the store touched
    report = import_profile(_open(args, with_memory=True), args.file, as_name=args.as_name, progress=True)
    print(report.summary())
    return 0


def cmd_memory_forget(args: argparse.Namespace) -> int:
    from assistant.forgetting import forget, matching

    memory = _open(args, with_memory=True)
    profile = memory.store.profile(args.name)
    span = "".join(f" {word} {when}" for word, when in (("from", args.after), ("before", args.before)) if when)
    count = len(matching(memory.store, profile.id, args.before, args.after))
    if count == 0:
        print(f"nothing {profile.name} said{span} to forget")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to forget without confirmation; add --yes to forget non-interactively")
        answer = input(f"Forget {count} of {profile.name}'s exchanges{span} for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    forgotten = forget(memory, profile.name, before=args.before, after=args.after)
    print(f"forgot {forgotten} exchanges of {profile.name}{span}")
    return 0
