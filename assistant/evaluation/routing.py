"""The routing benchmark: does the router send the turns the local model would fail to the cloud?

Contract: ``run(data_files, chat_file, out, settings, ...)`` draws ``limit`` questions from each
file (leaving out any the router was trained on), mixes in conversational turns to make up
``chat_share`` of the stream, answers every question with the local model (greedy, the app's
persona plus a one-line answer-format hint) and grades it with its type's checker;
conversational turns count as answered correctly on the device. Every item also gets the
router's score. An escalated item counts as answered correctly by the cloud (stated in the
output). It writes ``OUT/results.json`` (accuracy/cloud-rate curve, AUROC of the score against
local failure, the operating point at ``budget`` with the router's calibrated threshold, the
random, length and oracle baselines at the same cloud rate, router latency, the semantic-cache
replay) and ``OUT/routing.png``, and returns the results.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from assistant import prompts
from assistant.routing.difficulty import DifficultyModel
from assistant.evaluation.questions import Question, is_correct, read_chat, read_questions
from assistant.models.local import LocalModel
from assistant.settings import Settings
from profiles.encoding import shared_general_tower

HINTS = {
    "numeric": "Solve it and end with the final number.",
    "short": "Answer in a few words.",
    "mc": "Answer with the letter of the correct choice.",
    "yesno": "Answer yes or no.",
}
ASSUMPTION = "an item sent to the cloud counts as answered correctly"


def draw(data_files, chat_file, limit: int, chat_share: float, seed: int, model: DifficultyModel):
    """The evaluation stream: questions (minus the router's training items) and conversation."""
    rng = random.Random(seed)
    questions, excluded = [], 0
    for path in data_files:
        every = read_questions(path)
        unseen = [q for q in every if not model.seen(q.text)]
        excluded += len(every) - len(unseen)
        questions += rng.sample(unseen, min(limit, len(unseen)))
    chat = []
    if chat_file and 0 < chat_share < 1:
        pool = sorted(set(read_chat(chat_file)))
        wanted = round(len(questions) * chat_share / (1 - chat_share))
        chat = rng.sample(pool, min(wanted, len(pool)))
    return questions, chat, excluded


def answer_locally(local: LocalModel, settings: Settings, question: Question, seed: int) -> str:
    system = f"{settings.system_prompt} {HINTS[question.type]}"
    prompt = local.fit({"role": "system", "content": system}, [], prompts.user_message(question.text))
    return "".join(local.stream(prompt, seed=seed)).strip()


def gap_recovered(accuracy: float, local_accuracy: float) -> float:
    return round((accuracy - local_accuracy) / (1 - local_accuracy), 4) if local_accuracy < 1 else 0.0


def accuracy_escalating(correct: np.ndarray, escalated: np.ndarray) -> float:
    return float(np.where(escalated, True, correct).mean())


def top(scores: np.ndarray, k: int) -> np.ndarray:
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.argsort(-scores, kind="stable")[:k]] = True
    return chosen


def operating_points(correct: np.ndarray, scores: np.ndarray, texts: list[str], threshold: float, budget: float,
                     seed: int) -> dict:
    n, local = len(correct), float(correct.mean())
    escalated = scores >= threshold
    k = int(escalated.sum())
    point = lambda chosen: {"cloud_rate": round(float(chosen.mean()), 4),  # noqa: E731
                            "accuracy": round(accuracy_escalating(correct, chosen), 4),
                            "gap_recovered": gap_recovered(accuracy_escalating(correct, chosen), local)}
    rng = np.random.default_rng(seed)
    random_gaps = [gap_recovered(accuracy_escalating(correct, top(rng.random(n), k)), local) for _ in range(200)]
    exact = int(round(budget * n))
    return {
        "at_budget": {"budget": budget, "threshold": round(threshold, 4), **point(escalated)},
        "at_exact_budget": {"budget": budget, **point(top(scores, exact))},
        "baselines": {
            "random": {"gap_recovered": round(float(np.mean(random_gaps)), 4), "cloud_rate": round(k / n, 4)},
            "length": {**point(top(np.array([len(t) for t in texts], dtype=float), k))},
            "oracle": {**point(top((~correct).astype(float), k))},
        },
        "curve": [[round(c / n, 4), round(accuracy_escalating(correct, top(scores, c)), 4)]
                  for c in sorted({int(round(f * n)) for f in np.linspace(0, 1, 41)})],
    }


def router_latency(model: DifficultyModel, texts: list[str], vectors: np.ndarray, tower) -> dict:
    """Milliseconds to score one message given its embedding, and to embed it (shared with recall)."""
    score_ms, embed_ms = [], []
    for text, vector in zip(texts, vectors):
        start = time.perf_counter()
        model.assess(text, vector)  # exactly what the router does per turn
        score_ms.append((time.perf_counter() - start) * 1000)
    for text in texts[:100]:
        start = time.perf_counter()
        tower.encode([text], normalize_embeddings=True)
        embed_ms.append((time.perf_counter() - start) * 1000)
    pct = lambda xs, q: round(float(np.percentile(xs, q)), 3)  # noqa: E731
    return {"router_ms_p50": pct(score_ms, 50), "router_ms_p95": pct(score_ms, 95),
            "embedding_ms_p50": pct(embed_ms, 50), "embedding_ms_p95": pct(embed_ms, 95),
            "router_with_embedding_ms_p95": pct(np.array(score_ms[:len(embed_ms)]) + np.array(embed_ms), 95)}


def run(data_files, chat_file, out: Path, settings: Settings, limit: int = 40, chat_share: float = 0.5,
        budget: float = 0.3, seed: int = 0, router_path=None, progress: bool = True) -> dict:
    from sklearn.metrics import roc_auc_score

    from assistant.evaluation.cache_replay import replay

    settings = settings.model_copy(update={"max_tokens": 64, "temperature": 0.0, "seed": seed})
    model = DifficultyModel.load(router_path or settings.router_path)
    questions, chat, excluded = draw(data_files, chat_file, limit, chat_share, seed, model)
    local = LocalModel.shared(settings)
    started = time.perf_counter()
    answers = [answer_locally(local, settings, q, seed) for q in tqdm(questions, desc="local answers", disable=not progress)]
    generate_s = time.perf_counter() - started
    correct = np.array([is_correct(a, q) for a, q in zip(answers, questions)] + [True] * len(chat))
    texts = [q.text for q in questions] + chat
    tower = shared_general_tower(settings.embedder_path)
    vectors = np.asarray(tower.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)
    scores = model.score(texts, vectors)
    results = {
        "n": len(texts), "n_questions": len(questions), "n_chat": len(chat),
        "excluded_as_router_training": excluded, "assumption": ASSUMPTION,
        "local_accuracy": round(float(correct.mean()), 4),
        "auroc": round(float(roc_auc_score(~correct, scores)), 4) if 0 < correct.sum() < len(correct) else None,
        **operating_points(correct, scores, texts, model.threshold(budget), budget, seed),
        **router_latency(model, texts, vectors, tower),
        "by_source": by_source(questions, correct[: len(questions)], scores[: len(questions)]),
        "cache_replay": replay(questions, settings, model, seed, progress),
        "timings_s": {"local_answers": round(generate_s, 1)},
        "examples": [{"source": q.source, "question": q.text[:200], "gold": list(q.answers)[:2], "local": a[:200],
                      "correct": bool(c), "score": round(float(s), 3)}
                     for q, a, c, s in list(zip(questions, answers, correct, scores))[:: max(1, len(questions) // 12)]],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    chart(results, correct, scores, texts, out / "routing.png")
    return results


def by_source(questions: list[Question], correct: np.ndarray, scores: np.ndarray) -> dict:
    sources = sorted({q.source for q in questions})
    return {s: {"n": int(sum(q.source == s for q in questions)),
                "local_accuracy": round(float(np.mean([c for q, c in zip(questions, correct) if q.source == s])), 4),
                "mean_score": round(float(np.mean([x for q, x in zip(questions, scores) if q.source == s])), 4)}
            for s in sources}


def chart(results: dict, correct: np.ndarray, scores: np.ndarray, texts: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(correct)
    rates = np.arange(n + 1) / n
    curves = {
        "router": scores,
        "length": np.array([len(t) for t in texts], dtype=float),
        "oracle": (~correct).astype(float),
    }
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, values in curves.items():
        ax.plot(rates, [accuracy_escalating(correct, top(values, k)) for k in range(n + 1)], label=name,
                linewidth=2.2 if name == "router" else 1.2)
    ax.plot([0, 1], [correct.mean(), 1.0], linestyle=":", color="gray", label="random (expected)")
    ax.axvline(results["at_budget"]["budget"], color="#2f5d50", linestyle="--", linewidth=1, label="budget")
    ax.set_xlabel("share of turns sent to the cloud")
    ax.set_ylabel("accuracy (cloud assumed right)")
    ax.set_title(f"Routing: n={n}, AUROC {results['auroc']}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(results: dict) -> str:
    rows = [("router (calibrated threshold)", results["at_budget"]), ("router (exact budget)", results["at_exact_budget"]),
            *((name, results["baselines"][name]) for name in ("random", "length", "oracle"))]
    lines = [f"local accuracy {results['local_accuracy']:.3f} · AUROC {results['auroc']} · n {results['n']} "
             f"· router p95 {results['router_ms_p95']} ms (+ embedding p95 {results['embedding_ms_p95']} ms, shared with recall)",
             "", "| system | cloud rate | accuracy | gap recovered |", "|---|---:|---:|---:|"]
    for name, row in rows:
        accuracy = f"{row['accuracy']:.3f}" if "accuracy" in row else "—"
        lines.append(f"| {name} | {row['cloud_rate']:.3f} | {accuracy} | {row['gap_recovered']:.3f} |")
    cache = results["cache_replay"]
    lines.append(f"\nsemantic cache replay: cloud-call rate {cache['cloud_rate_without_cache']:.3f} → "
                 f"{cache['cloud_rate_with_cache']:.3f} over {cache['n']} turns")
    return "\n".join(lines)
