"""Where a server's resident memory creeps: one part of a turn, over thousands of new messages.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.native_heap [--part towers|chat] [--texts 5000] [--trim] [--repeat]
        [--out docs/results/perf/native_heap.json]

Each step is what a turn asks of one part, for the Friends train queries in file order:
``towers``, the message alone and the message after its earlier turns, one text each (float32,
one thread); ``chat``, the local model's prompt for the message after its earlier turns, and
one generated token. RSS is sampled every 500 steps. ``--trim`` calls ``app.native_memory.trim()`` after each step, as the
server does after each turn; ``--repeat`` cycles the first 100 messages instead of new ones
(is the growth per step, or per new input shape?). The server itself over 1,000 turns is
``bench.startup``.
"""

from __future__ import annotations

import gzip
import json

import psutil

from bench import common


def towers_step(settings):
    from profiles.encoding import Encoders
    from profiles.tower import Dialogue

    encoders = Encoders(settings.embedder_path, settings.data_dir / "not-used")

    def step(row):
        encoders.queries([row["query"]])
        encoders.dialogues([Dialogue(row["query"], [t["text"] for t in row["context"]][-4:], "")])
    return step


def chat_step(settings):
    from assistant.models.local import LocalModel

    model = LocalModel(settings)
    system = {"role": "system", "content": settings.persona}

    def step(row):
        history = [{"role": "user" if i % 2 == 0 else "assistant", "content": t["text"]}
                   for i, t in enumerate(row["context"][-4:])]
        prompt = model.fit(system, history, {"role": "user", "content": row["query"]})
        model.llm.create_completion(prompt.tokens, max_tokens=1, temperature=0)
    return step


PARTS = {"towers": towers_step, "chat": chat_step}


def run(part: str, texts: int, trim: bool, repeat: bool) -> dict:
    from app import native_memory
    from assistant.settings import load_settings

    settings = load_settings()
    step = PARTS[part](settings)
    with gzip.open(common.friends_dir() / "train.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(texts), lines)]
    if repeat:
        rows = (rows[:100] * (texts // 100 + 1))[:texts]
    process, samples = psutil.Process(), []
    for i, row in enumerate(rows):
        step(row)
        if trim:
            native_memory.trim()
        if i % 500 == 0 or i == len(rows) - 1:
            samples.append([i + 1, round(process.memory_info().rss / 2**20, 1)])
    at = dict(samples)
    return {"part": part, "texts": len(rows), "trim": trim, "repeat": repeat, "rss_samples": samples,
            "growth_mb": {"first_1000": round(at.get(1001, samples[-1][1]) - samples[0][1], 1),
                          "after_1000": round(samples[-1][1] - at.get(1001, samples[-1][1]), 1)}}


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--part", choices=sorted(PARTS), default="towers")
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--trim", action="store_true", help="malloc_trim after each step, as the server does")
    parser.add_argument("--repeat", action="store_true", help="cycle 100 messages instead of new ones")
    args = parser.parse_args(argv)
    return common.finish(run(args.part, args.texts, args.trim, args.repeat), args.out, "bench.native_heap", argv)


if __name__ == "__main__":
    main()
