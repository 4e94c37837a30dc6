"""Every performance benchmark runs at a tiny size and prints the JSON its docs read.

No timing is asserted: figures belong to docs/performance.md, not to pass/fail.
"""

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "mqd"


@pytest.fixture(autouse=True)
def bench_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIDANT_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONFIDANT_BENCH_FRIENDS", str(FIXTURES))  # never ../shared: the tests are self-contained


def run(module, args, tmp_path) -> dict:
    out = tmp_path / f"{module.__name__.rsplit('.', 1)[-1]}.json"
    module.main([*args, "--out", str(out)])
    result = json.loads(out.read_text())
    assert {"machine", "command"} <= result.keys()
    assert result["command"].startswith(f"python -m {module.__name__} ")
    return result


def test_recall_bench(tmp_path):
    from bench import recall

    result = run(recall, ["--sizes", "300", "--people", "3", "--queries", "5", "--real", "100"], tmp_path)
    rows = result["results"]
    assert [r["people"] for r in rows] == [None, 3]
    for row in rows:
        assert {"stored", "kind", "latency_ms", "recall_at_10", "build"} <= row.keys()
        assert {"p50", "p95"} <= row["latency_ms"].keys() and 0.0 <= row["recall_at_10"] <= 1.0
    assert rows[1]["recall_at_10"] == 1.0  # exact below the threshold


def test_ingest_and_train_benches(tmp_path):
    from bench import ingest, train

    fixture = str(FIXTURES / "train.jsonl.gz")
    imported = run(ingest, ["--file", fixture, "--limit", "20"], tmp_path)
    assert imported["exchanges"] == 20 and imported["exchanges_per_s"] > 0
    assert {"embed", "store", "cluster"} <= imported["stages_s"].keys()
    assert {"query", "dialogue"} == imported["tokens_per_exchange"].keys()
    trained = run(train, ["--file", fixture, "--limit", "40"], tmp_path)
    assert trained["dialogues"] == 40 and trained["train"]["wall_s"] > 0 and "frozen_pass" in trained["stages_s"]


def test_turn_bench(tmp_path):
    from bench import turn

    result = run(turn, ["--pairs", "2", "--warmup", "0", "--exchanges", "12", "--no-train", "--max-tokens", "2"], tmp_path)
    assert result["pairs"] == 2 and result["same_prompt"] == 1.0
    assert {"ttft_ratio", "decode_ratio", "overhead_ms"} <= result.keys()
    assert {"identify", "recall", "route", "prompt", "store"} <= result["steps_ms"].keys()


def test_growth_bench_and_plot(tmp_path):
    from bench import growth

    result = run(growth, ["--sizes", "300", "--people", "3", "--turns", "2", "--real", "100"], tmp_path)
    assert [(r["stored"], r["people"]) for r in result["results"]] == [(300, 100), (300, 3)]
    assert {"memory_ids", "recall", "remember", "detect"} == result["results"][0]["per_turn_ms"].keys()
    growth.main(["--plot", str(tmp_path / "growth.json"), "--png", str(tmp_path / "growth.png")])
    assert (tmp_path / "growth.png").stat().st_size > 1000


def test_startup_bench(tmp_path):
    from bench import startup

    result = run(startup, ["--turns", "1", "--exchanges", "0", "--sample-every", "1"], tmp_path)
    assert result["ready_s"] > 0 and result["first_reply_s"] >= result["ready_s"]
    assert {"after_100", "end", "slope_mb_per_100_turns"} <= result["rss_mb"].keys()


def test_precision_bench(tmp_path):
    from bench import precision

    result = run(precision, ["--limit", "60"], tmp_path)
    assert result["setups"].keys() == {"float32", "mixed", "bf16"}
    assert all(0.0 <= s["balanced_accuracy"] <= 1.0 for s in result["setups"].values())
    assert 0.99 < result["cosine_bf16_vs_float32"]["general_p50"] <= 1.0001  # the same vectors, rounded


def test_native_heap_bench(tmp_path):
    from bench import native_heap

    for part in ("towers", "chat"):
        result = run(native_heap, ["--part", part, "--texts", "12", "--trim"], tmp_path)
        assert result["part"] == part and result["trim"] and [s[0] for s in result["rss_samples"]] == [1, 12]
