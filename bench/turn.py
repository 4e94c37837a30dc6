"""One turn through the pipeline against raw llama-cpp-python on the identical final prompt.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.turn [--pairs 24] [--max-tokens 32] [--exchanges 400]
        [--out docs/results/perf/turn.json]

Set-up: a fresh data dir with ``--exchanges`` Friends pairs answered by Rachel imported (five
people) and the questioner tower trained, so identify, recall and route do their real work; the
bundled model with greedy decoding (temperature 0) and a fixed ``max_tokens``.

Each pair is one Friends test message, answered twice back to back, in alternating order:
- A, the pipeline: ``Assistant.turn(message, person)`` from the call to the first ``Chunk``
  (time to first token) and from the first to the last chunk (decode rate);
- B, raw: ``Llama.create_completion`` on the very tokens, sampling settings and stop strings
  the pipeline handed to the model in A (captured), timed the same way.
Before each run the model's KV cache is reset, so neither side reuses the other's prompt.
``ttft_ratio`` and ``decode_ratio`` are medians of the per-pair ratios A/B. The pipeline's own
steps are timed by wrapping the functions it calls (``steps_ms``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench import common, friends
from bench.common import Steps

RESPONDER = "rachel_green"


def prepare(data_dir: Path, exchanges: int, max_tokens: int, train: bool):
    """An Assistant over a store holding ``exchanges`` imported pairs (questioner tower trained)."""
    from assistant.people.importers import mqd
    from assistant.memory.memory import Memory
    from assistant.pipeline import Assistant
    from assistant.settings import load_settings
    from assistant.store.store import Store

    settings = load_settings(data_dir=data_dir, max_tokens=max_tokens, temperature=0.0, seed=0)
    store = Store(settings.database_path)
    memory = Memory(settings, store)
    slice_path = data_dir / "slice.jsonl.gz"
    write_slice(slice_path, exchanges)
    memory.ingest(mqd.parse(slice_path, RESPONDER), progress=False)
    if train:
        memory.train(seed=0, progress=False)
    return Assistant(settings, store=store, memory=memory)


def write_slice(path: Path, exchanges: int) -> None:
    import gzip
    import json

    picked = [r for r in friends.rows("train") if r["responder"] == RESPONDER][:exchanges]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in picked)


def instrument(assistant) -> tuple[Steps, dict]:
    """Time the pipeline's steps and capture the prompt it hands to the model."""
    steps, captured = Steps(), {}
    steps.wrap(assistant, "_identify", "identify")
    steps.wrap(assistant.parts.encoders, "queries", "embed")
    steps.wrap(assistant.recall, "turn", "recall")
    steps.wrap(assistant.router, "choose", "route")
    steps.wrap(assistant.on_device, "prompt", "prompt")
    for name in ("begin_exchange", "record_recall", "record", "complete_exchange"):
        steps.wrap(assistant.log, name, "store")
    steps.wrap(assistant.memory, "remember", "store")
    local = assistant.local
    stream = local.stream

    def capturing(prompt, seed=None, stop=(), sampling=None):
        captured.update(prompt=prompt, stop=list(stop))
        return stream(prompt, seed=seed, stop=stop, sampling=sampling)

    local.stream = capturing
    return steps, captured


def timed_stream(chunks) -> tuple[float, float, int, str]:
    """(seconds to the first chunk, seconds from first to last, chunks, text) of a stream."""
    start = time.perf_counter()
    first = last = None
    pieces = []
    for text in chunks:
        last = time.perf_counter()
        first = first or last
        pieces.append(text)
    first, last = first or time.perf_counter(), last or time.perf_counter()
    return first - start, last - first, len(pieces), "".join(pieces)


def pipeline_run(assistant, person: int, message: str):
    from assistant.pipeline import Chunk

    events = assistant.turn(message, person)
    return timed_stream(e.text for e in events if isinstance(e, Chunk))


def raw_run(local, prompt, stop):
    s = local.settings
    completion = local.llm.create_completion(
        prompt.tokens, max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
        repeat_penalty=s.repeat_penalty, seed=s.seed, stop=[*prompt.stop, *stop], stream=True,
    )
    return timed_stream(c["choices"][0]["text"] for c in completion if c["choices"][0]["text"])


def run(pairs: int, max_tokens: int, exchanges: int, train: bool = True, warmup: int = 2) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-turn-") as tmp:
        assistant = prepare(Path(tmp) / "data", exchanges, max_tokens, train)
        people = [p.id for p in assistant.store.profiles()]
        messages = [r["query"] for r in friends.rows("test") if r["responder"] == RESPONDER]
        steps, captured = instrument(assistant)
        local = assistant.local
        rows = []
        for i in range(warmup + pairs):
            person, message = people[i % len(people)], messages[i % len(messages)]
            local.llm.reset()  # no KV reuse from the run before
            if i % 2 == 0:
                a = pipeline_run(assistant, person, message)
                prompt, stop = captured["prompt"], captured["stop"]
                local.llm.reset()
                b = raw_run(local, prompt, stop)
                same = True
            else:  # raw first: the prompt is the one the pipeline builds for this message now
                prompt, stop = preview_prompt(assistant, person, message, captured)
                steps.take()  # the preview's steps are not this turn's
                local.llm.reset()
                b = raw_run(local, prompt, stop)
                local.llm.reset()
                a = pipeline_run(assistant, person, message)
                same = captured["prompt"].tokens == prompt.tokens and captured["stop"] == stop
            taken = steps.take()
            if i >= warmup:
                rows.append({"a": a, "b": b, "steps": taken, "prompt_tokens": len(prompt.tokens),
                             "same_prompt": same, "order": "pipeline-first" if i % 2 == 0 else "raw-first"})
        return summarise(rows, max_tokens, exchanges)


def preview_prompt(assistant, person: int, message: str, captured: dict):
    """The prompt the pipeline will build for ``message``: a throwaway turn stopped at the model."""
    from assistant.pipeline import Answering

    events = assistant.turn(message, person)
    for event in events:
        if isinstance(event, Answering):
            break
    stream = assistant.local.stream
    assistant.local.stream = lambda prompt, seed=None, stop=(), sampling=None: (
        captured.update(prompt=prompt, stop=list(stop)) or iter(()))
    try:
        for _ in events:
            pass
    finally:
        assistant.local.stream = stream
    # the throwaway exchange is complete with an empty reply; delete it so it never becomes memory
    exchange_id = captured_exchange(assistant)
    forget(assistant, exchange_id)
    return captured["prompt"], captured["stop"]


def captured_exchange(assistant) -> int:
    from assistant.store import bulk

    return bulk.last_exchange_id(assistant.store)


def forget(assistant, exchange_id: int) -> None:
    from assistant.store import bulk

    bulk.discard(assistant.store, exchange_id)
    assistant.memory.index.remove([exchange_id])


def summarise(rows: list[dict], max_tokens: int, exchanges: int) -> dict:
    ttft_a = [r["a"][0] * 1000 for r in rows]
    ttft_b = [r["b"][0] * 1000 for r in rows]
    rate = lambda run: (run[2] - 1) / run[1] if run[2] > 1 and run[1] > 0 else None  # noqa: E731
    paired = [(rate(r["a"]), rate(r["b"])) for r in rows if rate(r["a"]) and rate(r["b"])]
    names = sorted({name for r in rows for name in r["steps"]})
    steps = {name: common.stats([r["steps"].get(name, 0.0) for r in rows]) for name in names}
    ttft_ratio = common.ratio(ttft_a, ttft_b)
    decode_ratio = common.ratio([a for a, _ in paired], [b for _, b in paired])
    return {
        "pairs": len(rows), "max_tokens": max_tokens, "memory_exchanges": exchanges,
        "prompt_tokens": common.stats([r["prompt_tokens"] for r in rows]),
        "same_prompt": round(float(np.mean([r["same_prompt"] for r in rows])), 3),
        "same_text": round(float(np.mean([r["a"][3] == r["b"][3] for r in rows])), 3),
        "ttft_ms": {"pipeline": common.stats(ttft_a), "raw": common.stats(ttft_b)},
        "overhead_ms": common.stats([a - b for a, b in zip(ttft_a, ttft_b)]),
        "decode_tokens_per_s": {"pipeline": common.stats([a for a, _ in paired]), "raw": common.stats([b for _, b in paired])},
        "ttft_ratio": ttft_ratio, "decode_ratio": decode_ratio,
        "steps_ms": steps,
        "targets": {"ttft_ratio_max": 1.10, "decode_ratio_min": 0.95,
                    "met": bool(ttft_ratio <= 1.10 and decode_ratio >= 0.95)},
    }


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--exchanges", type=int, default=400, help="Friends pairs in memory")
    parser.add_argument("--no-train", action="store_true", help="skip training the questioner tower")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded pairs first (model and caches warm)")
    args = parser.parse_args(argv)
    result = run(args.pairs, args.max_tokens, args.exchanges, train=not args.no_train, warmup=args.warmup)
    versions = common.versions("llama-cpp-python", "faiss-cpu", "torch")
    return common.finish({**result, "versions": versions}, args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
