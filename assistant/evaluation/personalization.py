"""The personalization benchmark: does the assistant answer like the responder would, to each
questioner, better than without knowing who asks?

Contract: ``run(data_dir, responder, ...)`` imports the responder's train pairs into fresh
temporary stores, trains the questioner encoder (and its ablations), then answers up to
``limit`` test pairs (stratified by questioner, deterministic with ``seed``) with the local
model for every system (``systems`` picks some), and returns (and writes) ``results.json`` with
ROUGE-L, BLEU, paired bootstrap deltas, speaker identification and same-query personalization,
and the machine it ran on (training speed differs about 2x between CPUs).
The trained systems (``finetune``, ``querier_aware_ft``), the trivial baselines and the honesty
checks (``likelihood``, ``querier_tag``, ``shape``) are ``evaluation.finetune``'s; with
``querier_aware_ft`` run, ``paired_delta_vs_ft`` and ``same_query_ft`` measure it too.
Generation takes at most 64 new tokens, greedy for the prompt systems, with the product's sampling
at the fixed seed for the tuned ones (as a live tuned turn decodes). Every system goes through the app's own import, training, recall
and prompt code; nothing here is specific to one show.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from assistant import prompts
from assistant.errors import InputError
from assistant.evaluation import finetune
from assistant.machine import describe as describe_machine
from assistant.evaluation.metrics import balanced_accuracy, bleu, bootstrap_ci, paired_delta, rouge_l
from assistant.people.importers import mqd
from assistant.models.local import LocalModel
from assistant.memory.memory import Memory
from assistant.memory.recall import Recalled, recall_memories
from assistant.settings import Settings
from assistant.store.store import Store
from assistant.training.trainer import TuneConfig
from assistant.turn_options import Sampling
from profiles.tower import Dialogue

SYSTEMS = ["zero_shot", "fewshot_generic", "retrieval_querier", "querier_aware", "no_clusters", "no_augmentation", "general_only"]
ALL_SYSTEMS = [*SYSTEMS, *finetune.SYSTEMS]
VARIANTS = {"querier_aware": {}, "no_clusters": {"use_clusters": False}, "no_augmentation": {"augment": False}}
SAME_QUERY_ITEMS = 20


@dataclass(frozen=True)
class TestPair:
    querier: str
    context: list[str]
    query: str
    response: str


def read_tests(path: Path, responder: str) -> list[TestPair]:
    wanted = mqd.speaker_key(responder)
    return [
        TestPair(mqd.display_name(mqd.speaker_key(r["querier"])), [t["text"] for t in r.get("context", [])], r["query"], r["response"])
        for _, r, problem in mqd.read_records(path)
        if not problem and mqd.speaker_key(r["responder"]) == wanted
    ]


def stratified(pairs: list[TestPair], limit: int, seed: int) -> list[TestPair]:
    """Round-robin over questioners (each shuffled with ``seed``) until ``limit`` pairs."""
    by_querier = defaultdict(list)
    for pair in pairs:
        by_querier[pair.querier].append(pair)
    rng = random.Random(seed)
    for group in by_querier.values():
        rng.shuffle(group)
    rounds = itertools.zip_longest(*(by_querier[q] for q in sorted(by_querier)))
    return [p for p in itertools.chain.from_iterable(rounds) if p is not None][:limit]


def persona(responder: str) -> str:
    return f"You are {mqd.display_name(mqd.speaker_key(responder))}. You are chatting with a friend; reply in character, briefly."


def copy_store(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    with sqlite3.connect(source / "confidant.db") as src, sqlite3.connect(target / "confidant.db") as dst:
        src.backup(dst)


class Bench:
    """Everything one responder's evaluation needs: stores per variant and the local model."""

    def __init__(self, settings: Settings, workdir: Path, responder: str, train_path: Path, seed: int, progress: bool,
                 systems: list[str] = SYSTEMS):
        self.settings, self.seed, self.progress = settings, seed, progress
        # the encoder ablations train only when their system runs; querier_aware's store serves the rest
        variants = {name: options for name, options in VARIANTS.items() if name == "querier_aware" or name in systems}
        self.persona = persona(responder)
        self.timings = {}
        started = time.perf_counter()
        full = self._memory(workdir / "querier_aware")
        full.ingest(mqd.parse(train_path, responder), progress=progress)
        self.timings["import"] = round(time.perf_counter() - started, 1)
        for name in [*variants, "general_only"]:
            if name != "querier_aware":
                copy_store(workdir / "querier_aware", workdir / name)
        self.memories = {name: self._memory(workdir / name) for name in [*variants, "general_only"]}
        self.parts = {name: memory.parts() for name, memory in self.memories.items()}  # what is read directly
        started = time.perf_counter()
        frozen = self.memories["querier_aware"].frozen_pass(progress)  # the stores are copies: one pass for all
        for name, options in variants.items():
            self.memories[name].train(seed=seed, progress=progress, frozen=frozen, **options)
            if name == "querier_aware":
                self.timings["train"] = round(time.perf_counter() - started, 1)
        self.local = LocalModel.shared(settings)

    def _memory(self, data_dir: Path) -> Memory:
        settings = self.settings.model_copy(update={"data_dir": data_dir})
        return Memory(settings, Store(settings.database_path))

    def profile(self, name: str):
        return self.parts["querier_aware"].store.find_profile(name)

    def generate(self, querier: str, pair: TestPair, memories: list[Recalled]) -> str:
        chars = self.settings.recall_example_chars
        system = prompts.system_message(self.persona, querier, memories, chars, scene=pair.context)
        examples = prompts.example_messages(memories, chars)
        prompt = self.local.fit(system, examples, prompts.user_message(pair.query))
        stop = prompts.stop_strings(querier, memories)
        return "".join(self.local.stream(prompt, seed=self.seed, stop=stop)).strip()

    def answer(self, system: str, pair: TestPair, querier: str | None = None) -> str:
        querier = querier or pair.querier
        person = self.profile(querier)
        if system == "zero_shot" or (person is None and system != "fewshot_generic"):
            return self.generate(querier, pair, [])  # nothing is known of an unseen questioner
        if system in ("fewshot_generic", "retrieval_querier"):
            store, _, encoders, index = self.parts["querier_aware"]
            query = encoders.queries([pair.query])[0]
            among = None if system == "fewshot_generic" else store.memory_ids(person.id)
            hits = index.search(query, self.settings.recall_k if among is None else 1, among=among)
            found = store.exchanges([i for i, _ in hits])
            if system == "retrieval_querier":
                return found[hits[0][0]].reply if hits else ""
            examples = [Recalled(found[i], s, s, 0.0, False) for i, s in hits]  # same format as querier_aware
            return self.generate(querier, pair, examples)
        memories, _ = recall_memories(
            self.memories[system], person, pair.query, pair.context, self.settings, use_clusters=system != "no_clusters"
        )
        return self.generate(querier, pair, memories)


def speaker_identification(bench: Bench, pairs: list[TestPair]) -> dict:
    """Balanced accuracy of naming the questioner of held-out dialogues, one and five at a time."""
    known = [p for p in pairs if bench.profile(p.querier) is not None]
    truth = np.array([bench.profile(p.querier).id for p in known])
    dialogues = [Dialogue(p.query, p.context, p.response) for p in known]
    results = {"single": {}, "session5": {}}
    for label, name in (("general", "general_only"), ("dual_tower", "querier_aware")):
        _, stored, encoders, _ = bench.parts[name]
        ids, prototypes, _ = stored.prototypes()
        vectors = encoders.dialogues(dialogues)
        results["single"][label] = balanced_accuracy(truth, ids[np.argmax(vectors @ prototypes.T, axis=1)])
        groups = [(q, idx[i : i + 5]) for q in np.unique(truth) for idx in [np.flatnonzero(truth == q)] for i in range(0, len(idx) - 4, 5)]
        means = np.stack([vectors[g].mean(axis=0) for _, g in groups]) if groups else np.zeros((0, vectors.shape[1]))
        guessed = ids[np.argmax(means @ prototypes.T, axis=1)] if groups else []
        results["session5"][label] = balanced_accuracy([q for q, _ in groups], guessed)
    results["single"]["chance"] = round(1 / max(len(np.unique(truth)), 1), 4)
    results["n_dialogues"] = len(known)
    return results


def same_query(bench: Bench, pairs: list[TestPair], answer=None) -> dict:
    """Re-ask test queries as every questioner: do replies differ, and do they sound addressed to them?
    ``answer(pair, querier)`` makes the replies (default: the prompt-only ``querier_aware``)."""
    answer = answer or (lambda pair, querier: bench.answer("querier_aware", pair, querier))
    store, stored, encoders, _ = bench.parts["querier_aware"]
    ids, prototypes, _ = stored.prototypes()
    queriers = [store.profile(int(i)).name for i in ids]
    differ, hits, total = [], 0, 0
    for pair in tqdm(pairs, desc="same query", disable=not bench.progress):
        replies = [answer(pair, querier) for querier in queriers]
        differ += [a != b for a, b in itertools.combinations(replies, 2)]
        vectors = encoders.dialogues([Dialogue(pair.query, pair.context, r) for r in replies])
        hits += int((np.argmax(vectors @ prototypes.T, axis=1) == np.arange(len(queriers))).sum())
        total += len(queriers)
    return {
        "distinct_reply_rate": round(float(np.mean(differ)), 4) if differ else 0.0,
        "intended_querier_acc": round(hits / max(total, 1), 4),
        "chance": round(1 / max(len(queriers), 1), 4),
        "n_queries": len(pairs),
    }


def run(data_dir: Path, responder: str, limit: int, seed: int, out: Path, settings: Settings, progress: bool = True,
        systems: list[str] | None = None, tune_config: TuneConfig | None = None) -> dict:
    settings = settings.model_copy(update={"max_tokens": 64, "seed": seed})
    # a tuned system decodes as a live tuned turn does, with the product's sampling (fixed seed),
    # against collapse to one line; the prompt systems greedily, as the benchmark always has
    tuned_sampling = Sampling.of(settings)
    settings = settings.model_copy(update={"temperature": 0.0})
    systems = list(systems or ALL_SYSTEMS)
    unknown = sorted(set(systems) - set(ALL_SYSTEMS))
    if unknown:
        raise InputError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(ALL_SYSTEMS)}")
    workdir = out / "work"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        bench = Bench(settings, workdir, responder, Path(data_dir) / "train.jsonl.gz", seed, progress, systems)
        tuned = finetune.TunedSystems(bench, systems, tune_config or TuneConfig.from_settings(settings),
                                      tuned_sampling, workdir, seed, progress)
        answer = {s: (lambda p, s=s: tuned.answer(s, p)) if s in finetune.SYSTEMS else (lambda p, s=s: bench.answer(s, p))
                  for s in systems}
        all_tests = read_tests(Path(data_dir) / "test.jsonl.gz", responder)
        tests = stratified(all_tests, limit, seed)
        references = [p.response for p in tests]
        started = time.perf_counter()
        predictions = {
            system: [answer[system](p) for p in tqdm(tests, desc=system, disable=not progress)] for system in systems
        }
        bench.timings["generate"] = round(time.perf_counter() - started, 1)
        scores = {system: rouge_l(predictions[system], references) for system in systems}
        results = {
            "responder": responder,
            "n": len(tests),
            "seed": seed,
            "systems": {
                s: {"rougeL": round(float(scores[s].mean()), 3), "rougeL_ci95": bootstrap_ci(scores[s], seed),
                    "bleu": round(bleu(predictions[s], references), 3)}
                for s in systems
            },
            **_headline_deltas(scores, systems, seed),
            "speaker_id": speaker_identification(bench, all_tests),
            **({"same_query": same_query(bench, tests[:SAME_QUERY_ITEMS])} if "querier_aware" in systems else {}),
            **({"same_query_ft": same_query(bench, tests[:SAME_QUERY_ITEMS], lambda p, q: tuned.answer("querier_aware_ft", p, q))}
               if "querier_aware_ft" in systems else {}),
            **tuned.report(tests, predictions),
            "timings_s": bench.timings,
            "machine": describe_machine(),
            "examples": [
                {"querier": p.querier, "query": p.query, "reference": p.response, **{s: predictions[s][i] for s in systems}}
                for i, p in enumerate(tests[:10])
            ],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    chart(results, out / "rougeL.png")
    return results


def _headline_deltas(scores: dict, systems: list[str], seed: int) -> dict:
    """Paired ROUGE-L deltas of the prompt-only and the trained querier-aware systems against the rest."""
    out = {}
    for key, head in (("paired_delta_vs", "querier_aware"), ("paired_delta_vs_ft", "querier_aware_ft")):
        if head in scores:
            out[key] = {s: paired_delta(scores[head], scores[s], seed) for s in systems if s != head}
    return out


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(results["systems"])
    means = [results["systems"][s]["rougeL"] for s in systems]
    errors = np.array([[m - results["systems"][s]["rougeL_ci95"][0], results["systems"][s]["rougeL_ci95"][1] - m]
                       for s, m in zip(systems, means)]).T
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["#2f5d50" if s == "querier_aware" else "#9ca3af" for s in systems]
    ax.bar(systems, means, yerr=errors, capsize=4, color=colors)
    ax.set_ylabel("ROUGE-L F1 ×100")
    ax.set_title(f"{results['responder']}: replies to held-out questions (n={results['n']}, 95% CI)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(results: dict) -> str:
    lines = ["| system | ROUGE-L | 95% CI | BLEU | Δ querier_aware (95% CI) |", "|---|---:|---|---:|---|"]
    for system, row in results["systems"].items():
        delta = results.get("paired_delta_vs", {}).get(system)
        shown = f"{delta['rougeL']:+.2f} [{delta['ci95'][0]:+.2f}, {delta['ci95'][1]:+.2f}]" if delta else "—"
        lines.append(f"| {system} | {row['rougeL']:.2f} | [{row['rougeL_ci95'][0]:.2f}, {row['rougeL_ci95'][1]:.2f}] | {row['bleu']:.2f} | {shown} |")
    return "\n".join(lines)
