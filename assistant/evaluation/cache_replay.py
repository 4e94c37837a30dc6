"""Replaying a stream with repeats and paraphrases: how much does the semantic cache save?

Contract: ``replay(questions, settings, model, seed)`` builds a stream from ``questions`` —
each asked once, then a quarter asked again verbatim and a quarter reworded (templated
rewordings: a greeting or a thank-you around the question, lower case), every repeat after
its original — and routes it in Auto through the app's own ``Router`` over a fresh store, once
with the semantic cache and once without. A turn routed to the cloud is stored as a cloud
exchange (its reply a stand-in: only the routing is measured, no cloud is called). Returns the
cloud-call rates (against ``settings.cloud_budget``, kept by the router's online threshold), how
many turns the cache answered, and the milliseconds of a whole ``Router.choose`` (cache search,
score, reading the household's history back from the store and its online threshold).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.routing.difficulty import DifficultyModel
from assistant.evaluation.questions import Question
from assistant.memory.memory import Memory
from assistant.store.turn_log import TurnLog
from assistant.routing.router import Router
from assistant.settings import Settings
from assistant.store.store import GenerationStats, Store

TEMPLATES = ["Quick question: {q}", "{q} Thanks!", "Could you help me with this? {q}", "hey, {lower}"]


def stream(questions: list[Question], seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = [q.text for q in questions]
    items = list(texts)
    for i, text in enumerate(rng.sample(texts, len(texts) // 4)):
        items.insert(rng.randint(items.index(text) + 1, len(items)), text)
    for text in rng.sample(texts, len(texts) // 4):
        reworded = rng.choice(TEMPLATES).format(q=text, lower=text[:1].lower() + text[1:])
        items.insert(rng.randint(items.index(text) + 1, len(items)), reworded)
    return items


def route_all(texts: list[str], settings: Settings, model: DifficultyModel) -> tuple[int, int, list[float]]:
    """(cloud calls, cache answers, ms per choice) when ``texts`` are asked in Auto, one conversation each."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp)})
        store = Store(settings.database_path)
        memory, person = Memory(settings, store), store.add_profile("replay")
        _, _, encoders, index = memory.parts()
        log = TurnLog(store)
        router = Router(settings, store, index, model, log=log)
        cloud = cached = 0
        choose_ms = []
        for text in texts:
            session = store.new_session(person.id)
            exchange_id = log.begin_exchange(session.id, person.id, text, [])
            query = encoders.queries([text])[0]
            start = time.perf_counter()
            route = router.choose("auto", person, text, query, session.id)
            choose_ms.append((time.perf_counter() - start) * 1000)
            log.record(exchange_id, route.target, route.reason, route.score)
            cloud += route.target == "cloud"
            cached += route.cached is not None
            stats = GenerationStats(route.target, "replay", 0.0, 1, 0.0)
            memory.remember(log.complete_exchange(exchange_id, "(an answer)", stats))
        store.close()
        return cloud, cached, choose_ms


def replay(questions: list[Question], settings: Settings, model: DifficultyModel, seed: int, progress: bool = False) -> dict:
    texts = stream(questions, seed)
    settings = settings.model_copy(update={"cloud_base_url": settings.cloud_base_url or "http://127.0.0.1:9/v1",
                                           "cloud_model": settings.cloud_model or "replay"})
    without, _, _ = route_all(texts, settings.model_copy(update={"cache_similarity": 2.0}), model)  # never similar
    with_cache, answered, choose_ms = route_all(texts, settings, model)
    return {"n": len(texts), "repeats": len(questions) // 4, "rewordings": len(questions) // 4,
            "budget": settings.cloud_budget,
            "cloud_rate_without_cache": round(without / len(texts), 4),
            "cloud_rate_with_cache": round(with_cache / len(texts), 4),
            "answered_from_cache": answered, "cache_similarity": settings.cache_similarity,
            "router_choose_ms_p50": round(float(np.percentile(choose_ms, 50)), 3) if choose_ms else None,
            "router_choose_ms_p95": round(float(np.percentile(choose_ms, 95)), 3) if choose_ms else None}
