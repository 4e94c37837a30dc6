"""Concurrency (issue 6, point 2): sessions chatting at once through Gradio's API against a real
``confidant serve``, each as a different person.

Usage: ``python -m tests.concurrency_bench --sessions 8 --turns 3 --max-tokens 32 --out FILE``
(part of ``make soak``); ``tests/test_concurrency.py`` runs a short version.

Contract: ``run(url, data_dir, sessions, turns)`` returns a ``LoadReport``. Each session is its
own ``gradio_client.Client`` (its own Gradio session), adds its own person through
``/add_person`` and sends ``turns`` messages through ``/send`` (the message box's submit event),
all sessions starting together behind a barrier. While a request runs, its ``job.status()`` is
polled (queue rank and size as Gradio reports them) and its stream is recorded snapshot by
snapshot. The report says, per session: errors; whether every snapshot of the reply is the
sanitised form of a prefix of the reply stored for that session's person (so no text from
another stream, no restart) and the last one carries the status line (not cut short); the
queue ranks seen; time to first token as the client saw it (queue wait included) and as the
server stored it (``ttft_ms``: from the start of the turn). ``check_store`` then compares the
database with what each session sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.sanitize import model_text

ASKS = ["What should I cook tonight?", "Give me one tip for sleeping better.", "Suggest a name for a goldfish.",
        "How do I keep basil alive?", "What is a quick breakfast idea?", "Tell me a fun fact about owls.",
        "What is a good stretch after running?", "Any idea for a rainy afternoon?"]
POLL = 0.02  # s between looks at a running request


@dataclass
class TurnRecord:
    session: int
    person: str
    message: str
    ttft_client_s: float | None = None
    ttft_server_s: float | None = None  # the stored ttft_ms: from the start of the turn, queue excluded
    total_s: float | None = None
    ranks: list = field(default_factory=list)  # queue positions job.status() reported while waiting
    queue_sizes: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # the reply's text at each streamed update
    user_shown: str = ""
    error: str | None = None


@dataclass
class LoadReport:
    sessions: int
    turns: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def figures(self) -> dict:
        client = [t.ttft_client_s for t in self.turns if t.ttft_client_s is not None]
        waited = [max(t.ranks) for t in self.turns if t.ranks]
        return {"turns": len(self.turns), "errors": sum(t.error is not None for t in self.turns),
                "problems": len(self.problems),
                "ttft_client_s": percentiles(client),
                "total_s": percentiles([t.total_s for t in self.turns if t.total_s]),
                "turns_that_waited_in_queue": len(waited), "highest_queue_rank_seen": max(waited, default=None),
                "largest_queue_size_seen": max((max(t.queue_sizes) for t in self.turns if t.queue_sizes), default=None)}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731 (nearest rank)
    return {"n": len(values), "p50": round(statistics.median(ordered), 3), "p95": round(pick(0.95), 3),
            "max": round(ordered[-1], 3)}


def text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # Gradio 6 messages: [{"type": "text", "text": ...}, ...]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def session(url: str, number: int, turns: int, start: threading.Barrier, report: LoadReport) -> None:
    from gradio_client import Client

    person = f"Person {number + 1}"
    client = Client(url, verbose=False)
    update, *_ = client.predict(person, api_name="/add_person")
    person_id = update["value"]
    start.wait()
    shown: list = []
    for turn in range(turns):
        message = f"{ASKS[(number + turn) % len(ASKS)]} [session {number + 1}, turn {turn + 1}]"
        record = TurnRecord(number, person, message)
        report.turns.append(record)
        shown = follow(client, record, person_id, shown)


def follow(client, record: TurnRecord, person_id: int, shown: list) -> list:
    """Send one message and watch it: queue position, streamed snapshots, first token, the end."""
    sent = time.monotonic()
    job = client.submit(message=record.message, person=person_id, mode="off", shown_before=shown, api_name="/send")
    seen = 0
    while True:
        done = job.done()
        status = job.status()
        if status.code.name == "IN_QUEUE" and status.rank is not None:
            record.ranks.append(status.rank)
            if status.queue_size is not None:
                record.queue_sizes.append(status.queue_size)
        outputs = job.outputs()
        for output in outputs[seen:]:
            chat = output[0] if isinstance(output, (list, tuple)) else output
            if isinstance(chat, list) and chat and chat[-1].get("role") == "assistant":
                text = text_of(chat[-1])
                if text.strip("… \n") and record.ttft_client_s is None:
                    record.ttft_client_s = time.monotonic() - sent
                record.snapshots.append(text)
                asked = [m for m in chat if m.get("role") == "user"]
                record.user_shown = text_of(asked[-1]) if asked else ""
        seen = len(outputs)
        if done:
            break
        time.sleep(POLL)
    record.total_s = time.monotonic() - sent
    try:
        final = job.result(timeout=5)
    except Exception as error:  # noqa: BLE001 (any failure of the request is the finding)
        record.error = f"{type(error).__name__}: {error}"
        return shown
    if not job.status().success:
        record.error = "the request did not succeed"
    return final[0] if isinstance(final, (list, tuple)) else shown


def run(url: str, sessions: int, turns: int) -> LoadReport:
    report = LoadReport(sessions)
    start = threading.Barrier(sessions)
    threads = [threading.Thread(target=session, args=(url, n, turns, start, report)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=1800)
    return report


def check_store(report: LoadReport, data_dir: Path) -> None:
    """Every turn stored once, complete, under its session's person, and streamed as stored."""
    conn = sqlite3.connect(data_dir / "confidant.db")
    try:
        rows = conn.execute("""SELECT e.user_text, e.status, e.reply, e.ttft_ms, p.name, s.profile_id = e.profile_id
                               FROM exchanges e JOIN profiles p ON p.id = e.profile_id
                               JOIN sessions s ON s.id = e.session_id""").fetchall()
    finally:
        conn.close()
    stored = {}
    for text, status, reply, ttft_ms, name, own_session in rows:
        stored.setdefault(text, []).append((status, reply, ttft_ms, name, own_session))
    for turn in report.turns:
        copies = stored.get(turn.message, [])
        where = f"session {turn.session + 1} ({turn.message!r})"
        if turn.error:
            report.problems.append(f"{where}: {turn.error}")
        if len(copies) != 1:
            report.problems.append(f"{where}: stored {len(copies)} times")
            continue
        status, reply, ttft_ms, name, own_session = copies[0]
        turn.ttft_server_s = None if ttft_ms is None else ttft_ms / 1000
        if status != "complete" or name != turn.person or not own_session:
            report.problems.append(f"{where}: stored as {status} under {name} (own conversation: {bool(own_session)})")
        if turn.user_shown != model_text(turn.message):  # the page shows typed text made inert, as all text
            report.problems.append(f"{where}: the stream showed the message {turn.user_shown!r}")
        report.problems += [f"{where}: {p}" for p in stream_problems(turn.snapshots, reply or "")]


def stream_problems(snapshots: list[str], reply: str) -> list[str]:
    """What is wrong with a reply's stream, given the reply stored for it."""
    if not snapshots or "tok/s" not in snapshots[-1]:
        return ["the stream did not end with the status line (cut short)"]
    prefixes = {model_text(reply[:k]).strip() for k in range(len(reply) + 1)}
    streamed = [s for s in snapshots[:-1] if s.strip("… \n")]
    foreign = [s for s in streamed if s.strip() not in prefixes]
    problems = [f"streamed text that is not a prefix of its own reply: {foreign[0][:80]!r}"] if foreign else []
    if not snapshots[-1].startswith(model_text(reply).strip()):
        problems.append("the final message is not the stored reply")
    return problems


def server_ttft(report: LoadReport) -> dict:
    return percentiles([t.ttft_server_s for t in report.turns if t.ttft_server_s is not None])


def main(argv=None) -> int:
    from tests.browser import running_server

    parser = argparse.ArgumentParser(prog="python -m tests.concurrency_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3, help="messages each session sends, one after the other")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=1, help="the server's setting (replies generated at once)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import tempfile

    data_dir = Path(tempfile.mkdtemp(prefix="confidant-load-")) / "data"
    data_dir.mkdir(parents=True)
    env = {"CONFIDANT_MAX_TOKENS": str(args.max_tokens), "CONFIDANT_CONCURRENCY": str(args.concurrency),
           "CONFIDANT_CONFIG": os.devnull, "HF_HUB_OFFLINE": "1"}
    with running_server(data_dir, env_extra=env) as url:
        time.sleep(5)  # the server loads its models in the background: measure replies, not start-up
        load, started = os.getloadavg(), time.monotonic()
        report = run(url, args.sessions, args.turns)
        seconds = time.monotonic() - started
    check_store(report, data_dir)
    result = {"command": " ".join(["python -m tests.concurrency_bench", *(argv or sys.argv[1:])]),
              "sessions": args.sessions, "turns_per_session": args.turns, "max_tokens": args.max_tokens,
              "concurrency": args.concurrency, "load_average_before": [round(x, 2) for x in load],
              "seconds": round(seconds, 1),
              **report.figures(), "ttft_server_s": server_ttft(report), "problem_list": report.problems[:20],
              "queue_ranks_by_turn": [t.ranks and [min(t.ranks), max(t.ranks)] for t in report.turns]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
