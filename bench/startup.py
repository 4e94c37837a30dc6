"""Start-up and resident memory of ``confidant serve``, driven through its own web API.

Usage (from the project root)::

    nice -n 5 .venv/bin/python -m bench.startup [--turns 1000] [--max-tokens 8] [--exchanges 200]
        [--out docs/results/perf/startup.json]

1. A fresh data dir with ``--exchanges`` Friends pairs imported (``confidant import``, untimed).
2. ``confidant serve --data-dir DIR --port P`` is started; ``ready_s`` is the time from process
   start until ``GET /`` answers 200.
3. At once, a message goes through the UI's ``/send`` API (gradio_client): ``first_reply_s`` is
   from process start to its first reply text, ``first_reply_wait_s`` from sending it. A second
   message gives the steady-state wait; ``first_reply_delay_s`` = first wait − steady wait (what
   loading on first use costs the first user).
4. ``--turns`` more turns (``CONFIDANT_MAX_TOKENS`` short replies, a new conversation each), the
   server's resident memory (its process tree, psutil) sampled every ``--sample-every`` turns:
   ``rss_mb`` at 100 turns and at the end, and the slope of a line fitted from turn 100 on.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

from bench import common, friends

CONFIDANT = str(Path(sys.executable).parent / "confidant")
RESPONDER = "rachel_green"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data_dir: Path, exchanges: int, env: dict) -> None:
    if exchanges == 0:  # just one person, nothing to remember
        subprocess.run([CONFIDANT, "profiles", "add", "Reader", "--data-dir", str(data_dir)], env=env, check=True,
                       capture_output=True)
        return
    source = data_dir.parent / "slice.jsonl.gz"
    picked = [r for r in friends.rows("train") if r["responder"] == RESPONDER][:exchanges]
    with gzip.open(source, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in picked)
    subprocess.run([CONFIDANT, "import", str(source), "--format", "mqd", "--responder", RESPONDER,
                    "--data-dir", str(data_dir)], env=env, check=True, capture_output=True)


def wait_ready(url: str, process: subprocess.Popen, start: float, timeout: float = 120) -> float:
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"confidant serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def rss_mb(process: subprocess.Popen) -> float:
    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def connect(url: str):
    """A gradio client whose session has loaded the page (so the people list is filled in), and
    the names of ``/send``'s parameters (the UI decides which inputs its API takes)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(None, api_name="/on_show")
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/send"]
    return client, [p["parameter_name"] for p in api["parameters"]]


def send(client, names: list[str], message: str, person: int) -> tuple[float, float]:
    """(seconds to the first reply text, seconds to the end) of one turn through ``/send``."""
    values = {"message": message, "person": person, "mode": "off", "shown_before": [], "temporary": False}
    start = time.perf_counter()
    first = None
    job = client.submit(*[values.get(name) for name in names], api_name="/send")
    for outputs in job:
        chat = outputs[0] if isinstance(outputs, (list, tuple)) else None
        if first is None and chat and _reply_started(chat[-1]):
            first = time.perf_counter() - start
    job.result()
    end = time.perf_counter() - start
    return (first if first is not None else end), end


def _reply_started(message) -> bool:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return False
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content)
    return bool(text) and "…" not in text[:3]


def run(turns: int, max_tokens: int, exchanges: int, sample_every: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONFIDANT_MAX_TOKENS": str(max_tokens),
           "CONFIDANT_TEMPERATURE": "0", "CONFIDANT_CONFIG": "/nonexistent/confidant.toml"}
    messages = [r["query"] for r in friends.rows("test") if r["responder"] == RESPONDER]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        data_dir = Path(tmp) / "data"
        prepare(data_dir, exchanges, env)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        start = time.perf_counter()
        server = subprocess.Popen([CONFIDANT, "serve", "--data-dir", str(data_dir), "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            ready = wait_ready(url, server, start)
            client, names = connect(url)
            person = _person(data_dir)
            first_wait, _ = send(client, names, messages[0], person)
            first_reply = time.perf_counter() - start
            steady_wait, _ = send(client, names, messages[1], person)
            samples = [(2, rss_mb(server))]
            for i in range(turns):
                send(client, names, messages[(i + 2) % len(messages)], person)
                if (i + 3) % sample_every == 0:
                    samples.append((i + 3, rss_mb(server)))
            return summarise(ready, first_reply, first_wait, steady_wait, samples, turns, max_tokens, exchanges)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _person(data_dir: Path) -> int:
    from assistant.store.store import Store

    store = Store(data_dir / "confidant.db")
    try:
        return store.profiles()[0].id
    finally:
        store.close()


def summarise(ready, first_reply, first_wait, steady_wait, samples, turns, max_tokens, exchanges) -> dict:
    at = dict(samples)
    after = [(t, mb) for t, mb in samples if t >= 100]
    slope = float(np.polyfit(*zip(*after), 1)[0]) * 100 if len(after) >= 3 else None
    at_100 = at.get(100) or (after[0][1] if after else samples[-1][1])
    return {
        "turns": turns + 2, "max_tokens": max_tokens, "memory_exchanges": exchanges,
        "ready_s": round(ready, 2), "first_reply_s": round(first_reply, 2),
        "first_reply_wait_s": round(first_wait, 2), "steady_reply_wait_s": round(steady_wait, 2),
        "first_reply_delay_s": round(first_wait - steady_wait, 2),
        "rss_mb": {"after_2": round(samples[0][1], 1), "after_100": round(at_100, 1),
                   "end": round(samples[-1][1], 1), "max": round(max(mb for _, mb in samples), 1),
                   "slope_mb_per_100_turns": None if slope is None else round(slope, 2)},
        "rss_samples": [[t, round(mb, 1)] for t, mb in samples],
        "targets": {"ready_s_max": 10, "rss_mb_at_100_max": 1536,
                    "met": bool(ready <= 10 and at_100 <= 1536)},
    }


def in_process(turns: int, max_tokens: int, exchanges: int, sample_every: int) -> dict:
    """The same turns through ``Assistant.turn`` in this process, with the Python heap traced:
    if Python's own allocations stay flat while RSS grows, the growth is in native memory."""
    import tracemalloc

    from assistant.pipeline import Assistant
    from assistant.settings import load_settings

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    messages = [r["query"] for r in friends.rows("test") if r["responder"] == RESPONDER]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        data_dir = Path(tmp) / "data"
        prepare(data_dir, exchanges, env)
        assistant = Assistant(load_settings(data_dir=data_dir, max_tokens=max_tokens, temperature=0.0))
        person = assistant.store.profiles()[0].id
        tracemalloc.start()
        samples = []
        for i in range(turns):
            list(assistant.turn(messages[i % len(messages)], person))
            if (i + 1) % sample_every == 0:
                samples.append((i + 1, psutil.Process().memory_info().rss / 2**20, tracemalloc.get_traced_memory()[0] / 2**20))
        tracemalloc.stop()
    rss = [(t, mb) for t, mb, _ in samples]
    heap = [(t, mb) for t, _, mb in samples]
    return {"turns": turns, "max_tokens": max_tokens, "memory_exchanges": exchanges,
            "rss_mb": {"first": round(rss[0][1], 1), "end": round(rss[-1][1], 1), "slope_mb_per_100_turns": _slope(rss)},
            "python_heap_mb": {"first": round(heap[0][1], 1), "end": round(heap[-1][1], 1),
                               "slope_mb_per_100_turns": _slope(heap)},
            "samples": [[t, round(r, 1), round(h, 2)] for t, r, h in samples]}


def _slope(points) -> float | None:
    after = [(t, mb) for t, mb in points if t >= 100]
    return round(float(np.polyfit(*zip(*after), 1)[0]) * 100, 2) if len(after) >= 3 else None


def main(argv=None) -> dict:
    parser = common.parser(__doc__)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--exchanges", type=int, default=200, help="Friends pairs imported before start")
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--in-process", action="store_true",
                        help="instead: the turns through Assistant.turn in this process, Python heap traced")
    args = parser.parse_args(argv)
    measure = in_process if args.in_process else run
    result = measure(args.turns, args.max_tokens, args.exchanges, args.sample_every)
    versions = common.versions("gradio", "gradio_client")
    return common.finish({**result, "versions": versions}, args.out, __spec__.name, argv)


if __name__ == "__main__":
    main()
