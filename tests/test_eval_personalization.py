"""The personalization benchmark end to end on a tiny slice: every system runs, the JSON has its shape."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "mqd"
CONFIDANT = str(Path(sys.executable).parent / "confidant")
PROMPTED = ["zero_shot", "fewshot_generic", "retrieval_querier", "querier_aware", "no_clusters", "no_augmentation", "general_only"]
TUNED = ["echo_query", "constant_reply", "finetune", "tagged_ft", "querier_aware_ft"]
TRAINED = {"finetune", "tagged_ft", "querier_aware_ft"}


def write_slice(source: Path, target: Path, per_querier: int) -> None:
    """The first ``per_querier`` pairs of each questioner."""
    seen, kept = {}, []
    with gzip.open(source, "rt") as handle:
        for line in handle:
            querier = json.loads(line)["querier"]
            if seen.get(querier, 0) < per_querier:
                seen[querier] = seen.get(querier, 0) + 1
                kept.append(line)
    with gzip.open(target, "wt") as handle:
        handle.writelines(kept)


def test_eval_personalization_end_to_end(tmp_path):
    data = tmp_path / "mqd"
    data.mkdir()
    write_slice(FIXTURES / "train.jsonl.gz", data / "train.jsonl.gz", 30)
    write_slice(FIXTURES / "test.jsonl.gz", data / "test.jsonl.gz", 3)
    out = tmp_path / "out"
    result = subprocess.run(
        [CONFIDANT, "eval", "personalization", "--data", str(data), "--responder", "rachel_green",
         "--limit", "4", "--seed", "1", "--out", str(out), "--systems", *PROMPTED],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| querier_aware |" in result.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["responder"] == "rachel_green" and results["n"] == 4
    systems = {"zero_shot", "fewshot_generic", "retrieval_querier", "querier_aware", "no_clusters", "no_augmentation", "general_only"}
    assert set(results["systems"]) == systems
    for row in results["systems"].values():
        assert 0 <= row["rougeL"] <= 100 and row["rougeL_ci95"][0] <= row["rougeL"] <= row["rougeL_ci95"][1]
        assert row["bleu"] >= 0
    assert set(results["paired_delta_vs"]) == systems - {"querier_aware"}
    assert all(len(d["ci95"]) == 2 for d in results["paired_delta_vs"].values())
    speaker = results["speaker_id"]
    assert set(speaker["single"]) == {"general", "dual_tower", "chance"} and speaker["single"]["chance"] == 0.2
    assert set(speaker["session5"]) >= {"general", "dual_tower"}
    assert set(results["same_query"]) >= {"distinct_reply_rate", "intended_querier_acc", "chance"}
    assert set(results["timings_s"]) == {"import", "train", "generate"}
    assert (out / "rougeL.png").stat().st_size > 1000
    assert not (out / "work").exists()  # temporary stores are cleaned up


def test_eval_personalization_tuned_systems_end_to_end(tmp_path):
    """The trained systems, the trivial baselines and the honesty checks, at a tiny size: one
    llama.cpp thread, two training steps, so it stays a CI test (the figures mean nothing)."""
    data = tmp_path / "mqd"
    data.mkdir()
    write_slice(FIXTURES / "train.jsonl.gz", data / "train.jsonl.gz", 20)
    write_slice(FIXTURES / "test.jsonl.gz", data / "test.jsonl.gz", 3)
    out = tmp_path / "out"
    quick = {**os.environ, "CONFIDANT_N_THREADS": "1"}
    result = subprocess.run(
        [CONFIDANT, "eval", "personalization", "--data", str(data), "--responder", "rachel_green", "--limit", "3",
         "--seed", "1", "--out", str(out), "--tune-steps", "2", "--systems", "zero_shot", *TUNED],
        capture_output=True, text=True, timeout=3600, env=quick,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    systems = {"zero_shot", *TUNED}
    assert set(results["systems"]) == systems and results["n"] == 3
    assert "paired_delta_vs" not in results and "same_query" not in results  # querier_aware was not run
    assert set(results["paired_delta_vs_ft"]) == systems - {"querier_aware_ft"}
    assert results["examples"][0]["echo_query"] == results["examples"][0]["query"]
    assert len({e["constant_reply"] for e in results["examples"]}) == 1
    assert set(results["likelihood"]) == {"base", *TRAINED}
    assert set(results["likelihood_gain_of_querier_aware_ft"]) == {"base", "finetune", "tagged_ft"}
    for row in results["likelihood"].values():
        assert row["nll"] > 0 and row["ci95"][0] <= row["nll"] <= row["ci95"][1]
    for tag in results["querier_tag"], results["querier_tag_of_tagged_ft"]:
        assert abs(tag["delta"] - (tag["nll_wrong"] - tag["nll_right"])) < 1e-3 and tag["ci95"][0] <= tag["ci95"][1]
    assert set(results["shape"]) == systems | {"reference"}
    assert results["shape"]["constant_reply"]["top_reply_share"] == 1.0
    assert all(0 < row["top_reply_share"] <= 1 and row["mean_words"] >= 0 for row in results["shape"].values())
    assert set(results["tuning"]) == TRAINED
    assert all(row["steps"] == 2 and row["tokens_per_s"] > 0 for row in results["tuning"].values())
    assert results["decoding"]["temperature"] == 0.6 and results["decoding"]["seed"] == 1  # sampled as a live turn
    for row in results["tuning"].values():  # the length prior: the train replies' lengths every 5 %
        assert len(row["reply_length_quantiles"]) == 21 and row["reply_length_quantiles"] == sorted(row["reply_length_quantiles"])
    assert set(results["same_query_ft"]) >= {"distinct_reply_rate", "intended_querier_acc", "chance"}
    assert {"cpu", "cores", "isa"} <= results["machine"].keys()
    assert not (out / "work").exists()  # the adapters went with the temporary stores


def test_eval_personalization_refuses_an_unknown_system(tmp_path):
    result = subprocess.run(
        [CONFIDANT, "eval", "personalization", "--data", str(tmp_path), "--responder", "rachel_green",
         "--out", str(tmp_path / "out"), "--systems", "echo_query", "oracle"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 1 and "unknown system(s) oracle" in result.stderr
    assert not (tmp_path / "out").exists()


def test_eval_contrast_weight_chooses_on_held_out_train_dialogues(tmp_path):
    """Two weights, two steps each, on a train file alone (no test file exists to read)."""
    data = tmp_path / "mqd"
    data.mkdir()
    write_slice(FIXTURES / "train.jsonl.gz", data / "train.jsonl.gz", 20)
    out = tmp_path / "out"
    result = subprocess.run(
        [CONFIDANT, "eval", "contrast-weight", "--data", str(data), "--responder", "rachel_green", "--weights", "0", "0.5",
         "--validation", "12", "--tune-steps", "2", "--seed", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "CONFIDANT_N_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["weights"]) == {"0.0", "0.5"} and results["validation_pairs"] == 12
    nll = {w: row["nll"] for w, row in results["weights"].items()}
    assert str(results["chosen"]) == min(nll, key=nll.get)
    assert results["weights"][str(results["chosen"])]["minus_chosen"]["delta"] == 0
    for row in results["weights"].values():
        assert row["steps"] == 2 and row["nll"] > 0 and row["minus_chosen"]["delta"] >= 0
        assert set(row["querier_tag"]) == {"nll_right", "nll_wrong", "delta", "ci95"}
    assert results["tuning"]["steps"] == 2 and f"chosen: {results['chosen']}" in result.stdout
    assert not (out / "work").exists()
