"""The ``confidant`` commands around people's memories: ``profiles export``, ``profiles import``,
``profiles merge``, ``memory forget`` and ``archive export|import`` (the whole assistant).

Kept apart from ``app.cli`` (which owns the parser); ``add_commands()`` registers these on the
main parser and on its ``profiles`` action group. The work is done by the engine's people service
(``assistant.people.service.People``); each command prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from assistant.errors import InputError
from assistant.inputs import check_file_size
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

    merge = profile_actions.add_parser("merge", parents=[common], help="move everything one person said to another")
    merge.add_argument("source", help="the person who goes away")
    merge.add_argument("target", help="the person who keeps everything")
    merge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    merge.set_defaults(handler=cmd_profiles_merge)

    whole = commands.add_parser("archive", help="the whole assistant (everyone and the encoder) as one .zip")
    archive_actions = whole.add_subparsers(dest="action", required=True, metavar="ACTION")
    archive_out = archive_actions.add_parser("export", parents=[common], help="write everyone to one archive")
    archive_out.add_argument("--out", required=True, metavar="FILE.zip")
    archive_out.set_defaults(handler=cmd_archive_export)
    archive_in = archive_actions.add_parser("import", parents=[common], help="bring an archive in (creates or merges)")
    archive_in.add_argument("file")
    archive_in.set_defaults(handler=cmd_archive_import)

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


def _open(args: argparse.Namespace):
    """The people service; its memory (the embedder) loads only for the commands that encode."""
    from assistant.people.service import People

    return People.open(load_settings(data_dir=args.data_dir))


def cmd_profiles_export(args: argparse.Namespace) -> int:
    data = _open(args).write_export(args.name, args.out)
    count = sum(len(c["exchanges"]) for c in data["conversations"])
    print(f"exported {count} exchanges in {len(data['conversations'])} conversations of {data['profile']['name']} to {args.out}")
    return 0


def cmd_profiles_import(args: argparse.Namespace) -> int:
    from assistant.people.service import People

    check_file_size(args.file, load_settings(data_dir=args.data_dir).max_import_bytes)
    People.load_export(args.file)  # a bad file stops here, before the embedder is loaded or the store touched
    report = _open(args).import_profile(args.file, as_name=args.as_name, progress=True)
    print(report.summary())
    return 0


def cmd_memory_forget(args: argparse.Namespace) -> int:
    people = _open(args)
    profile = people.profile(args.name)
    span = "".join(f" {word} {when}" for word, when in (("from", args.after), ("before", args.before)) if when)
    count = len(people.matching(profile.id, args.before, args.after))
    if count == 0:
        print(f"nothing {profile.name} said{span} to forget")
        return 0
    if not confirmed(args, f"Forget {count} of {profile.name}'s exchanges{span} for good?", "forget"):
        print("kept")
        return 1
    forgotten = people.forget(profile.name, before=args.before, after=args.after)
    print(f"forgot {forgotten} exchanges of {profile.name}{span}")
    return 0


def confirmed(args: argparse.Namespace, question: str, verb: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise InputError(f"refusing to {verb} without confirmation; add --yes to {verb} non-interactively")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_profiles_merge(args: argparse.Namespace) -> int:
    people = _open(args)
    source, target = people.profile(args.source), people.profile(args.target)
    count = people.count_exchanges(source.id)
    if not confirmed(args, f"Move {source.name}'s {count} exchanges to {target.name} and remove {source.name}?", "merge"):
        print("kept")
        return 1
    merged = people.merge(source.name, target.name)
    print(f"merged {source.name} into {merged.name}: {people.count_exchanges(merged.id)} exchanges now")
    return 0


def cmd_archive_export(args: argparse.Namespace) -> int:
    people = _open(args)
    people.write_archive(args.out)
    print(f"wrote {people.describe_archive(args.out)} to {args.out}")
    return 0


def cmd_archive_import(args: argparse.Namespace) -> int:
    from assistant.people.service import People

    check_file_size(args.file, load_settings(data_dir=args.data_dir).max_import_bytes)
    People.read_archive(args.file)  # a bad archive stops here, before the embedder is loaded or the store touched
    print(_open(args).import_archive(args.file, progress=True).summary())
    return 0
