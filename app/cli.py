"""The ``confidant`` command line.

Thin by design: parses arguments into settings, calls the engine, prints. Every
``ConfidantError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a model hub
# Libraries' own progress bars and advice ("Loading weights: 0%|…") are not ours to show: the
# command's output is its replies and its status lines. Our progress bars (import, train) stay.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from app import cli_detection, cli_doctor, cli_eval, cli_memory, cli_tools, cli_tune, cli_users
from assistant import __version__
from assistant.errors import ConfidantError, InputError
from assistant.inputs import check_file_size
from assistant.settings import Settings, load_settings

IMPORT_FORMATS = ("whatsapp", "chatgpt", "transcript", "mqd")  # cmd_import maps each to its parser


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
    serve.add_argument("--auth", metavar="USERS_FILE", help="require logins from this file (see `confidant users add`)")
    serve.add_argument("--allow-public", action="store_true",
                       help="allow a non-loopback --host without --auth (anyone who can reach it sees every memory)")
    serve.set_defaults(handler=cmd_serve)

    chat = commands.add_parser("chat", parents=[common], help="chat in the terminal, one message per line")
    chat.add_argument(
        "--as", dest="speaker", required=True, metavar="NAME", help="who is speaking, or 'auto' to detect"
    )
    chat.add_argument("--create", action="store_true", help="add NAME as a new person if nobody is called that")
    chat.add_argument("--cloud", choices=["off", "auto", "always"], help="cloud escalation for these turns (default: setting)")
    chat.set_defaults(handler=cmd_chat)

    imports = commands.add_parser("import", parents=[common], help="import past conversations")
    imports.add_argument(
        "file", help="a WhatsApp chat export (.txt or .zip), ChatGPT's conversations.json, a transcript, or mqd JSONL (.gz)"
    )
    imports.add_argument("--format", required=True, choices=IMPORT_FORMATS, help="the file's format")
    who = imports.add_mutually_exclusive_group()
    who.add_argument(
        "--me", metavar="NAME", help="whose replies become the assistant's side; everyone they answer becomes a person. "
        "For chatgpt it is YOU, who typed the prompts: your prompts become your profile's, ChatGPT's answers the replies"
    )
    who.add_argument("--responder", metavar="NAME", help="for mqd: the same as --me")
    imports.set_defaults(handler=cmd_import)

    train = commands.add_parser("train", parents=[common], help="train the questioner encoder on stored exchanges")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("eval", help="run an evaluation and write results.json")
    evaluations = evaluate.add_subparsers(dest="evaluation", required=True, metavar="EVALUATION")
    personal = evaluations.add_parser("personalization", help="replies to the same query from different people")
    personal.add_argument("--data", required=True, help="directory with train.jsonl.gz and test.jsonl.gz (mqd format)")
    personal.add_argument("--responder", required=True, help="whose replies to learn, e.g. rachel_green")
    personal.add_argument("--limit", type=int, default=150, help="test pairs to answer (stratified by questioner)")
    personal.add_argument("--seed", type=int, default=0)
    personal.add_argument("--out", required=True, help="directory for results.json and the chart")
    personal.add_argument("--systems", nargs="+", metavar="SYSTEM", help="run only these systems (default: all)")
    personal.add_argument("--tune-steps", type=int, help="training steps of the tuned systems (default: one epoch)")
    personal.add_argument("--tune-minutes", type=float, help="stop each tuned system's training after this many minutes")
    personal.set_defaults(handler=cmd_eval_personalization)
    cli_tools.add_commands(commands, common, evaluations)
    cli_eval.add_commands(evaluations)
    cli_detection.add_command(evaluations)
    cli_doctor.add_commands(commands, common)
    cli_tune.add_commands(commands, common)

    profiles = commands.add_parser("profiles", help="list, add, rename, delete, export or import people")
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
    consent = actions.add_parser("cloud", parents=[common], help="allow or forbid sending a person's messages to the cloud")
    consent.add_argument("name")
    consent.add_argument("choice", choices=["allow", "never"])
    consent.set_defaults(handler=cmd_profiles_cloud)
    cli_memory.add_commands(commands, common, actions)  # profiles export|import|merge, memory forget, archive
    cli_users.add_commands(commands)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        data_dir=getattr(args, "data_dir", None), host=getattr(args, "host", None), port=getattr(args, "port", None)
    )


def open_people(args: argparse.Namespace):
    """The people service on the data directory (its memory, and the embedder, load on first use)."""
    from assistant.people.service import People

    return People.open(settings_from(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from app.web import serve

    serve(settings_from(args), users_file=args.auth, allow_public=args.allow_public)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.pipeline import AUTO, Assistant

    interactive = sys.stdin.isatty()
    detect = args.speaker.strip().lower() == AUTO
    assistant = Assistant(settings_from(args))
    speaker = AUTO if detect else chat_speaker(assistant.people, args.speaker, args.create, interactive).id
    chat = TerminalChat(assistant, interactive, args.cloud)
    while True:
        if interactive:
            print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip():
            chat.send(line.rstrip("\r\n"), speaker)  # the line's own end is not part of the message
    return 1 if chat.failures else 0


def chat_speaker(people, name: str, create: bool, interactive: bool):
    """The person called ``name``; a new one only with ``--create`` or a yes on the terminal, so a
    typo never silently starts a stranger's profile."""
    known = people.find(name)
    if known is not None:
        return known
    if create:
        return people.add(name)
    hint = _close_match_hint(name, [p.name for p in people.everyone()])
    if not interactive:
        raise InputError(f"nobody called {name.strip()!r}{hint}; add --create to add them")
    # the question goes to stderr with the other prompts: stdout carries only replies
    print(f"Nobody is called {name.strip()!r}{hint}. Add {name.strip()!r} as a new person? [y/N] ", end="",
          file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        raise InputError("nobody added; run again with --as and an existing name (see `confidant profiles list`)")
    return people.add(name)


def _close_match_hint(name: str, names: list[str]) -> str:
    import difflib

    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(name.strip().casefold(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean {folded[close[0]]!r}?" if close else ""


class TerminalChat:
    """One conversation in the terminal: replies to stdout, everything else to stderr."""

    def __init__(self, assistant, interactive: bool, cloud_mode: str | None = None):
        self.assistant, self.interactive, self.cloud_mode = assistant, interactive, cloud_mode
        self.session_id, self.failures = None, 0

    def send(self, line: str, speaker) -> None:
        from assistant.pipeline import Chunk, Finished, Rerouted, Started, Unsure

        try:
            for event in self.assistant.turn(line, speaker, self.session_id, mode=self.cloud_mode):
                if isinstance(event, Unsure):
                    chosen = self.ask_who(event.identification)
                    if chosen is not None:
                        self.send(line, chosen)
                    return
                if isinstance(event, Started):
                    self.session_id = event.session.id
                    if event.identification:
                        print(f"[{event.identification.describe()}]", file=sys.stderr, flush=True)
                elif isinstance(event, Chunk):
                    print(event.text, end="", flush=True)
                elif isinstance(event, Rerouted):  # the cloud failed mid-reply: the local answer follows
                    print(flush=True)
                    print(f"[{event.note}]", file=sys.stderr, flush=True)
                elif isinstance(event, Finished):
                    print(flush=True)
                    print(status_line(event.exchange), file=sys.stderr, flush=True)
        except InputError as error:  # a bad message costs that message only
            print(f"confidant: {error}", file=sys.stderr)
            self.failures += 1

    def ask_who(self, guess) -> int | None:
        names = ", ".join(f"{p.name} {c:.0%}" for p, c in guess.candidates) or "nobody is known yet"
        if not self.interactive:
            print(f"confidant: not sure who is speaking ({names}); run with --as NAME", file=sys.stderr)
            self.failures += 1
            return None
        answer = input(f"Who is speaking? ({names}) ").strip()
        return chat_speaker(self.assistant.people, answer, False, True).id if answer else None


def status_line(exchange) -> str:
    from app.render import status_text

    return f"[{status_text(exchange)}]"


def cmd_import(args: argparse.Namespace) -> int:
    from assistant.people.importers import chatgpt, mqd, transcript, whatsapp

    parsers = {"whatsapp": whatsapp.parse, "chatgpt": chatgpt.parse, "transcript": transcript.parse, "mqd": mqd.parse}
    name = args.me or (args.responder if args.format == "mqd" else None)
    if not name:
        raise InputError(f"--format {args.format} needs --me NAME (see confidant import --help)")
    settings = settings_from(args)
    path = check_file_size(args.file, settings.max_import_bytes)
    batch = parsers[args.format](path, name)  # a bad file stops here, before the store is touched
    people = open_people(args)  # the embedder loads only once the file is known to be good
    for line, problem in batch.problems[:20]:
        print(f"{args.file}:{line}: skipped: {problem}", file=sys.stderr)
    if len(batch.problems) > 20:
        print(f"... and {len(batch.problems) - 20} more skipped", file=sys.stderr)
    ids = people.ingest(batch, progress=True)
    print(f"imported {len(ids)} exchanges with {len(batch.people)} people ({len(batch.problems)} skipped)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    outcome = open_people(args).train(seed=args.seed, progress=True)
    print(
        f"trained the questioner encoder on {outcome.n_dialogues} exchanges of {outcome.n_people} people "
        f"({outcome.n_clusters} query clusters) in {outcome.seconds:.0f} s; loss {outcome.losses[0]:.3f} → {outcome.losses[-1]:.3f}"
    )
    return 0


def cmd_eval_personalization(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assistant.evaluation import personalization

    settings = load_settings()
    config = personalization.TuneConfig.from_settings(settings, steps=args.tune_steps, minutes=args.tune_minutes)
    results = personalization.run(
        Path(args.data), args.responder, args.limit, args.seed, Path(args.out), settings, progress=True,
        systems=args.systems, tune_config=config,
    )
    print(personalization.markdown_table(results))
    shown = ("speaker_id", "same_query", "same_query_ft", "likelihood", "querier_tag", "shape", "tuning", "timings_s")
    print(json.dumps({k: results[k] for k in shown if k in results}, indent=2))
    return 0


def cmd_profiles_list(args: argparse.Namespace) -> int:
    people = open_people(args)
    everyone = people.everyone()
    if not everyone:
        print(f"no people yet in {settings_from(args).data_dir} (add one with `confidant profiles add NAME`)")
    for profile in everyone:
        print(f"{profile.name}\t{people.count_exchanges(profile.id)} exchanges\tsince {profile.created_at[:10]}")
    return 0


def cmd_profiles_add(args: argparse.Namespace) -> int:
    print(f"added {open_people(args).add(args.name).name}")
    return 0


def cmd_profiles_rename(args: argparse.Namespace) -> int:
    profile = open_people(args).rename(args.old, args.new)
    print(f"renamed {args.old} to {profile.name}")
    return 0


def cmd_profiles_cloud(args: argparse.Namespace) -> int:
    profile = open_people(args).set_cloud_allowed(args.name, args.choice == "allow")
    said = "may go to the cloud (when escalation allows)" if profile.cloud_allowed else "never go to the cloud"
    print(f"{profile.name}'s messages {said}")
    return 0


def cmd_profiles_delete(args: argparse.Namespace) -> int:
    people = open_people(args)
    profile = people.profile(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to delete without confirmation; add --yes to delete non-interactively")
        count = people.count_exchanges(profile.id)
        answer = input(f"Delete {profile.name} and their {count} exchanges for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    people.delete(profile.name)
    print(f"deleted {profile.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
