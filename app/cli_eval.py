"""``confidant eval conversation``: the scripted household conversation (issue 16), and
``confidant eval contrast-weight``: the querier contrast's weight chosen on a validation split of
train (issue 15).

Kept apart from ``app.cli`` (which owns the parser) so each file stays short; ``add_commands()``
registers the subcommands on the ``eval`` parser. ``--set NAME=VALUE`` overrides a setting for
this run only (how decoding variants are compared).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant.errors import InputError
from assistant.settings import load_settings


def add_commands(evaluations) -> None:
    talk = evaluations.add_parser("conversation", help="a scripted multi-person conversation through the real engine")
    talk.add_argument("--data", metavar="FILE", help="the script (default: assets/conversation_eval.json)")
    talk.add_argument("--out", metavar="FILE", help="where to write the results JSON")
    talk.add_argument("--rescore", metavar="RESULTS", help="score the replies saved in RESULTS again (no model run)")
    talk.add_argument("--compare", nargs="+", metavar="RESULTS", help="print a table comparing saved results (no model run)")
    talk.add_argument("--limit", type=int, help="play only the first N turns")
    talk.add_argument("--seed", type=int, default=0, help="sampling seed (default 0: repeatable)")
    talk.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                      help="override a setting for this run, e.g. --set repeat_penalty=1.3")
    talk.set_defaults(handler=cmd_eval_conversation)
    weight = evaluations.add_parser("contrast-weight", help="the querier contrast's weight, chosen on held-out train dialogues")
    weight.add_argument("--data", required=True, metavar="DIR", help="a folder with train.jsonl.gz (test is never read)")
    weight.add_argument("--responder", required=True)
    weight.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5], metavar="W")
    weight.add_argument("--validation", type=int, default=300, help="dialogues held out of training (default 300)")
    weight.add_argument("--tune-steps", type=int, help="training steps per weight (default: one epoch)")
    weight.add_argument("--tune-minutes", type=float, help="stop each weight's training after this many minutes")
    weight.add_argument("--seed", type=int, default=0)
    weight.add_argument("--out", required=True, metavar="DIR")
    weight.set_defaults(handler=cmd_eval_contrast_weight)


def overrides(pairs: list[str]) -> dict:
    """``NAME=VALUE`` pairs as settings overrides (the settings validate the values)."""
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set takes NAME=VALUE, not {pair!r}")
        found[name.strip()] = value.strip()
    return found


def cmd_eval_conversation(args: argparse.Namespace) -> int:
    from assistant.evaluation import conversation

    if args.compare:
        runs = {Path(p).stem: conversation.read_results(Path(p)) for p in args.compare}
        print(conversation.comparison_table(runs))
        return 0
    if not args.out:
        raise InputError("--out FILE is needed to write the results")
    if args.rescore:
        results = conversation.rescore(conversation.read_results(Path(args.rescore)))
    else:
        settings = load_settings(seed=args.seed, **overrides(args.overrides))
        script = Path(args.data) if args.data else conversation.DEFAULT_SCRIPT
        results = conversation.run(script, settings, limit=args.limit, progress=True)
    conversation.write(results, Path(args.out))
    print(conversation.markdown_table(results))
    print(f"wrote {args.out} ({results['n']} replies in {results['seconds']:.0f} s)")
    return 0


def cmd_eval_contrast_weight(args: argparse.Namespace) -> int:
    from assistant.evaluation import contrast_weight

    settings = load_settings()
    config = contrast_weight.TuneConfig.from_settings(settings, steps=args.tune_steps, minutes=args.tune_minutes)
    results = contrast_weight.run(Path(args.data), args.responder, args.weights, Path(args.out), settings, config,
                                  args.seed, args.validation)
    print(contrast_weight.markdown_table(results))
    print(f"chosen: {results['chosen']} (lowest held-out NLL of {results['validation_pairs']} dialogues); "
          f"wrote {Path(args.out) / 'results.json'}")
    return 0
