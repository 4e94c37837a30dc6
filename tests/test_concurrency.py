"""Concurrency (issue 6, point 2): 8 sessions at once through Gradio's API, each as a different
person, against a real ``confidant serve`` (real model, one reply generated at a time).

The short version of ``python -m tests.concurrency_bench`` (which measures p50/p95 time to first
token for ``make soak``); here nothing is asserted about speed.
"""

from __future__ import annotations

from tests.browser import running_server
from tests.concurrency_bench import check_store, run

SESSIONS = 8


def test_eight_sessions_at_once_are_queued_streamed_and_stored_each_under_its_own_person(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_server(data_dir, env_extra={"CONFIDANT_MAX_TOKENS": "8", "CONFIDANT_N_THREADS": "1"}) as url:
        report = run(url, SESSIONS, turns=1)
    check_store(report, data_dir)
    print(report.figures())
    assert len(report.turns) == SESSIONS
    # no errors, every stream its own reply from first chunk to status line, stored under its person
    assert report.problems == []
    assert all(len(t.snapshots) >= 2 for t in report.turns)  # streamed, not delivered in one piece
    # with one reply at a time the others wait, and Gradio tells each one its place in the queue
    waited = [max(t.ranks) for t in report.turns if t.ranks]
    assert len(waited) >= 2 and max(waited) >= 1
    assert max(max(t.queue_sizes) for t in report.turns if t.queue_sizes) >= 2
