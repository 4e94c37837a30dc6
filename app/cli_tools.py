"""The ``confidant`` commands around the cloud: ``cloud test``, ``router train``, ``eval routing``.

Kept apart from ``app.cli`` (which owns the parser and the everyday commands) so each file
stays short; ``add_commands()`` registers these on the main parser.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from assistant.settings import load_settings


def add_commands(commands, common: argparse.ArgumentParser, evaluations) -> None:
    cloud = commands.add_parser("cloud", help="the cloud model")
    cloud_actions = cloud.add_subparsers(dest="action", required=True, metavar="ACTION")
    test = cloud_actions.add_parser("test", parents=[common], help="check the cloud configuration against the endpoint")
    test.set_defaults(handler=cmd_cloud_test)

    router = commands.add_parser("router", help="the router that decides when to ask the cloud")
    router_actions = router.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = router_actions.add_parser("train", help="train the router's difficulty model from labelled files")
    train.add_argument("--data", nargs="+", required=True, metavar="FILE", help="question files (routing JSONL format)")
    train.add_argument("--chat", required=True, metavar="FILE", help="mqd-style file whose queries are conversation")
    train.add_argument("--out", required=True, metavar="FILE", help="where to write the model (.npz)")
    train.add_argument("--graded", type=int, default=60, metavar="N",
                       help="questions of each file the local model answers, to learn which it fails (default 60)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=cmd_router_train)

    routing = evaluations.add_parser("routing", help="how well the router picks the turns the local model fails")
    routing.add_argument("--data", nargs="+", required=True, metavar="FILE", help="question files (routing JSONL format)")
    routing.add_argument("--chat", metavar="FILE", help="mqd-style file whose queries are conversational turns")
    routing.add_argument("--chat-share", type=float, nargs="+", default=[0.5], metavar="SHARE",
                         help="share of the stream that is conversation; several give one stream each (the first is the "
                              "main one), the questions answered once")
    routing.add_argument("--limit", type=int, default=40, help="questions drawn from each --data file")
    routing.add_argument("--budget", type=float, default=0.3, help="share of turns that may go to the cloud")
    routing.add_argument("--router", metavar="FILE", help="a router model other than the shipped one")
    routing.add_argument("--seed", type=int, default=0)
    routing.add_argument("--out", required=True, help="directory for results.json and the chart")
    routing.set_defaults(handler=cmd_eval_routing)


def cmd_cloud_test(args: argparse.Namespace) -> int:
    from assistant.models.cloud import check, describe_check

    found = check(load_settings(data_dir=args.data_dir))
    print(describe_check(found))
    return 0 if found.get("ok") else 1


def cmd_router_train(args: argparse.Namespace) -> int:
    from assistant.training.router import train_router

    report = train_router(args.data, args.chat, Path(args.out), load_settings(), args.graded, args.seed)
    Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_routing(args: argparse.Namespace) -> int:
    from assistant.evaluation import routing

    results = routing.run(
        args.data, args.chat, Path(args.out), load_settings(), limit=args.limit, chat_shares=args.chat_share,
        budget=args.budget, seed=args.seed, router_path=args.router,
    )
    print(routing.markdown_table(results))
    return 0
