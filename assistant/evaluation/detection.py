"""How often speaker detection would go ahead with a wrong guess, and the rule that decides when
it asks instead (``confidant eval detection``).

Protocol, per responder R of an mqd-format data set (R's queriers stand for a household):
- prototypes are made as the app makes them: the normalised mean of each querier's dialogue
  vectors (``Encoders.dialogues`` over query, context and reply; at most ``per_person`` of their
  pairs), and a probe is a first message as a turn sees it (the query alone, no context);
- each probe is ranked with ``profiles.identify.rank`` at the settings' temperature among a
  household of ``size`` people drawn (seeded) from R's queriers, always including the true one;
- generic questions (routing files: factoid, science, arithmetic questions with no personal
  signal) are ranked among households drawn the same way: every guess on them is unfounded.
Two splits, never mixed: "calibrate" ranks the queries of a scene split of TRAIN (20% of the
scenes, seeded) against prototypes made from the other scenes, with every other generic
question; "report" ranks the TEST queries against the same prototypes (made from TRAIN only),
with the other generic questions. At most ``probes`` messages per responder and split, and
``generic_limit`` generic questions in all, are drawn (seeded) to keep the run short. The rule (``Rule``: a floor on the top probability and on its lead over the
second) is chosen on "calibrate" only (``choose``) and then scored on "report".
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.settings import Settings
from profiles.dialogue import Dialogue
from profiles.identify import rank

HOUSEHOLDS = (2, 3, 5)
PROBABILITY_FLOORS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
MARGIN_FLOORS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.98)
BEFORE = (0.5, 0.0)  # the rule before issue 16: a top probability of 50%, no margin
MAX_GENERIC_GUESSED = 0.05  # a generic question asks at least 95% of the time
MAX_WRONG_AMONG_GUESSES = 0.10  # at most one guess in ten that goes ahead is the wrong person


@dataclass(frozen=True)
class Rule:
    """Go ahead only when the best guess is at least ``probability`` and leads the second by ``margin``."""

    probability: float
    margin: float

    def sure(self, top: np.ndarray, second: np.ndarray) -> np.ndarray:
        return (top >= self.probability) & (top - second >= self.margin)


@dataclass
class Ranked:
    """One split's probes: best and second probability, whether the best was right."""

    top: np.ndarray
    second: np.ndarray
    right: np.ndarray
    generic_top: np.ndarray
    generic_second: np.ndarray


def load_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def generic_questions(paths: list[Path]) -> list[str]:
    """The question line of each routing item (multiple-choice options left out)."""
    questions = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"].split("\n")[0].strip())
    return questions


def scene_split(rows: list[dict], seed: int, share: float = 0.2) -> tuple[list[dict], list[dict]]:
    scenes = sorted({r["scene_id"] for r in rows})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(scenes, size=max(1, int(len(scenes) * share)), replace=False).tolist())
    return [r for r in rows if r["scene_id"] not in held], [r for r in rows if r["scene_id"] in held]


def prototypes(encoders, rows: list[dict], per_person: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Each querier's prototype, as ``memory.prototypes`` makes it: the normalised mean dialogue vector."""
    rng = np.random.default_rng(seed)
    names = sorted({r["querier"] for r in rows})
    vectors = []
    for name in names:
        own = [r for r in rows if r["querier"] == name]
        if len(own) > per_person:
            own = [own[i] for i in sorted(rng.choice(len(own), per_person, replace=False))]
        dialogues = [Dialogue(r["query"], [t["text"] for t in r["context"]], r["response"]) for r in own]
        mean = encoders.dialogues(dialogues).mean(axis=0)
        vectors.append(mean / max(np.linalg.norm(mean), 1e-12))
    return names, np.stack(vectors)


def probe_vectors(encoders, texts: list[str]) -> np.ndarray:
    """A turn's first message as detection sees it: the message alone."""
    return encoders.dialogues([Dialogue(t, [], "") for t in texts])


def rank_in_households(names, protos, vectors, truth, size, temperature, rng):
    """(top, second, right) per probe, each ranked among ``size`` people (with ``truth`` when given)."""
    top, second, right = [], [], []
    for i, vector in enumerate(vectors):
        if truth is None:
            chosen = rng.choice(len(names), size=min(size, len(names)), replace=False)
        else:
            others = [j for j in range(len(names)) if j != truth[i]]
            chosen = np.array([truth[i], *rng.choice(others, size=min(size, len(names)) - 1, replace=False)])
        ranked = rank(chosen, protos[chosen], vector[None, :], temperature)
        top.append(ranked[0][1])
        second.append(ranked[1][1] if len(ranked) > 1 else 0.0)
        right.append(truth is not None and ranked[0][0] == truth[i])
    return top, second, right


def sample(items: list, limit: int, rng) -> list:
    if len(items) <= limit:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]


def rank_split(encoders, households, probe_rows, generic, settings: Settings, probes_each: int, seed) -> Ranked:
    """Every probe of one split, in every household size, pooled (``households``: each
    responder's querier names and prototypes)."""
    rng = np.random.default_rng(seed)
    pooled = {"top": [], "second": [], "right": [], "generic_top": [], "generic_second": []}
    generic_vectors = probe_vectors(encoders, generic)
    for responder, (names, protos) in sorted(households.items()):
        probes = sample([r for r in probe_rows if r["responder"] == responder and r["querier"] in names],
                        probes_each, rng)
        vectors = probe_vectors(encoders, [r["query"] for r in probes])
        truth = [names.index(r["querier"]) for r in probes]
        for size in HOUSEHOLDS:
            top, second, right = rank_in_households(names, protos, vectors, truth, size, settings.identify_temperature, rng)
            pooled["top"] += top
            pooled["second"] += second
            pooled["right"] += right
            g_top, g_second, _ = rank_in_households(names, protos, generic_vectors, None, size,
                                                    settings.identify_temperature, rng)
            pooled["generic_top"] += g_top
            pooled["generic_second"] += g_second
    return Ranked(**{k: np.array(v) for k, v in pooled.items()})


def score(ranked: Ranked, rule: Rule) -> dict:
    """Shares of personal messages that go ahead, of those that are wrong, of generic ones guessed."""
    ahead = rule.sure(ranked.top, ranked.second)
    wrong = ahead & ~ranked.right
    generic = rule.sure(ranked.generic_top, ranked.generic_second)
    return {
        "rule": asdict(rule),
        "messages": int(len(ahead)),
        "go_ahead": round(float(ahead.mean()), 4),
        "wrong_among_go_ahead": round(float(wrong.sum() / ahead.sum()), 4) if ahead.any() else None,
        "wrong_go_ahead_of_all": round(float(wrong.mean()), 4),
        "accuracy_if_always_guessing": round(float(ranked.right.mean()), 4),
        "generic_questions": int(len(generic)),
        "generic_guessed": round(float(generic.mean()), 4),
        "generic_asked": round(1 - float(generic.mean()), 4),
    }


def choose(ranked: Ranked) -> tuple[Rule, list[dict]]:
    """The rule that lets the most messages go ahead while generic questions ask (at most
    ``MAX_GENERIC_GUESSED`` guessed) and few guesses are wrong (``MAX_WRONG_AMONG_GUESSES``);
    when no rule lets anything through on those terms, the one with the fewest wrong go-aheads."""
    grid = [score(ranked, Rule(p, m)) for p in PROBABILITY_FLOORS for m in MARGIN_FLOORS]
    feasible = [s for s in grid if s["generic_guessed"] <= MAX_GENERIC_GUESSED and s["go_ahead"] > 0
                and s["wrong_among_go_ahead"] <= MAX_WRONG_AMONG_GUESSES]
    if feasible:
        best = max(feasible, key=lambda s: (s["go_ahead"], -s["rule"]["probability"]))
    else:
        best = min(grid, key=lambda s: (s["wrong_go_ahead_of_all"], s["generic_guessed"], -s["go_ahead"]))
    return Rule(**best["rule"]), grid


def memory_use(ranked: Ranked, rule: Rule, recall_floor: float | None) -> dict:
    """Wrong-person memory use: the share of detected turns that would recall another person's
    memories, with recall only at or above ``recall_floor`` (None: never before confirmation)."""
    ahead = rule.sure(ranked.top, ranked.second)
    recalled = np.zeros_like(ahead) if recall_floor is None else ahead & (ranked.top >= recall_floor)
    wrong = recalled & ~ranked.right
    return {"recall_floor": recall_floor, "turns_recalling": round(float(recalled.mean()), 4),
            "wrong_person_memory_use": round(float(wrong.mean()), 4),
            "wrong_among_recalling": round(float(wrong.sum() / recalled.sum()), 4) if recalled.any() else None}


def run(data: Path, generic_paths: list[Path], settings: Settings, seed: int = 0, per_person: int = 100,
        probes: int = 400, generic_limit: int = 1000, out: Path | None = None) -> dict:
    from profiles.encoding import Encoders

    started = time.perf_counter()
    encoders = Encoders(settings.embedder_path, settings.data_dir / "encoder")
    train = load_rows(Path(data) / "train.jsonl.gz")
    test = load_rows(Path(data) / "test.jsonl.gz")
    generic = sample(generic_questions(generic_paths), generic_limit, np.random.default_rng(seed))
    fit, held = scene_split(train, seed)
    households = {responder: prototypes(encoders, [r for r in fit if r["responder"] == responder], per_person, seed)
                  for responder in sorted({r["responder"] for r in fit})}
    calibrate = rank_split(encoders, households, held, generic[0::2], settings, probes, seed)
    report = rank_split(encoders, households, test, generic[1::2], settings, probes, seed)
    rule, grid = choose(calibrate)
    old, current = Rule(*BEFORE), Rule(settings.identify_threshold, settings.identify_margin)
    results = {
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "data": str(data), "generic": [str(p) for p in generic_paths], "seed": seed, "per_person": per_person,
        "probes_per_responder": probes, "generic_limit": generic_limit,
        "households": list(HOUSEHOLDS), "temperature": settings.identify_temperature,
        "encoder": encoders.version,
        "targets": {"max_generic_guessed": MAX_GENERIC_GUESSED, "max_wrong_among_go_ahead": MAX_WRONG_AMONG_GUESSES},
        "chosen": asdict(rule),
        "calibrate": {"old": score(calibrate, old), "new": score(calibrate, rule), "grid": grid},
        "report": {"old": score(report, old), "new": score(report, rule), "settings": score(report, current)},
        "memory_use_report": [memory_use(report, rule, floor) for floor in (None, 0.9, 0.99, 0.0)],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2))
    return results
