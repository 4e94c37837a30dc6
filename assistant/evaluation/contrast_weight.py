"""Choosing the querier contrast's weight on a validation split carved from train, never test.

Contract of ``run(data_dir, responder, weights, out, settings, config, seed, validation, progress)``:
- Imports the responder's train pairs and trains the questioner encoder as the personalization
  benchmark does (``personalization.Bench``: the same store, so the same query clusters the
  contrast reads), then holds out ``validation`` of the learnable dialogues, drawn round-robin
  over questioners with ``seed``. Only ``train.jsonl.gz`` is read.
- For each weight, trains the full method (tagged dialogues, LM + weight × contrast) on the rest
  with ``config``; the seed, data and order are the same, so only the weight differs. On the held-out
  dialogues it measures the mean per-token NLL of the real reply with the true questioner's
  tag, and the tag effect (another questioner's tag; ``delta`` = wrong − right, > 0: the tag helps).
- ``chosen`` is the weight with the lowest held-out NLL. The likelihood of the real reply is the
  criterion no short stock reply can game. Every weight's NLL is also given minus the chosen one's,
  paired, with a bootstrap 95% interval, so a choice within noise shows as one.
- Writes ``results.json`` in ``out`` and returns it; the temporary stores are removed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from assistant.errors import InputError
from assistant.evaluation.finetune import other_querier, tag_effect
from assistant.evaluation.metrics import bootstrap_ci
from assistant.evaluation.personalization import Bench, stratified
from assistant.machine import describe as describe_machine
from assistant.settings import Settings
from assistant.training.dialogues import learnable
from assistant.training.trainer import TuneConfig, encoded, token_nlls, tune

VALIDATION = 300


def run(data_dir: Path, responder: str, weights: list[float], out: Path, settings: Settings, config: TuneConfig,
        seed: int = 0, validation: int = VALIDATION, progress: bool = True) -> dict:
    if not weights or any(w < 0 for w in weights):
        raise InputError("give one or more contrast weights, each 0 or more")
    started = time.perf_counter()
    workdir = out / "work"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        bench = Bench(settings, workdir, responder, Path(data_dir) / "train.jsonl.gz", seed, progress, ["querier_aware"])
        examples = learnable(bench.parts["querier_aware"].store)
        held = stratified(examples, validation, seed)
        if len(held) < 2 or len(held) >= len(examples):
            raise InputError(f"{len(examples)} dialogues of {responder} cannot give {validation} to hold out and the rest to train on")
        kept = {id(e) for e in held}
        train = [e for e in examples if id(e) not in kept]
        queriers = sorted({e.querier for e in examples})
        wrong = [replace(e, querier=other_querier(queriers, e.querier, seed, i)) for i, e in enumerate(held)]
        measured = {w: _measure(train, held, wrong, settings.model_path,
                                replace(config, seed=seed, tagged=True, contrast_weight=w, validation_share=0.0), seed,
                                progress)
                    for w in dict.fromkeys(float(w) for w in weights)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = _report(responder, measured, len(train), len(held), config, seed, started)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _measure(train, held, wrong, model_path: Path, config: TuneConfig, seed: int, progress: bool) -> dict:
    result = tune(train, model_path, config, progress=progress)
    right = token_nlls(result.model, result.tokenizer, encoded(result.tokenizer, held, config))
    other = token_nlls(result.model, result.tokenizer, encoded(result.tokenizer, wrong, config))
    return {"nlls": right, "querier_tag": tag_effect(right, other, seed), "steps": result.steps,
            "train_s": round(result.seconds, 1), "tokens_per_s": round(result.tokens_per_s, 1)}


def _report(responder, measured: dict, n_train: int, n_held: int, config: TuneConfig, seed: int, started: float) -> dict:
    chosen = min(measured, key=lambda w: measured[w]["nlls"].mean())
    best = measured[chosen]["nlls"]
    weights = {}
    for weight, row in measured.items():
        nlls, gap = row["nlls"], row["nlls"] - best
        weights[str(weight)] = {"nll": round(float(nlls.mean()), 4), "ci95": bootstrap_ci(nlls, seed),
                                "minus_chosen": {"delta": round(float(gap.mean()), 4), "ci95": bootstrap_ci(gap, seed)},
                                **{k: v for k, v in row.items() if k != "nlls"}}
    return {"responder": responder, "seed": seed, "train_pairs": n_train, "validation_pairs": n_held,
            "chosen": chosen, "weights": weights, "tuning": config.settings(), "machine": describe_machine(),
            "seconds": round(time.perf_counter() - started, 1)}


def markdown_table(results: dict) -> str:
    lines = ["| weight | held-out NLL | minus the chosen (95% CI) | tag: wrong − right (95% CI) |", "|---:|---:|---|---|"]
    for weight, row in results["weights"].items():
        gap, tag = row["minus_chosen"], row["querier_tag"]
        lines.append(f"| {weight} | {row['nll']:.4f} | {gap['delta']:+.4f} [{gap['ci95'][0]:+.3f}, {gap['ci95'][1]:+.3f}] "
                     f"| {tag['delta']:+.4f} [{tag['ci95'][0]:+.3f}, {tag['ci95'][1]:+.3f}] |")
    return "\n".join(lines)
