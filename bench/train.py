"""Questioner-encoder training time on the largest Friends responder, as ``confidant train``.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.train [--responder rachel_green] [--limit N]
        [--out docs/results/perf/train.json]

The responder's train pairs are imported into a fresh data dir (not timed here: that is
``bench.ingest``), then ``Memory.train(seed=0)`` is timed end to end: the frozen transformer
pass over every dialogue, the head's epochs, and writing the new dialogue vectors and
prototypes. Target: at most 5 minutes, aim 2.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import common
from bench.common import Clock, Steps
from bench.ingest import RESPONDER, load_batch, memory_at


def run(responder: str, limit: int | None, path: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        memory = memory_at(Path(tmp) / "data")
        with Clock() as importing:
            memory.ingest(load_batch(responder, limit, path), progress=False)
        steps = Steps()
        steps.wrap(memory, "frozen_pass", "frozen_pass")
        steps.wrap(memory, "refresh_prototypes", "prototypes")
        with Clock() as clock:
            outcome = memory.train(seed=0, progress=False)
        stages = {name: round(ms / 1000, 1) for name, ms in steps.take().items()}
        stages["head_and_rest"] = round(clock.wall - sum(stages.values()), 1)
        return {
            "responder": responder, "dialogues": outcome.n_dialogues, "people": outcome.n_people,
            "clusters": outcome.n_clusters, "losses": outcome.losses,
            "import": importing.describe(), "train": clock.describe(), "stages_s": stages,
            "targets": {"seconds_max": 300, "seconds_aim": 120, "met": clock.wall <= 300},
        }


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--responder", default=RESPONDER)
    parser.add_argument("--limit", type=int, help="train on the first N exchanges only (smoke tests)")
    parser.add_argument("--file", type=Path, help="an MQD file other than the Friends train file")
    args = parser.parse_args(argv)
    versions = common.versions("torch")
    return common.finish({**run(args.responder, args.limit, args.file), "versions": versions}, args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
