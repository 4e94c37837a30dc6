"""Training speed of the local model's LoRA (``assistant.training.trainer``) under variants, on
one Friends responder's real dialogues, measured side by side.

Usage (from the project root; nothing else on the cores)::

    .venv/bin/python -m bench.tune_speed [--responder rachel_green] [--rounds 30]
        [--variants base bf16 ...] [--out docs/results/perf/tune_speed.json]

Each variant is its own model, optimiser and schedule, and all of them take the same rows in the
same order: every round draws ``ROUND_ROWS`` dialogues (the trainer's length-batched order) and
each variant takes its optimiser steps on them, the variants' order alternating from round to
round. Reported per variant: tokens/s over the timed rounds (after ``--warmup`` rounds), the
median over rounds of its time against ``base``'s on the same rows (``speedup`` > 1 is faster),
its mean LM loss over the last half of the rounds, and after the last round the mean NLL per
reply token of ``HELD_OUT`` dialogues it never trained on, paired against ``base``'s with a
bootstrap 95% interval (the variants see the same data, so one that learns worse shows there).

The variants (``VARIANTS``) are the trainer's settings: ``base`` is the default (float32, batch
4, LoRA in every layer); ``bf16`` autocasts the matrix products to bf16 (fast only on CPUs with
bf16 units: ``machine.isa`` in the JSON says which this was); ``top_half`` puts LoRA on the top
half of the layers only, so the lower half's backward pass is skipped; ``batch8`` takes one step
of 8 where ``base`` takes two of 4; ``bf16_ctx64`` and ``bf16_ctx96`` cut each dialogue to 64 or 96
tokens instead of 128 (the oldest context goes first), fewer tokens per step. Every variant's
held-out NLL is measured on the same rows, cut at ``base``'s 128 tokens, as a live prompt keeps
its context. The rows are the responder's train pairs written as the
benchmark writes them (``finetune.prompt_for``, tagged); the query clusters, which only the small
contrast heads see, are the pairs' index modulo 8.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np

from bench import common
from bench.friends import rows as friends_rows

RESPONDER = "rachel_green"
ROUND_ROWS = 8
CLUSTERS = 8
HELD_OUT = 200
VARIANTS = {
    "base": {},
    "bf16": {"bf16": True},
    "top_half": {"top_layers": 15},
    "batch8": {"batch": 8},
    "bf16_top_half": {"bf16": True, "top_layers": 15},
    "bf16_ctx64": {"bf16": True, "max_tokens": 64},
    "bf16_ctx96": {"bf16": True, "max_tokens": 96},
}


def examples(responder: str):
    from assistant.training.dialogues import Example, Turn

    def context(row):  # the eval's prompt_for keeps the earlier turns' text, speakers unknown
        return tuple(Turn(None, t["text"]) for t in row.get("context", []) if t.get("text"))

    return [Example(r["querier"], context(r), r["query"], r["response"], cluster=i % CLUSTERS)
            for i, r in enumerate(row for row in friends_rows("train") if row["responder"] == responder)]


def held_out(examples: list, n: int, seed: int = 0) -> tuple[list, list]:
    """(train, held out): ``n`` dialogues drawn at random are kept out of training."""
    held = set(np.random.default_rng(seed).permutation(len(examples))[:n].tolist())
    return [e for i, e in enumerate(examples) if i not in held], [examples[i] for i in sorted(held)]


def trainer_for(config, train, model_path):
    from assistant.training.model import add_lora, load_base
    from assistant.training.trainer import Stepper, TuneResult, encoded

    base, tokenizer = load_base(model_path)
    model = add_lora(base, config.r, config.alpha, config.dropout, config.top_layers)
    model.train()
    result = TuneResult(model, tokenizer, config, train, [])
    rows = encoded(tokenizer, train, config)
    return Stepper(result, rows, planned=10_000), rows


def timed_round(stepper, chosen: list[int], batch: int) -> tuple[float, list[float], int]:
    started, losses, tokens = time.perf_counter(), [], 0
    for start in range(0, len(chosen), batch):
        loss, n = stepper.step(chosen[start : start + batch])
        losses.append(loss)
        tokens += n
    return time.perf_counter() - started, losses, tokens


def run(responder: str, rounds: int, warmup: int, variants: list[str]) -> dict:
    import torch

    from assistant.settings import load_settings
    from assistant.training.trainer import TuneConfig, encoded, length_batches, seed_everything, token_nlls

    settings = load_settings()
    torch.set_num_threads(settings.n_threads)
    train, validation = held_out(examples(responder), HELD_OUT)
    configs = {name: replace(TuneConfig(threads=settings.n_threads), **VARIANTS[name]) for name in variants}
    steppers = {}
    for name, config in configs.items():
        seed_everything(0)  # the same initial LoRA weights for every variant
        steppers[name], rows = trainer_for(config, train, settings.model_path)
    order = length_batches([len(ids) for ids, _ in rows], ROUND_ROWS, np.random.default_rng(0))
    seconds = {name: [] for name in variants}
    losses = {name: [] for name in variants}
    tokens = {name: 0 for name in variants}
    for index in range(warmup + rounds):
        chosen = next(order)
        turn = variants[index % len(variants):] + variants[: index % len(variants)]
        for name in turn:
            took, round_losses, n = timed_round(steppers[name], chosen, configs[name].batch)
            if index >= warmup:
                seconds[name].append(took)
                losses[name] += round_losses
                tokens[name] += n
    base = steppers["base"].result
    val_rows = encoded(base.tokenizer, validation, configs["base"])
    with base.model.disable_adapter():
        before = token_nlls(base.model, base.tokenizer, val_rows)
    nlls = {name: token_nlls(s.result.model, s.result.tokenizer, val_rows) for name, s in steppers.items()}
    return {"responder": responder, "train_pairs": len(train), "held_out_pairs": len(validation),
            "rounds": rounds, "warmup_rounds": warmup, "rows_per_round": ROUND_ROWS, "threads": settings.n_threads,
            "held_out_nll_untrained": round(float(before.mean()), 4),
            "variants": {name: describe(name, seconds, losses, tokens, nlls) for name in variants}}


def describe(name, seconds, losses, tokens, nlls) -> dict:
    from assistant.evaluation.metrics import bootstrap_ci

    base = seconds.get("base")
    tail = losses[name][len(losses[name]) // 2:]
    worse = nlls[name] - nlls["base"]  # > 0: this variant predicts the held-out replies worse than base
    return {"settings": VARIANTS[name], "tokens_per_s": round(tokens[name] / sum(seconds[name]), 1),
            "median_round_s": round(statistics.median(seconds[name]), 3),
            "speedup_vs_base": round(statistics.median(b / s for b, s in zip(base, seconds[name])), 3) if base else None,
            "mean_loss_last_half": round(float(np.mean(tail)), 4),
            "held_out_nll": round(float(nlls[name].mean()), 4),
            "held_out_nll_minus_base": {"delta": round(float(worse.mean()), 4), "ci95": bootstrap_ci(worse)}}


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--responder", default=RESPONDER)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    variants = ["base", *[v for v in args.variants if v != "base"]]
    result = run(args.responder, args.rounds, args.warmup, variants)
    return common.finish({**result, "versions": common.versions("torch", "peft", "transformers")}, args.out,
                         __spec__.name, argv)


if __name__ == "__main__":
    main()
