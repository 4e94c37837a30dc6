"""The conversation evaluation: a scripted household played through the real engine.

Contract: ``run(script_path, settings, limit=None)`` reads a script (``assets/conversation_eval.json``
by default: people, and turns with ``person``, ``conversation`` label, ``text`` and optionally
``expects`` keywords), plays its turns in order through ``Assistant.turn`` over a fresh store in a
temporary data directory (real recall, the real local model, cloud off), and scores every reply
with ``conversation_scores``: which names it uses, its ROUGE-L / 4-gram overlap with the replies of
the memories recalled for it and with the previous reply, whether it reflects the fact the
question calls for, and whether it ends mid-sentence (and whether it hit ``max_tokens``). Returns
per-reply rows and aggregates (rates and means with 95% bootstrap intervals over replies);
``rescore(results)`` scores saved replies again; ``write(results, path)`` saves them as JSON and
``markdown_table`` prints the summary.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.errors import InputError
from assistant.evaluation import conversation_scores as score
from assistant.evaluation.metrics import bootstrap_ci
from assistant.files import written_atomically
from assistant.pipeline import Assistant, Finished, Started
from assistant.settings import Settings

DEFAULT_SCRIPT = Path(__file__).resolve().parents[2] / "assets" / "conversation_eval.json"
SHOWN_SETTINGS = ("max_tokens", "temperature", "top_p", "top_k", "repeat_penalty", "seed", "recall_k",
                  "recall_example_chars", "history_turns")


@dataclass(frozen=True)
class Turn:
    person: str
    conversation: str
    text: str
    expects: tuple[str, ...] = ()


def read_script(path: Path) -> tuple[list[str], list[Turn]]:
    """The household's names and the turns; a malformed script is an ``InputError`` naming the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        people = [str(p) for p in data["people"]]
        turns = [Turn(t["person"], t["conversation"], t["text"], tuple(t.get("expects", ()))) for t in data["turns"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"cannot read the conversation script {path}: {error}") from None
    strangers = sorted({t.person for t in turns} - set(people))
    if strangers or not turns:
        raise InputError(f"the conversation script {path} has no turns or turns by people not listed: {strangers}")
    return people, turns


def run(script_path: Path, settings: Settings, limit: int | None = None, progress: bool = False) -> dict:
    people, turns = read_script(script_path)
    turns = turns[:limit] if limit else turns
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        used = settings.model_copy(update={"data_dir": Path(tmp), "cloud_mode": "off"})
        rows = play(Assistant(used), people, turns, progress)
        shown = {name: getattr(used, name) for name in SHOWN_SETTINGS}
    return {"script": str(script_path), "n": len(rows), "people": people, "settings": shown,
            "seconds": round(time.perf_counter() - start, 1), "aggregate": aggregate(rows), "replies": rows}


def play(assistant: Assistant, people: list[str], turns: list[Turn], progress: bool) -> list[dict]:
    sessions: dict[str, int] = {}
    said: dict[str, str] = {}  # everything each person wrote so far: their own words may name things
    previous = ""
    rows = []
    try:
        for i, turn in enumerate(turns):
            said[turn.person] = f"{said.get(turn.person, '')} {turn.text}"
            started, exchange = None, None
            for event in assistant.turn(turn.text, turn.person, sessions.get(turn.conversation), mode="off",
                                        create_speaker=True):
                if isinstance(event, Started):
                    started = event
                elif isinstance(event, Finished):
                    exchange = event.exchange
            sessions[turn.conversation] = exchange.session_id
            recalled = [m.exchange.reply or "" for m in started.recollection.memories]
            rows.append(score_reply(i, turn, exchange.reply or "", recalled, previous, people,
                                    score.words_of(said[turn.person]), exchange.tokens or 0,
                                    assistant.settings.max_tokens))
            previous = exchange.reply or ""
            if progress:
                print(f"[{i + 1}/{len(turns)}] {turn.person}: {turn.text[:40]} → {previous[:60]!r}", flush=True)
    finally:
        assistant.store.close()
    return rows


def score_reply(i: int, turn: Turn, reply: str, recalled: list[str], previous: str, people: list[str],
                allowed: set[str], tokens: int, max_tokens: int) -> dict:
    names = score.names_in(reply, people, allowed)
    return {
        "i": i, "person": turn.person, "conversation": turn.conversation, "text": turn.text, "reply": reply,
        "names": names, "name": score.name_verdict(names, turn.person, people),
        "recalled": len(recalled), "recalled_replies": recalled,
        "rougeL_recalled": round(score.overlap(reply, recalled), 2),
        "rougeL_previous": round(score.overlap(reply, [previous]), 2),
        "copied_4grams": round(score.ngram_precision(reply, [*recalled, previous]), 3),
        "expects": list(turn.expects),
        "fact": score.reflects(reply, list(turn.expects)) if turn.expects else None,
        "cut": score.is_cut(reply), "hit_max_tokens": tokens >= max_tokens, "tokens": tokens,
    }


def rescore(results: dict) -> dict:
    """The same replies scored again with the current scorers (so runs made before a scorer was
    fixed compare with later ones); the replies themselves are not regenerated."""
    people, max_tokens = results["people"], results["settings"]["max_tokens"]
    said: dict[str, str] = {}
    previous, rows = "", []
    for row in results["replies"]:
        turn = Turn(row["person"], row["conversation"], row["text"], tuple(row["expects"]))
        said[turn.person] = f"{said.get(turn.person, '')} {turn.text}"
        rows.append(score_reply(row["i"], turn, row["reply"], row["recalled_replies"], previous, people,
                                score.words_of(said[turn.person]), row["tokens"], max_tokens))
        previous = row["reply"]
    return {**results, "aggregate": aggregate(rows), "replies": rows}


def aggregate(rows: list[dict]) -> dict:
    """Rates and means over replies, each with its 95% bootstrap interval."""
    def summary(values) -> dict:
        values = np.asarray(values, dtype=np.float64)
        return {"mean": round(float(values.mean()), 3) if len(values) else 0.0, "ci95": bootstrap_ci(values), "n": len(values)}

    with_memories = [r for r in rows if r["recalled"]]
    facts = [r["fact"] for r in rows if r["fact"] is not None]
    return {
        "wrong_name_rate": summary([r["name"] in ("other", "invented") for r in rows]),
        "other_person_name_rate": summary([r["name"] == "other" for r in rows]),
        "invented_name_rate": summary([r["name"] == "invented" for r in rows]),
        "right_name_rate": summary([r["name"] == "right" for r in rows]),
        "rougeL_recalled": summary([r["rougeL_recalled"] for r in with_memories]),
        "rougeL_previous": summary([r["rougeL_previous"] for r in rows[1:]]),
        "copied_4grams": summary([r["copied_4grams"] for r in rows]),
        "fact_rate": summary(facts),
        "cut_rate": summary([r["cut"] for r in rows]),
        "hit_max_tokens_rate": summary([r["hit_max_tokens"] for r in rows]),
        "mean_tokens": summary([r["tokens"] for r in rows]),
    }


METRICS = [("wrong_name_rate", "wrong or invented name (share of replies)"),
           ("other_person_name_rate", "another household member's name"),
           ("invented_name_rate", "invented name"),
           ("rougeL_recalled", "ROUGE-L with recalled replies (replies with memories)"),
           ("rougeL_previous", "ROUGE-L with the previous reply"),
           ("copied_4grams", "4-grams copied from recalled/previous replies (share)"),
           ("fact_rate", "stated fact reflected when asked for (share)"),
           ("cut_rate", "ends mid-sentence (share)"),
           ("hit_max_tokens_rate", "stopped at max_tokens (share)")]


def markdown_table(results: dict) -> str:
    agg = results["aggregate"]
    lines = ["| measure | mean | 95% interval | n |", "|---|---|---|---|"]
    for key, label in METRICS:
        m = agg[key]
        lines.append(f"| {label} | {m['mean']:.3f} | {m['ci95'][0]:.3f}–{m['ci95'][1]:.3f} | {m['n']} |")
    return "\n".join(lines)


def comparison_table(runs: dict[str, dict]) -> str:
    """One column per named run (e.g. before / after): mean [95% interval] of each measure."""
    names = list(runs)
    lines = ["| measure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in METRICS:
        cells = [f"{m['mean']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] (n={m['n']})"
                 for m in (runs[name]["aggregate"][key] for name in names)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_results(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the results {path}: {error}") from None


def write(results: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as temp:
        temp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
