"""Issue 15's targets over responders, from the ``results.json`` files of
``confidant eval personalization`` runs that include the trained systems.

Usage: ``python -m bench.finetune_summary out/p/*/results.json --out FILE.json`` prints the
per-responder tables (ROUGE-L of every system with the paired delta of ``querier_aware_ft``
against each baseline, the likelihood figures, reply shape, same-query accuracy, training) and
the targets with the measured figure, and writes them as JSON. A target over "most responders"
counts responders whose paired 95% interval is above 0.
"""

from __future__ import annotations

import numpy as np

from bench.personalization_summary import summarise_files

HEAD = "querier_aware_ft"
MUST_BEAT = ("zero_shot", "echo_query", "constant_reply", "fewshot_generic", "retrieval_querier", "finetune")


def row(results: dict) -> dict:
    deltas = results["paired_delta_vs_ft"]
    gains = results.get("likelihood_gain_of_querier_aware_ft", {})
    shape, reference = results["shape"][HEAD], results["shape"]["reference"]
    same, tuning = results["same_query_ft"], results["tuning"][HEAD]
    return {
        "responder": results["responder"], "n": results["n"],
        "rougeL": {name: values["rougeL"] for name, values in results["systems"].items()},
        "delta": {s: deltas[s] for s in MUST_BEAT if s in deltas},
        "nll": {s: v["nll"] for s, v in results["likelihood"].items()},
        "nll_gain": gains,
        "querier_tag": results["querier_tag"],
        "shape": {"top_reply_share": shape["top_reply_share"], "mean_words": shape["mean_words"],
                  "reference_words": reference["mean_words"]},
        "same_query": {"acc": same["intended_querier_acc"], "chance": same["chance"]},
        "training": {name: {**t, "epoch_minutes": round(t["train_s"] / 60 * epoch_share(t), 1)}
                     for name, t in results["tuning"].items()},
        "first_epoch_share": round(1 / epoch_share(tuning), 3),
    }


def epoch_share(tuning: dict, batch: int = 4) -> float:
    """How many times the trained steps one epoch of the train pairs is (batch 4)."""
    return tuning["train_pairs"] / max(tuning["steps"] * batch, 1)


def summary(rows: list[dict]) -> dict:
    mean = lambda values: float(np.mean(values))  # noqa: E731
    above = lambda ci: ci[0] > 0  # noqa: E731
    ratio = mean([r["rougeL"][HEAD] for r in rows]) / mean([r["rougeL"]["zero_shot"] for r in rows])
    return {
        "responders": [r["responder"] for r in rows],
        "rougeL_mean": {s: round(mean([r["rougeL"][s] for r in rows]), 3) for s in rows[0]["rougeL"]},
        "ft_over_zero_shot": round(ratio, 3),
        "wins_ci_above_0": {s: sum(above(r["delta"][s]["ci95"]) for r in rows if s in r["delta"]) for s in MUST_BEAT},
        "nll_wins_ci_above_0": {s: sum(above(r["nll_gain"][s]["ci95"]) for r in rows if s in r["nll_gain"])
                                for s in ("base", "finetune")},
        "querier_tag_ci_above_0": sum(above(r["querier_tag"]["ci95"]) for r in rows),
        "no_collapse": sum(r["shape"]["top_reply_share"] <= 0.05
                           and abs(r["shape"]["mean_words"] / r["shape"]["reference_words"] - 1) <= 0.3 for r in rows),
        "same_query_over_chance": round(mean([r["same_query"]["acc"] / r["same_query"]["chance"] for r in rows]), 3),
        "epoch_minutes": {r["responder"]: r["training"][HEAD]["epoch_minutes"] for r in rows},
    }


def markdown(rows: list[dict], totals: dict | None = None) -> str:
    systems = list(rows[0]["rougeL"])
    lines = ["| responder | n | " + " | ".join(systems) + " |", "|---|---:|" + "---:|" * len(systems)]
    lines += [f"| {r['responder']} | {r['n']} | " + " | ".join(f"{r['rougeL'][s]:.2f}" for s in systems) + " |" for r in rows]
    lines += ["", "| responder | " + " | ".join(f"Δ vs {s}" for s in MUST_BEAT) + " |", "|---|" + "---|" * len(MUST_BEAT)]
    for r in rows:
        cells = [f"{d['rougeL']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]" for d in (r["delta"][s] for s in MUST_BEAT)]
        lines.append(f"| {r['responder']} | " + " | ".join(cells) + " |")
    lines += ["", "| responder | NLL base | NLL finetune | NLL querier_aware_ft | gain vs base | gain vs finetune | "
              "tag: wrong − right | top reply share | words (real) | same-query acc (chance) |",
              "|---|---:|---:|---:|---|---|---|---:|---:|---:|"]
    for r in rows:
        gain = lambda s: (f"{r['nll_gain'][s]['delta']:+.3f} [{r['nll_gain'][s]['ci95'][0]:+.3f}, "  # noqa: E731
                          f"{r['nll_gain'][s]['ci95'][1]:+.3f}]") if s in r["nll_gain"] else "—"
        tag, shape, same = r["querier_tag"], r["shape"], r["same_query"]
        lines.append(f"| {r['responder']} | {r['nll']['base']:.3f} | {r['nll']['finetune']:.3f} | {r['nll'][HEAD]:.3f} | "
                     f"{gain('base')} | {gain('finetune')} | {tag['delta']:+.3f} [{tag['ci95'][0]:+.3f}, {tag['ci95'][1]:+.3f}] | "
                     f"{shape['top_reply_share']:.3f} | {shape['mean_words']:.1f} ({shape['reference_words']:.1f}) | "
                     f"{same['acc']:.3f} ({same['chance']:.3f}) |")
    lines += ["", "| responder | system | steps | train pairs | share of an epoch | train s | tokens/s | one epoch (min) | val NLL before → after |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        for name, t in r["training"].items():
            lines.append(f"| {r['responder']} | {name} | {t['steps']} | {t['train_pairs']} | {1 / epoch_share(t):.2f} | "
                         f"{t['train_s']:.0f} | {t['tokens_per_s']:.0f} | {t['epoch_minutes']:.1f} | "
                         f"{t['val_nll_before']:.3f} → {t['val_nll_after']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    summarise_files(__doc__, row, summary, markdown)

if __name__ == "__main__":
    main()
