"""``confidant eval detection``: how often speaker detection would go ahead with a wrong guess,
at the current rule and at the one calibrated on a split of the training data
(``assistant.evaluation.detection``). ``add_command()`` registers it on the ``eval`` parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from assistant.settings import load_settings


def add_command(evaluations) -> None:
    detection = evaluations.add_parser("detection", help="how often a wrong speaker guess would go ahead")
    detection.add_argument("--data", required=True, help="directory with train.jsonl.gz and test.jsonl.gz (mqd format)")
    detection.add_argument("--generic", nargs="+", required=True, metavar="FILE",
                           help="question files with no personal signal (routing JSONL format)")
    detection.add_argument("--per-person", type=int, default=100, help="train pairs per person for the prototypes")
    detection.add_argument("--probes", type=int, default=400, help="messages per responder and split")
    detection.add_argument("--generic-limit", type=int, default=1000, help="generic questions drawn in all")
    detection.add_argument("--seed", type=int, default=0)
    detection.add_argument("--out", required=True, help="the results JSON file")
    detection.set_defaults(handler=cmd_eval_detection)


def cmd_eval_detection(args: argparse.Namespace) -> int:
    from assistant.evaluation import detection

    results = detection.run(Path(args.data), [Path(p) for p in args.generic], load_settings(), seed=args.seed,
                            per_person=args.per_person, probes=args.probes, generic_limit=args.generic_limit,
                            out=Path(args.out))
    shown = {k: results[k] for k in ("chosen", "memory_use_report", "seconds")}
    shown["calibrate"] = {k: results["calibrate"][k] for k in ("old", "new")}
    shown["report"] = results["report"]
    print(json.dumps(shown, indent=2))
    return 0
