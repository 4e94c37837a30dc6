"""``confidant tune``: teach the local model from the household's own dialogues.

Kept apart from ``app.cli`` so each file stays short; ``add_commands()`` registers it. Ctrl-C
stops training and writes nothing (the adapter in use, if any, stays).
"""

from __future__ import annotations

import argparse

from assistant.settings import load_settings


def add_commands(commands, common: argparse.ArgumentParser) -> None:
    tune = commands.add_parser("tune", parents=[common],
                               help="teach the local model (LoRA) from imported, corrected and cloud replies")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--minutes", type=float, default=None, help="stop training after this many minutes")
    tune.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from assistant.people.service import People

    people = People.open(load_settings(data_dir=args.data_dir))
    for person, counts in sorted(people.learnable_counts().items()):
        print(f"{person}: {counts['imported']} imported, {counts['corrected']} corrected, {counts['cloud']} from the cloud")
    info = people.teach(seed=args.seed, minutes=args.minutes)
    print(f"taught the local model on {info['exchanges']} exchanges of {len(info['people'])} people in "
          f"{info['seconds']:.0f} s ({info['tokens_per_s']:.0f} tokens/s); held-out loss "
          f"{info['val_nll_before']:.3f} → {info['val_nll_after']:.3f}")
    return 0
