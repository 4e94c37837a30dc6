"""One table over responders from the ``results.json`` files of ``confidant eval personalization``.

Usage: ``python -m bench.personalization_summary out/personalization/*/results.json --out FILE.json``
prints a markdown table per responder (ROUGE-L of every system, the paired delta of
querier_aware against each baseline with its 95% interval, speaker identification and same-query
figures) and the means over responders, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BASELINES = ("zero_shot", "fewshot_generic", "retrieval_querier")


def row(results: dict) -> dict:
    systems, sid, same = results["systems"], results["speaker_id"], results["same_query"]
    return {
        "responder": results["responder"], "n": results["n"],
        "rougeL": {name: values["rougeL"] for name, values in systems.items()},
        "delta_ci95": {b: results["paired_delta_vs"][b]["ci95"] for b in BASELINES},
        "speaker_id": {"single_general": sid["single"]["general"], "single_dual": sid["single"]["dual_tower"],
                       "session5_general": sid["session5"]["general"], "session5_dual": sid["session5"]["dual_tower"],
                       "chance": sid["single"]["chance"]},
        "same_query": {"intended_querier_acc": same["intended_querier_acc"], "chance": same["chance"],
                       "distinct_reply_rate": same["distinct_reply_rate"]},
        "timings_s": results["timings_s"],
    }


def summary(rows: list[dict]) -> dict:
    mean = lambda values: round(float(np.mean(values)), 4)  # noqa: E731
    qa = [r["rougeL"]["querier_aware"] for r in rows]
    return {
        "responders": len(rows),
        "rougeL_mean": {s: mean([r["rougeL"][s] for r in rows]) for s in rows[0]["rougeL"]},
        "querier_aware_over_zero_shot": mean(qa) / mean([r["rougeL"]["zero_shot"] for r in rows]),
        "significant_wins": {b: sum(r["delta_ci95"][b][0] > 0 for r in rows) for b in BASELINES},
        "speaker_id_ratio_single": mean([r["speaker_id"]["single_dual"] for r in rows])
        / mean([r["speaker_id"]["single_general"] for r in rows]),
        "speaker_id_ratio_session5": mean([r["speaker_id"]["session5_dual"] for r in rows])
        / mean([r["speaker_id"]["session5_general"] for r in rows]),
        "intended_querier_acc_over_chance": mean([r["same_query"]["intended_querier_acc"] / r["same_query"]["chance"]
                                                  for r in rows]),
    }


def markdown(rows: list[dict], totals: dict) -> str:
    systems = list(rows[0]["rougeL"])
    lines = ["| responder | n | " + " | ".join(systems) + " | QA−ZS 95% CI | QA−FG 95% CI | QA−RQ 95% CI |",
             "|---|---:|" + "---:|" * len(systems) + "---|---|---|"]
    for r in rows:
        cis = " | ".join(f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in (r["delta_ci95"][b] for b in BASELINES))
        lines.append(f"| {r['responder']} | {r['n']} | " + " | ".join(f"{r['rougeL'][s]:.2f}" for s in systems) + f" | {cis} |")
    lines.append("| **mean** | | " + " | ".join(f"**{totals['rougeL_mean'][s]:.2f}**" for s in systems) + " | | | |")
    lines += ["", "| responder | chance | general single | dual single | general s5 | dual s5 | same-query acc (chance) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s, q = r["speaker_id"], r["same_query"]
        lines.append(f"| {r['responder']} | {s['chance']:.3f} | {s['single_general']:.3f} | {s['single_dual']:.3f} | "
                     f"{s['session5_general']:.3f} | {s['session5_dual']:.3f} | {q['intended_querier_acc']:.3f} ({q['chance']:.3f}) |")
    return "\n".join(lines)


def summarise_files(doc: str, row, summary, markdown) -> None:
    """The command line of a summary: ``row`` per results file, ``summary`` over them, both printed
    (``markdown(rows, totals)``) and written to ``--out`` as JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [row(json.loads(path.read_text())) for path in sorted(args.results)]
    totals = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary(rows).items()}
    print(markdown(rows, totals))
    print(json.dumps(totals, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"responders": rows, "summary": totals}, indent=2))


def main() -> None:
    summarise_files(__doc__, row, summary, markdown)

if __name__ == "__main__":
    main()
