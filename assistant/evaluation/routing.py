"""The routing benchmark: does the router send the turns the local model would fail to the cloud?

Contract: ``run(data_files, chat_file, out, settings, ...)`` draws ``limit`` questions from each
file (leaving out any the router was trained on), answers every question once with the local
model (greedy, the app's persona plus a one-line answer-format hint) and grades it with its
type's checker, then builds one stream per ``chat_shares`` entry by mixing in conversational
turns (counted as answered correctly on the device) to make up that share. Each stream is
replayed in order, shuffled and in bursts, through the app's own online budget threshold
(``stream_replay``); an escalated item counts as answered correctly by the cloud (stated in the
output). The first share is the main stream: its AUROC of the score against local failure,
accuracy/cloud-rate curve, operating point at ``budget`` (cloud rate, budget adherence, gap
recovered, the cloud tokens it sends), the shipped fixed threshold's point, the random, length
and oracle baselines at the same cloud rate, and the chart. It writes ``OUT/results.json`` (with
router latency and the semantic-cache replay through the app's ``Router``) and
``OUT/routing.png``, and returns the results.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from assistant import prompts
from assistant.routing.budget import WINDOW, online_threshold
from assistant.routing.difficulty import DifficultyModel
from assistant.errors import InputError
from assistant.evaluation.questions import Question, is_correct, read_chat, read_questions
from assistant.evaluation.stream_replay import accuracy_escalating, arrange, gap_recovered, replay, top
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


ORDERS = ("shuffled", "bursts")


def draw(data_files, chat_file, limit: int, chat_share: float, seed: int, model: DifficultyModel):
    """The questions (minus the router's training items) and enough conversation for ``chat_share``."""
    rng = random.Random(seed)
    questions, excluded = [], 0
    for path in data_files:
        every = read_questions(path)
        unseen = [q for q in every if not model.seen(q.text)]
        excluded += len(every) - len(unseen)
        questions += rng.sample(unseen, min(limit, len(unseen)))
    chat = []
    if chat_file and chat_share > 0:
        pool = sorted(set(read_chat(chat_file)))
        chat = rng.sample(pool, min(chat_wanted(len(questions), chat_share), len(pool)))
    return questions, chat, excluded


def chat_wanted(n_questions: int, chat_share: float) -> int:
    return round(n_questions * chat_share / (1 - chat_share)) if chat_share < 1 else 0


def answer_locally(local: LocalModel, settings: Settings, question: Question, seed: int) -> str:
    system = f"{settings.system_prompt} {HINTS[question.type]}"
    prompt = local.fit({"role": "system", "content": system}, [], prompts.user_message(question.text))
    return "".join(local.stream(prompt, seed=seed)).strip()


def cloud_tokens(local: LocalModel, settings: Settings, texts: list[str], answers: list[str]) -> np.ndarray:
    """(prompt, completion) tokens each item would cost in the cloud, counted with the local
    model's tokenizer: the prompt is what a cloud turn sends (the persona and the message, as
    ``Escalation.messages`` builds it with no earlier turns); the completion is estimated by the
    local answer's length for questions and, for conversation (not answered here), their median."""
    system = {"role": "system", "content": settings.system_prompt}
    prompt = [len(local.render([system, {"role": "user", "content": t}])[1]) for t in texts]
    completion = [len(local.llm.tokenize(a.encode("utf-8"), add_bos=False)) for a in answers]
    rest = [int(np.median(completion)) if completion else settings.max_tokens] * (len(texts) - len(answers))
    return np.array([prompt, completion + rest]).T


def tokens_sent(tokens: np.ndarray, sent: np.ndarray) -> dict:
    prompt, completion = (int(x) for x in tokens[sent].sum(axis=0))
    every = int(tokens.sum())
    return {"prompt": prompt, "completion_estimate": completion, "total": prompt + completion,
            "if_every_turn_went": every, "share_of_every_turn": round((prompt + completion) / every, 4) if every else 0.0}


def operating_points(correct: np.ndarray, scores: np.ndarray, texts: list[str], sent: np.ndarray, shipped: float,
                     budget: float, seed: int) -> dict:
    """The shipped fixed threshold, exactly ``budget``, and the baselines at the online replay's cloud rate."""
    n, local, k = len(correct), float(correct.mean()), int(sent.sum())
    point = lambda chosen: {"cloud_rate": round(float(chosen.mean()), 4),  # noqa: E731
                            "accuracy": round(accuracy_escalating(correct, chosen), 4),
                            "gap_recovered": gap_recovered(accuracy_escalating(correct, chosen), local)}
    rng = np.random.default_rng(seed)
    random_gaps = [gap_recovered(accuracy_escalating(correct, top(rng.random(n), k)), local) for _ in range(200)]
    exact = int(round(budget * n))
    return {
        "at_shipped_threshold": {"budget": budget, "threshold": round(shipped, 4), **point(scores >= shipped)},
        "at_exact_budget": {"budget": budget, **point(top(scores, exact)),
                            "oracle_gap_recovered": point(top((~correct).astype(float), exact))["gap_recovered"]},
        "baselines": {
            "random": {"gap_recovered": round(float(np.mean(random_gaps)), 4), "cloud_rate": round(k / n, 4)},
            "length": {**point(top(np.array([len(t) for t in texts], dtype=float), k))},
            "oracle": {**point(top((~correct).astype(float), k))},
        },
        "curve": [[round(c / n, 4), round(accuracy_escalating(correct, top(scores, c)), 4)]
                  for c in sorted({int(round(f * n)) for f in np.linspace(0, 1, 41)})],
    }


def router_latency(model: DifficultyModel, texts: list[str], vectors: np.ndarray, tower, budget: float) -> dict:
    """Milliseconds to route one message given its embedding — score, kind and the online
    threshold over a full history window — and to embed it (shared with recall)."""
    history = np.resize(model.score(texts, vectors), WINDOW)
    sent = history >= np.quantile(history, 1 - budget)
    score_ms, embed_ms = [], []
    for text, vector in zip(texts, vectors):
        start = time.perf_counter()
        model.assess(text, vector)  # exactly what the router computes per turn
        online_threshold(model.quantiles, budget, history, sent)
        score_ms.append((time.perf_counter() - start) * 1000)
    for text in texts[:100]:
        start = time.perf_counter()
        tower.encode([text], normalize_embeddings=True)
        embed_ms.append((time.perf_counter() - start) * 1000)
    pct = lambda xs, q: round(float(np.percentile(xs, q)), 3)  # noqa: E731
    return {"router_ms_p50": pct(score_ms, 50), "router_ms_p95": pct(score_ms, 95),
            "embedding_ms_p50": pct(embed_ms, 50), "embedding_ms_p95": pct(embed_ms, 95),
            "router_with_embedding_ms_p95": pct(np.array(score_ms[:len(embed_ms)]) + np.array(embed_ms), 95)}


def replay_streams(chat_shares, n_questions: int, n_chat: int, graded: np.ndarray, scores: np.ndarray,
                   tokens: np.ndarray, model: DifficultyModel, budget: float, seed: int) -> dict:
    """Every stream, in every order, through the online threshold; decisions in item order."""
    from sklearn.metrics import roc_auc_score

    streams = {}
    for share in chat_shares:
        chat = min(chat_wanted(n_questions, share), n_chat)
        items = np.r_[np.arange(n_questions), n_questions + np.arange(chat)]
        correct = np.r_[graded, np.ones(chat, dtype=bool)]
        kinds = np.r_[np.ones(n_questions, dtype=bool), np.zeros(chat, dtype=bool)]
        stream = {"chat_share": share, "n": len(items), "n_chat": chat, "items": items, "correct": correct,
                  "auroc": round(float(roc_auc_score(~correct, scores[items])), 4) if 0 < correct.sum() < len(correct)
                  else None}
        for order in ORDERS:
            asked = arrange(kinds, order, seed)
            result = replay(scores[items][asked], correct[asked], model.quantiles, budget)
            sent = np.empty(len(items), dtype=bool)
            sent[asked] = result.pop("decisions")
            stream[order] = {**result, "cloud_tokens": tokens_sent(tokens[items], sent), "sent": sent}
        streams[str(share)] = stream
    return streams


def run(data_files, chat_file, out: Path, settings: Settings, limit: int = 40, chat_shares=(0.5,),
        budget: float = 0.3, seed: int = 0, router_path=None, progress: bool = True) -> dict:
    from assistant.evaluation import cascade
    from assistant.evaluation.cache_replay import replay as cache_replay

    if not chat_shares or not all(0 <= share < 1 for share in chat_shares):
        raise InputError("--chat-share takes shares of the stream from 0 up to (not including) 1, e.g. 0.2 0.5 0.8")
    settings = settings.model_copy(update={"max_tokens": 64, "temperature": 0.0, "seed": seed})
    model = DifficultyModel.load(router_path or settings.router_path)
    questions, chat, excluded = draw(data_files, chat_file, limit, max(chat_shares), seed, model)
    local = LocalModel.shared(settings)
    started = time.perf_counter()
    answers = [answer_locally(local, settings, q, seed) for q in tqdm(questions, desc="local answers", disable=not progress)]
    generate_s = time.perf_counter() - started
    graded = np.array([is_correct(a, q) for a, q in zip(answers, questions)], dtype=bool)
    texts = [q.text for q in questions] + chat
    tower = shared_general_tower(settings.embedder_path)
    vectors = np.asarray(tower.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)
    scores = model.score(texts, vectors)
    tokens = cloud_tokens(local, settings, texts, answers)
    streams = replay_streams(chat_shares, len(questions), len(chat), graded, scores, tokens, model, budget, seed)
    main = streams[str(chat_shares[0])]
    items, correct, sent = main["items"], main["correct"], main["shuffled"]["sent"]
    main_texts = [texts[i] for i in items]
    results = {
        "n": len(items), "n_questions": len(questions), "n_chat": main["n_chat"], "chat_share": chat_shares[0],
        "excluded_as_router_training": excluded, "assumption": ASSUMPTION,
        "local_accuracy": round(float(correct.mean()), 4),
        "local_accuracy_on_questions": round(float(graded.mean()), 4) if len(graded) else None,
        "auroc": main["auroc"],
        "at_budget": {k: v for k, v in main["shuffled"].items() if k != "sent"},
        **operating_points(correct, scores[items], main_texts, sent, model.threshold(budget), budget, seed),
        "streams": {share: {"chat_share": s["chat_share"], "n": s["n"], "auroc": s["auroc"],
                            **{order: {k: v for k, v in s[order].items() if k != "sent"} for order in ORDERS}}
                    for share, s in streams.items()},
        **router_latency(model, main_texts, vectors[items], tower, budget),
        "by_source": by_source(questions, graded, scores[: len(questions)]),
        "cascade_on_draft": cascade.measure(questions, answers, graded, main_texts, vectors[items], correct,
                                            scores[items], generate_s / max(len(questions), 1), model, budget),
        "cache_replay": cache_replay(questions, settings.model_copy(update={"cloud_budget": budget}), model, seed,
                                     progress),
        "timings_s": {"local_answers": round(generate_s, 1)},
        "examples": [{"source": q.source, "question": q.text[:200], "gold": list(q.answers)[:2], "local": a[:200],
                      "correct": bool(c), "score": round(float(s), 3)}
                     for q, a, c, s in list(zip(questions, answers, graded, scores))[:: max(1, len(questions) // 12)]],
    }
    results["targets"] = targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    chart(results, correct, scores[items], main_texts, out / "routing.png")
    return results


def targets(results: dict) -> dict:
    """The issue's targets over every replayed stream and order."""
    runs = [s[order] for s in results["streams"].values() for order in ORDERS]
    shares = [r["share_of_oracle"] for r in runs if r["share_of_oracle"] is not None]
    aurocs = [s["auroc"] for s in results["streams"].values() if s["auroc"] is not None]
    return {"worst_budget_adherence": max(r["budget_adherence"] for r in runs),
            "worst_share_of_oracle": min(shares) if shares else None,
            "worst_auroc": min(aurocs) if aurocs else None, "router_ms_p95": results["router_ms_p95"]}


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
    rows = [("router, online threshold in stream order (what the app does)", results["at_budget"]),
            ("router, shipped fixed threshold", results["at_shipped_threshold"]),
            ("router, exactly the budget", results["at_exact_budget"]),
            *((f"{name}, same rate as the online threshold", results["baselines"][name])
              for name in ("random", "length", "oracle"))]
    lines = [f"local accuracy {results['local_accuracy']:.3f} · AUROC {results['auroc']} · n {results['n']} "
             f"· router p95 {results['router_ms_p95']} ms (+ embedding p95 {results['embedding_ms_p95']} ms, shared with recall)",
             "", "| system | cloud rate | accuracy | gap recovered |", "|---|---:|---:|---:|"]
    for name, row in rows:
        accuracy = f"{row['accuracy']:.3f}" if "accuracy" in row else "—"
        lines.append(f"| {name} | {row['cloud_rate']:.3f} | {accuracy} | {row['gap_recovered']:.3f} |")
    lines += ["", "| chat share | order | n | cloud rate | \\|rate − budget\\| | first 50 | gap recovered | oracle's | share "
              "| cloud tokens |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for share, stream in results["streams"].items():
        for order in ORDERS:
            r = stream[order]
            lines.append(f"| {share} | {order} | {r['n']} | {r['cloud_rate']:.3f} | {r['budget_adherence']:.3f} | "
                         f"{r['cloud_rate_first_50']:.3f} | {r['gap_recovered']:.3f} | {r['oracle_gap_recovered']:.3f} | "
                         f"{r['share_of_oracle']} | {r['cloud_tokens']['total']:,} |")
    fast, slow = results["cascade_on_draft"]["fast_score"], results["cascade_on_draft"]["cascade"]
    lines.append(f"\ncascade on the local draft: AUROC {fast['auroc']} → {slow['auroc']}, gap recovered "
                 f"{fast['gap_recovered']:.3f} → {slow['gap_recovered']:.3f}, "
                 f"+{results['cascade_on_draft']['draft_s_added_per_turn']} s per turn")
    cache = results["cache_replay"]
    lines.append(f"\nsemantic cache replay: cloud-call rate {cache['cloud_rate_without_cache']:.3f} → "
                 f"{cache['cloud_rate_with_cache']:.3f} over {cache['n']} turns")
    return "\n".join(lines)
