"""Crash-safety harness (issue 6, point 1): SIGKILL ``confidant chat`` at random moments, check
the data directory after every kill, restart, and carry on.

Usage: ``python -m tests.crash_harness --kills 50 --turns 300 [--seed S] [--max-tokens N]
[--data-dir DIR] [--out FILE]`` (``make soak``); ``tests/test_crash.py`` runs a short version.

Contract:
- The real CLI (``python -m app.cli chat --as NAME --data-dir DIR``) is driven one line at a
  time; each life speaks as one of ``PEOPLE`` and ends with a SIGKILL at a random moment
  (start-up, recall, generation, the commits, or idle after a reply) until at least ``kills``
  kills and ``turns`` acknowledged turns; a last life ends by closing stdin.
- A turn is *acknowledged* once its status line (``[local · … tok/s]``) reached stderr: the user
  saw the reply. Lines are never resent, and every message is unique.
- After every kill, before the restart, ``check()`` asserts:
  1. ``PRAGMA integrity_check`` is ok and ``foreign_key_check`` is empty;
  2. every acknowledged turn is stored exactly once, ``complete``, under its speaker, with the
     reply that was printed; no message is stored twice;
  3. no torn exchange: a complete one has its reply, model and completion time, a pending one
     has none, and only complete exchanges have vectors (only they are memory);
  4. start-up (``Assistant(settings).memory.index``, what the next process runs first) serves
     from an index holding exactly the complete exchanges' ids;
  5. ``confidant doctor``'s checks (``assistant.doctor.diagnose``, in process) all pass, the
     saved FAISS file against the store's vectors included.
  Breaches of 1–3 and of 5 other than pending exchanges are ``violations``. Two outcomes that
  the engine does not repair at start-up yet are counted apart as ``known_issues``:
  ``pending_left`` (a kill mid-reply leaves the exchange ``pending``; doctor reports it) and
  ``complete_without_vectors`` (a kill between committing the reply and storing its vectors:
  complete, but missing from the index). ``tests/test_crash.py`` pins both as strict xfails.
  A third, ``leftover_temp_files``, would be a kill inside an atomic write (the old file stays
  whole; doctor reports the temporary file and ``--repair`` removes it).
- The real ``confidant doctor`` runs once at the end (``doctor_at_end``), after ``--repair``
  has settled the known issues, and must exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEOPLE = ["Ana", "Ben", "Chloe"]
ASKS = [
    "What should I cook tonight?", "Give me one tip for sleeping better.", "How do I fix a squeaky door?",
    "Suggest a name for a goldfish.", "What is a good stretch after running?", "How long should I boil an egg?",
    "Remind me why the sky is blue.", "What is a quick breakfast idea?", "Tell me a fun fact about owls.",
    "How can I keep basil alive?", "What is a polite way to decline an invitation?", "Any idea for a rainy day?",
]
STATUS = re.compile(r"^\[(local|cloud) · .*\]$")
TURN_TIMEOUT = 300.0  # s: a turn that takes longer is a hang, reported as a violation


@dataclass
class Turn:
    person: str
    message: str
    printed: str = ""
    acknowledged: bool = False


@dataclass
class SoakReport:
    kills: int = 0
    lives: int = 0
    turns_sent: int = 0
    turns_acknowledged: int = 0
    checks: int = 0
    integrity_ok: int = 0
    index_exact_after_startup: int = 0
    kill_phases: dict = field(default_factory=dict)  # where the kills landed, as observed
    known_issues: dict = field(default_factory=dict)  # ids of exchanges left so, by issue
    violations: list = field(default_factory=list)
    final_doctor_exit: int | None = None
    stored: dict = field(default_factory=dict)  # exchanges by status at the end
    seconds: float = 0.0


def child_env(max_tokens: int, history_turns: int) -> dict:
    """The CLI's environment: nothing from the developer's own config, nothing from a hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIDANT_")}
    # One llama.cpp thread: its threads spin while they wait, so on a shared 2-core machine one
    # thread replies several times faster than two. The soak is about crashes, not speed.
    env.update(HF_HUB_OFFLINE="1", CONFIDANT_MAX_TOKENS=str(max_tokens), CONFIDANT_N_THREADS="1",
               CONFIDANT_HISTORY_TURNS=str(history_turns), CONFIDANT_CONFIG=str(Path(os.devnull)))
    return env


class Chat:
    """One life of ``confidant chat``: lines in, stdout and stderr read without blocking."""

    def __init__(self, data_dir: Path, person: str, env: dict):
        command = [sys.executable, "-m", "app.cli", "chat", "--as", person, "--create", "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        self.selector = selectors.DefaultSelector()
        for pipe in (self.process.stdout, self.process.stderr):
            os.set_blocking(pipe.fileno(), False)
            self.selector.register(pipe, selectors.EVENT_READ)
        self.out, self.err = b"", b""

    def send(self, line: str) -> None:
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def pump(self, timeout: float) -> None:
        """Read whatever arrived within ``timeout``; stdout first, since the CLI writes it first."""
        ready = [key.fileobj for key, _ in self.selector.select(timeout)]
        ready.sort(key=lambda pipe: pipe is self.process.stderr)
        for pipe in ready:
            try:
                data = os.read(pipe.fileno(), 65536)
            except BlockingIOError:
                continue
            if data == b"":
                self.selector.unregister(pipe)
            elif data:
                if pipe is self.process.stdout:
                    self.out += data
                else:
                    self.err += data

    def status_after(self, offset: int) -> bool:
        return any(STATUS.match(line) for line in self.err[offset:].decode(errors="replace").splitlines())

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.drain()

    def close(self) -> int:
        self.process.stdin.close()
        deadline = time.monotonic() + TURN_TIMEOUT
        while self.selector.get_map() and time.monotonic() < deadline:
            self.pump(0.5)
        return self.process.wait(timeout=60)

    def drain(self) -> None:
        """Everything the process wrote before it died is still in the pipes."""
        while self.selector.get_map():
            self.pump(0.2)


class Soak:
    def __init__(self, data_dir: Path, kills: int, turns: int, seed: int = 0, max_tokens: int = 16,
                 history_turns: int = 8, doctor_at_end: bool = True, log=None):
        self.data_dir, self.want_kills, self.want_turns = Path(data_dir), kills, turns
        self.random = random.Random(seed)
        self.env = child_env(max_tokens, history_turns)
        self.report = SoakReport()
        self.turns: list[Turn] = []
        self.durations = {"first": [12.0], "later": [2.0]}  # priors, replaced by what is observed
        self.doctor_at_end = doctor_at_end
        self.log = log or (lambda text: None)

    def run(self) -> SoakReport:
        start = time.monotonic()
        while self.report.kills < self.want_kills or self.report.turns_acknowledged < self.want_turns:
            self.life(kill=self.report.kills < self.want_kills)
            self.check()
        if self.doctor_at_end:
            self.report.final_doctor_exit = final_doctor(self.data_dir, self.env)
        self.report.stored = dict(self.rows("SELECT status, COUNT(*) FROM exchanges GROUP BY status"))
        self.report.seconds = round(time.monotonic() - start, 1)
        return self.report

    def life(self, kill: bool) -> None:
        """Start the CLI, drive turns, and SIGKILL it during a random turn (or close it cleanly)."""
        self.report.lives += 1
        person = self.random.choice(PEOPLE)
        chat = Chat(self.data_dir, person, self.env)
        left_turns = max(1, self.want_turns - self.report.turns_acknowledged)
        left_kills = max(1, self.want_kills - self.report.kills)
        doomed = self.random.randrange(0, max(1, 2 * left_turns // left_kills)) if kill else None
        number = 0
        while True:
            if not kill and self.report.turns_acknowledged >= self.want_turns:
                if chat.close() != 0:
                    self.violation(f"life {self.report.lives}: the CLI exited with {chat.process.returncode}: "
                                   f"{chat.err.decode(errors='replace')[-300:]}")
                return
            kind = "first" if number == 0 else "later"
            kill_after = None
            if doomed is not None and number == doomed:  # somewhere inside this turn, or just after it
                kill_after = self.random.uniform(0, 1.2 * statistics.median(self.durations[kind]))
            if not self.turn(chat, person, kind, kill_after):
                return
            number += 1

    def turn(self, chat: Chat, person: str, kind: str, kill_after: float | None) -> bool:
        """One line; False once the process is gone (killed here, or died)."""
        self.report.turns_sent += 1
        turn = Turn(person, f"{self.random.choice(ASKS)} (turn {self.report.turns_sent})")
        self.turns.append(turn)
        out_at, err_at, sent = len(chat.out), len(chat.err), time.monotonic()
        chat.send(turn.message)
        while True:
            chat.pump(0.02)
            elapsed = time.monotonic() - sent
            if kill_after is not None and elapsed >= kill_after:
                phase = self.phase(chat, out_at, err_at, kind)
                chat.kill()
                self.acknowledge(chat, turn, out_at, err_at)
                self.report.kills += 1
                self.report.kill_phases[phase] = self.report.kill_phases.get(phase, 0) + 1
                self.log(f"kill {self.report.kills} after {elapsed:.2f} s ({phase}); "
                         f"{self.report.turns_acknowledged} turns acknowledged")
                return False
            if chat.status_after(err_at) and kill_after is None:
                self.durations[kind].append(elapsed)
                self.acknowledge(chat, turn, out_at, err_at)
                return True
            if chat.process.poll() is not None or elapsed > TURN_TIMEOUT:
                chat.kill() if chat.process.poll() is None else chat.drain()
                self.violation(f"turn {self.report.turns_sent}: the CLI died or hung: "
                               f"{chat.err[err_at:].decode(errors='replace')[-300:]}")
                return False

    def phase(self, chat: Chat, out_at: int, err_at: int, kind: str) -> str:
        if chat.status_after(err_at):
            return "after the reply (idle)"
        if len(chat.out) > out_at:
            return "while the reply streamed"
        return "during start-up or before the first token" if kind == "first" else "before the first token"

    def acknowledge(self, chat: Chat, turn: Turn, out_at: int, err_at: int) -> None:
        chat.pump(0)
        if chat.status_after(err_at):
            turn.acknowledged, turn.printed = True, chat.out[out_at:].decode(errors="replace")
            self.report.turns_acknowledged += 1

    def known(self, issue: str, rows: list[tuple]) -> None:
        ids = set(self.report.known_issues.get(issue, [])) | {i for (i,) in rows}
        self.report.known_issues[issue] = sorted(ids)

    def violation(self, text: str) -> None:
        self.log(f"VIOLATION {text}")
        self.report.violations.append(text)

    # Checks after every kill

    def rows(self, sql: str, params=()) -> list[tuple]:
        conn = sqlite3.connect(self.data_dir / "confidant.db")
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def check(self) -> None:
        if not (self.data_dir / "confidant.db").exists():
            return  # killed before the database was created: nothing to check yet
        self.report.checks += 1
        before = len(self.report.violations)
        integrity = self.rows("PRAGMA integrity_check")
        if integrity != [("ok",)] or self.rows("PRAGMA foreign_key_check"):
            return self.violation(f"check {self.report.checks}: integrity {integrity[:3]}")
        self.report.integrity_ok += 1
        self.check_acknowledged()
        self.check_torn()
        self.check_startup()
        if len(self.report.violations) > before:
            self.log(f"check {self.report.checks}: {len(self.report.violations) - before} new violations")

    def check_acknowledged(self) -> None:
        stored = {}
        for text, status, reply, name in self.rows("SELECT e.user_text, e.status, e.reply, p.name FROM exchanges e "
                                                   "JOIN profiles p ON p.id = e.profile_id"):
            stored.setdefault(text, []).append((status, reply, name))
        for text, copies in stored.items():
            if len(copies) > 1:
                self.violation(f"{text!r} is stored {len(copies)} times")
        for turn in (t for t in self.turns if t.acknowledged):
            copies = stored.get(turn.message, [])
            if not copies:
                self.violation(f"acknowledged turn lost: {turn.message!r}")
            elif copies[0][0] != "complete" or copies[0][2] != turn.person:
                self.violation(f"acknowledged turn {turn.message!r} stored as {copies[0][0]} under {copies[0][2]}")
            elif (copies[0][1] or "") != turn.printed.strip():
                self.violation(f"acknowledged turn {turn.message!r}: printed {turn.printed.strip()!r}, "
                               f"stored {copies[0][1]!r}")

    def check_torn(self) -> None:
        torn = self.rows(
            """SELECT id, status FROM exchanges WHERE status NOT IN ('pending', 'complete', 'failed')
               OR (status = 'complete' AND (reply IS NULL OR model IS NULL OR completed_at IS NULL OR tokens IS NULL))
               OR (status = 'pending' AND (reply IS NOT NULL OR completed_at IS NOT NULL))""")
        if torn:
            self.violation(f"torn exchanges: {torn[:5]}")
        stray = self.rows("SELECT v.exchange_id FROM vectors v JOIN exchanges e ON e.id = v.exchange_id "
                          "WHERE e.status != 'complete'")
        if stray:
            self.violation(f"vectors of exchanges that are not complete (half-written memory): {stray[:5]}")

    def check_startup(self) -> None:
        """Run what start-up runs (``Assistant`` and its ``memory.index``), compare the index it
        serves from with the store, and run doctor's checks (the saved file's included) as
        ``confidant doctor`` would."""
        from assistant.doctor import diagnose
        from assistant.pipeline import Assistant
        from assistant.settings import load_settings

        settings = load_settings(data_dir=self.data_dir)
        assistant = Assistant(settings)  # what `confidant chat` and `serve` build first
        try:
            held = assistant.memory.index.ids()
        finally:
            assistant.store.close()
        self.known("pending_left", self.rows("SELECT id FROM exchanges WHERE status = 'pending'"))
        complete = {i for (i,) in self.rows("SELECT id FROM exchanges WHERE status = 'complete'")}
        unindexed = {i for (i,) in self.rows(
            "SELECT e.id FROM exchanges e LEFT JOIN vectors v ON v.exchange_id = e.id "
            "WHERE e.status = 'complete' AND v.exchange_id IS NULL")}
        self.known("complete_without_vectors", [(i,) for i in unindexed])
        if held == complete:
            self.report.index_exact_after_startup += 1
        elif held != complete - unindexed:  # anything beyond the known issue is a violation
            self.violation(f"after start-up the index holds {len(held)} ids, the store {len(complete)} complete "
                           f"(extra {sorted(held - complete)[:5]}, missing {sorted(complete - held)[:5]})")
        known = {"pending exchanges", "exchange vectors"}
        for finding in diagnose(settings):
            if finding.name == "leftover files" and not finding.ok:  # a kill inside an atomic write
                self.known("leftover_temp_files", [(finding.detail,)])
            elif not finding.ok and finding.name not in known:
                self.violation(f"doctor: {finding.name}: {finding.detail}")


def final_doctor(data_dir: Path, env: dict) -> int:
    """``confidant doctor --repair`` settles what start-up leaves; then plain doctor must pass."""
    command = [sys.executable, "-m", "app.cli", "doctor", "--data-dir", str(data_dir)]
    subprocess.run([*command, "--repair"], cwd=REPO, env=env, capture_output=True, timeout=600)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=600).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash_harness", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--history-turns", type=int, default=8, help="earlier exchanges in each prompt")
    parser.add_argument("--data-dir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    import tempfile

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="confidant-soak-")) / "data"
    print(f"soak: data in {data_dir}", flush=True)
    report = Soak(data_dir, args.kills, args.turns, args.seed, args.max_tokens, args.history_turns,
                  log=lambda text: print(text, flush=True)).run()
    result = {"command": f"python -m tests.crash_harness --kills {args.kills} --turns {args.turns} --seed {args.seed} "
                         f"--max-tokens {args.max_tokens} --history-turns {args.history_turns}", **asdict(report)}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if not report.violations and report.final_doctor_exit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
