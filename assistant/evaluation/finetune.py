"""The personalization benchmark's trained systems and honesty checks.

Contract of ``TunedSystems(bench, systems, config, sampling, workdir, seed, progress)``:
- ``finetune``: LoRA on the responder's train dialogues with no querier tag and no contrastive
  term (the paper's fine-tune baseline); ``querier_aware_ft``: the full method as the product
  trains it, the tagged dialogues with the querier contrast at ``TuneConfig``'s weight (0 since
  the weight was chosen on held-out train dialogues, so it trains as ``tagged_ft`` does);
  ``tagged_ft``: the tagged dialogues without the contrast, whatever the default. All train through ``assistant.training``
  on what the bench imported into its store (``dialogues.learnable``), are exported as GGUF adapters and
  answer through the bench's own llama.cpp model with ``AdapterSwitch``, decoded as a live
  tuned turn is (``models.tuned``): ``sampling``, the product's (temperature, top_p, top_k,
  penalties) with the benchmark's fixed seed, one line held to a length (``serving.reply_length``)
  drawn for the query from the train replies' lengths (``TuneResult.reply_length_quantiles``)
  less the run to a sentence end (``TuneResult.sentence_lead``),
  seeded by the seed and the query, so one question asked as different people draws alike.
- ``echo_query`` (the query itself) and ``constant_reply`` (the most frequent train reply) are
  the trivial baselines every system must beat.
- ``answer(system, pair, querier=None)`` answers a test pair as ``querier`` (default its own).
- ``report(tests, predictions)``: ``likelihood`` (mean per-token NLL of the true reply under the
  base model and each trained system, each with a bootstrap 95% interval),
  ``querier_tag`` (the tuned model's NLL with the true questioner's tag against another
  questioner's of the same responder, paired; ``delta`` = wrong − right, > 0 means the tag
  helps; ``querier_tag_of_tagged_ft`` the same for the ablation),
  ``likelihood_gain_of_querier_aware_ft`` (the base's and the other trained systems' NLL minus
  the full method's, paired, > 0 means the full method fits the real reply better) and ``shape``
  (mean words and the share of the most common reply, per system and for the real replies),
  and the training figures.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from assistant.evaluation.metrics import bootstrap_ci
from assistant.training.dialogues import Turn, learnable, render_prompt, reply_text
from assistant.training.export import write_adapter
from assistant.training.model import encode
from assistant.training.serving import AdapterSwitch, reply_length
from assistant.training.trainer import TuneConfig, token_nlls, tune
from assistant.turn_options import Sampling

TRAINED = {  # what each trained system changes from TuneConfig's defaults (the full method)
    "finetune": {"tagged": False, "contrast_weight": 0.0},
    "tagged_ft": {"tagged": True, "contrast_weight": 0.0},  # the ablation without the querier contrast
    "querier_aware_ft": {"tagged": True},
}
TRIVIAL = ["echo_query", "constant_reply"]
SYSTEMS = [*TRIVIAL, *TRAINED]


def prompt_for(pair, querier: str | None) -> str:
    return render_prompt([Turn(None, t) for t in pair.context], querier, pair.query)


class TunedSystems:
    def __init__(self, bench, systems, config: TuneConfig, sampling: Sampling, workdir: Path, seed: int,
                 progress: bool):
        self.bench, self.seed = bench, seed
        examples = learnable(bench.parts["querier_aware"].store)
        self.constant = Counter(" ".join(e.reply.split()) for e in examples).most_common(1)[0][0] if examples else ""
        self.queriers = sorted({e.querier for e in examples})
        self.results, self.adapters, self.timings = {}, {}, {}
        self.switch = AdapterSwitch(bench.local.llm)
        self.sampling = sampling.llama_kwargs(bench.settings)
        for name, options in TRAINED.items():
            if name not in systems:
                continue
            started = time.perf_counter()
            result = tune(examples, bench.settings.model_path, replace(config, seed=seed, **options), progress=progress)
            self.results[name] = result
            self.adapters[name] = write_adapter(result.model, workdir / f"{name}.gguf", {"system": name})
            self.timings[name] = {"train_s": round(time.perf_counter() - started, 1), "steps": result.steps,
                                  "tokens_per_s": round(result.tokens_per_s, 1), "train_pairs": len(result.train),
                                  "val_nll_before": round(result.val_nll_before, 4),
                                  "val_nll_after": round(result.val_nll_after, 4),
                                  "reply_length_quantiles": result.reply_length_quantiles,
                                  "sentence_lead": result.sentence_lead}

    def answer(self, system: str, pair, querier: str | None = None) -> str:
        if system == "echo_query":
            return pair.query
        if system == "constant_reply":
            return self.constant
        tagged = TRAINED[system].get("tagged", True)
        lock = getattr(self.bench.local, "_lock", None)
        try:
            if lock is not None:
                lock.acquire()
            self.switch.use(self.adapters[system], 1.0)
            result = self.results[system]
            length = reply_length(result.reply_length_quantiles, self.seed, pair.query, result.sentence_lead)
            return self.switch.generate(prompt_for(pair, (querier or pair.querier) if tagged else None),
                                        length, **self.sampling)
        finally:
            self.switch.use(None)  # the other systems answer with the base model
            if lock is not None:
                lock.release()

    def _nlls(self, result, tests, queriers, adapter: bool = True) -> np.ndarray:
        rows = [encode(result.tokenizer, prompt_for(p, q), reply_text(p.response), result.config.max_tokens)
                for p, q in zip(tests, queriers)]
        if adapter:
            return token_nlls(result.model, result.tokenizer, rows)
        with result.model.disable_adapter():
            return token_nlls(result.model, result.tokenizer, rows)

    def report(self, tests, predictions: dict[str, list[str]]) -> dict:
        report = {"shape": shape(tests, predictions), "tuning": self.timings, "decoding": self.sampling}
        if not self.results or not tests:
            return report
        truth = [p.querier for p in tests]
        wrong = [other_querier(self.queriers, q, self.seed, i) for i, q in enumerate(truth)]
        any_result = next(iter(self.results.values()))
        likelihood, tag_effects = {"base": self._nlls(any_result, tests, truth, adapter=False)}, {}
        for name, result in self.results.items():
            tagged = TRAINED[name]["tagged"]
            likelihood[name] = right = self._nlls(result, tests, truth if tagged else [None] * len(tests))
            if tagged:
                tag_effects[name] = tag_effect(right, self._nlls(result, tests, wrong), self.seed)
        report["likelihood"] = {s: {"nll": round(float(v.mean()), 4), "ci95": bootstrap_ci(v, self.seed)}
                                for s, v in likelihood.items()}
        if "querier_aware_ft" in tag_effects:
            report["querier_tag"] = tag_effects["querier_aware_ft"]
        if "tagged_ft" in tag_effects:  # does the tag help without the contrast?
            report["querier_tag_of_tagged_ft"] = tag_effects["tagged_ft"]
        if "querier_aware_ft" in likelihood:  # paired over test pairs: > 0 means the full method's NLL is lower
            head = likelihood["querier_aware_ft"]
            report["likelihood_gain_of_querier_aware_ft"] = {
                s: {"delta": round(float((v - head).mean()), 4), "ci95": bootstrap_ci(v - head, self.seed)}
                for s, v in likelihood.items() if s != "querier_aware_ft"}
        return report


def tag_effect(right: np.ndarray, wrong: np.ndarray, seed: int) -> dict:
    """The NLL with the true questioner's tag against another's, paired; delta > 0: the tag helps."""
    diff = wrong - right
    return {"nll_right": round(float(right.mean()), 4), "nll_wrong": round(float(wrong.mean()), 4),
            "delta": round(float(diff.mean()), 4), "ci95": bootstrap_ci(diff, seed)}


def other_querier(queriers: list[str], querier: str, seed: int, index: int) -> str:
    """Another questioner of the responder for item ``index``, drawn with ``seed`` (the wrong tag)."""
    others = [q for q in queriers if q != querier] or [querier]
    return random.Random(seed * 100_003 + index).choice(others)


def shape(tests, predictions: dict[str, list[str]]) -> dict:
    def describe(replies: list[str]) -> dict:
        counts = Counter(" ".join(r.split()) for r in replies)
        return {"mean_words": round(float(np.mean([len(r.split()) for r in replies])), 2) if replies else 0.0,
                "top_reply_share": round(counts.most_common(1)[0][1] / len(replies), 4) if replies else 0.0}

    return {"reference": describe([p.response for p in tests]), **{s: describe(r) for s, r in predictions.items()}}
