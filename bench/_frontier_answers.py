"""The frontier's arithmetic: seeds → mean ± sd and CI per point, and the issue's questions (a), (b), (c).

Kept apart from ``bench/frontier.py`` (which trains) so the answers are a pure function of the
measured points: the questions are answered from whatever points a run produced, and say so when a
point they need was not measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BUDGETS = (32_000, 64_000, 225_000)  # the (b): ≤ 32 kB, ≤ 64 kB, ≤ 225 kB of file
KEEP_FRACTION = 0.95  # the (a): the large hyper model keeps ≥ 95% of its stored twin's macro-F1
LOW_RANK = "low_rank"  # hyper files of the low_rank strategy: factors, no generator network (a baseline)
KINDS = ("stored", "hyper", "lut", LOW_RANK)
# Two-sided 95% Student t quantiles for n - 1 degrees of freedom (n seeds), n = 2..10.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def seed_stats(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample sd and the 95% t-interval of the mean over seeds (no interval from one seed)."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], float)
    if not len(v):
        return {"mean": None, "sd": None, "ci": None, "n": 0}
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "sd": None, "ci": None, "n": 1}
    sd = float(v.std(ddof=1))
    half = _T95.get(len(v) - 1, 1.96) * sd / math.sqrt(len(v))
    return {"mean": mean, "sd": sd, "ci": [mean - half, mean + half], "n": int(len(v))}


def aggregate(runs: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per point from per-seed runs: metrics as :func:`seed_stats`, sizes as the seeds' maximum.

    Sizes barely move between seeds (quantization parameters and alignment), so the largest is reported.
    """
    by_point: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_point.setdefault(run["point"], []).append(run)
    rows = []
    for seeds in by_point.values():
        first = seeds[0]
        row = {k: first[k] for k in ("point", "kind", "label", "twin")}
        for key in ("file_bytes", "sram_boot_bytes", "sram_stream_bytes", "macs", "synthesis_macs"):
            row[key] = max(int(s[key]) for s in seeds)
        row["seeds"] = sorted(int(s["seed"]) for s in seeds)
        row["seconds"] = round(sum(float(s["seconds"]) for s in seeds), 1)
        for metric in metrics:
            row[metric] = seed_stats([s["metrics"][metric] for s in seeds])
            row[f"{metric}_boot_ci"] = first["ci"].get(metric)  # the first seed's clustered bootstrap CI
        row["best_epochs"] = [e for s in seeds for e in s.get("best_epochs", []) if e is not None]
        row["hit_max"] = [bool(h) for s in seeds for h in s.get("hit_max", [])]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["file_bytes"], r["point"]))


def _mean(row: dict[str, Any], metric: str) -> float | None:
    return row[metric]["mean"]


def _best(rows: Sequence[dict[str, Any]], kind: str, budget: int, metric: str) -> dict[str, Any] | None:
    pool = [r for r in rows if r["kind"] == kind and r["file_bytes"] <= budget and _mean(r, metric) is not None]
    return max(pool, key=lambda r: _mean(r, metric)) if pool else None


def answer_a(rows: Sequence[dict[str, Any]], metric: str = "macro_f1") -> dict[str, Any]:
    """(a): the large hyper model against its stored twin (points ``hyper_large`` and ``twin_large``)."""
    by_name = {r["point"]: r for r in rows}
    hyper, twin = by_name.get("hyper_large"), by_name.get("twin_large")
    if hyper is None or twin is None:
        missing = [n for n, r in (("hyper_large", hyper), ("twin_large", twin)) if r is None]
        return {"answer": None, "text": f"(a) not measured: this run has no {' and no '.join(missing)} point"}
    h, s = _mean(hyper, metric), _mean(twin, metric)
    ratio = twin["file_bytes"] / hyper["file_bytes"]
    kept = h / s if s else float("nan")
    yes = bool(kept >= KEEP_FRACTION)
    n = min(hyper[metric]["n"], twin[metric]["n"])
    text = (f"(a) {'YES' if yes else 'NO'}: the large hyper model ({hyper['file_bytes']:,} B) is {ratio:.2f}x smaller "
            f"than its stored twin ({twin['file_bytes']:,} B) and keeps {100 * kept:.1f}% of its {metric} "
            f"({h:.3f} vs {s:.3f}, mean of {n} seed(s)); the bar is {100 * KEEP_FRACTION:.0f}%"
            + ("" if yes else f", missed by {100 * (KEEP_FRACTION - kept):.1f} points"))
    return {"answer": yes, "kept": kept, "file_ratio": ratio, "seeds": n, "text": text}


Paired = Callable[[str, str], "dict[str, Any] | None"]


def answer_b(rows: Sequence[dict[str, Any]], metric: str = "macro_f1",
             budgets: Sequence[int] = BUDGETS, paired: Paired | None = None) -> list[dict[str, Any]]:
    """(b): per file budget, the best hyper point against the best stored CNN and the best clustered+LUT.

    ``paired(a, b)``, when given, scores the two points on the same examples (the frontier's
    ``paired_gap``): the answer then carries the paired difference and its 95% CI.
    """
    out = []
    for budget in budgets:
        hyper = _best(rows, "hyper", budget, metric)
        entry: dict[str, Any] = {"budget": budget, "hyper": hyper and hyper["point"]}
        parts = []
        for kind, label in (("stored", "stored CNN"), ("lut", "clustered+LUT"), (LOW_RANK, "low_rank baseline")):
            peer = _best(rows, kind, budget, metric)
            entry[kind] = peer and peer["point"]
            if hyper is None or peer is None:
                who = "hyper" if hyper is None else label
                entry[f"beats_{kind}"] = None
                parts.append(f"vs {label}: not answerable (no {who} point within {budget:,} B)")
                continue
            gap = _mean(hyper, metric) - _mean(peer, metric)
            entry[f"beats_{kind}"] = bool(gap >= 0)
            entry[f"gap_{kind}"] = gap
            pair = paired(hyper["point"], peer["point"]) if paired else None
            entry[f"paired_{kind}"] = pair
            ci = (f", paired {pair['difference']:+.3f} [{pair['ci'][0]:+.3f}, {pair['ci'][1]:+.3f}]"
                  if pair else "")
            parts.append(f"vs {label} {peer['point']} ({peer['file_bytes']:,} B, {_mean(peer, metric):.3f}): "
                         f"{'YES' if gap >= 0 else 'NO'}, {gap:+.3f}{ci}")
        head = (f"best hyper {hyper['point']} ({hyper['file_bytes']:,} B, {_mean(hyper, metric):.3f})"
                if hyper else "no hyper point")
        entry["text"] = f"(b) <= {budget // 1000} kB: {head}; " + "; ".join(parts)
        out.append(entry)
    return out


def answer_c(rows: Sequence[dict[str, Any]], metric: str = "macro_f1") -> list[dict[str, Any]]:
    """(c): for each clustered+LUT point, the smallest hyper point scoring at least as well, and the byte ratio."""
    out = []
    hypers = sorted((r for r in rows if r["kind"] == "hyper" and _mean(r, metric) is not None),
                    key=lambda r: r["file_bytes"])
    for lut in (r for r in rows if r["kind"] == "lut" and _mean(r, metric) is not None):
        target = _mean(lut, metric)
        match = next((h for h in hypers if _mean(h, metric) >= target), None)
        if match is None:
            best = max(hypers, key=lambda h: _mean(h, metric)) if hypers else None
            gap = (f"the best hyper point, {best['point']}, scores {_mean(best, metric):.3f} "
                   f"({_mean(best, metric) - target:+.3f})") if best else "no hyper point was measured"
            out.append({"lut": lut["point"], "ratio": None,
                        "text": f"(c) {lut['point']} ({lut['file_bytes']:,} B, {target:.3f}): no hyper point reaches "
                                f"its {metric}; {gap}"})
            continue
        ratio = lut["file_bytes"] / match["file_bytes"]
        out.append({"lut": lut["point"], "hyper": match["point"], "ratio": ratio,
                    "text": f"(c) {lut['point']} ({lut['file_bytes']:,} B, {target:.3f}) vs {match['point']} "
                            f"({match['file_bytes']:,} B, {_mean(match, metric):.3f}): "
                            + (f"hyper is {ratio:.2f}x smaller" if ratio >= 1 else
                               f"hyper is {1 / ratio:.2f}x LARGER (LUT is smaller at this {metric})")})
    if not out:
        out.append({"lut": None, "ratio": None, "text": "(c) not measured: this run has no clustered+LUT point"})
    return out


def answers(rows: Sequence[dict[str, Any]], metric: str = "macro_f1", paired: Paired | None = None) -> dict[str, Any]:
    """The issue's three questions from aggregated points, each with its one-line text."""
    return {"a": answer_a(rows, metric), "b": answer_b(rows, metric, paired=paired), "c": answer_c(rows, metric)}


def answer_lines(result: dict[str, Any]) -> list[str]:
    """The answers as printable lines, (a) then (b) per budget then (c) per LUT point."""
    return [result["a"]["text"], *(b["text"] for b in result["b"]), *(c["text"] for c in result["c"])]


def _fmt(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "n/a"
    sd = "" if stats["sd"] is None else f" ± {stats['sd']:.3f}"
    ci = "" if stats["ci"] is None else f" [{stats['ci'][0]:.3f}, {stats['ci'][1]:.3f}]"
    return f"{stats['mean']:.3f}{sd}{ci}"


def _m4_cell(row: dict[str, Any], mode: str) -> str:
    """Measured Cortex-M4 arena of one mode (``frontier --fit``), with the Nano 33 BLE verdict."""
    m4 = row.get("m4")
    if m4 is None:
        return "not run"
    if "error" in m4:
        return f"not runnable: {m4['why']}" if "why" in m4 else "runner failed"
    entry = m4.get(mode) or m4.get("folded")
    if entry is None:
        return "n/a"
    return f"{entry['sram_bytes']:,}" + ("" if entry["fits_nano"] else " (over Nano)")


def markdown_table(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> str:
    """The points as a Markdown table, smallest file first.

    SRAM boot/stream: the TFLM Python interpreter's arena plus the generated kernels (an estimate);
    M4 columns, when ``--fit`` ran: the arena measured on the Cortex-M4 through the op.
    """
    fit = any("m4" in r for r in rows)
    head = ["point", "kind", "file bytes", "SRAM boot", "SRAM stream",
            *(("M4 arena boot (measured)", "M4 arena stream (measured)") if fit else ()),
            "MACs/inference", "synthesis MACs", "seeds run (ids)",
            *(f"{m} mean ± sd [95% CI over seeds]" for m in metrics),
            f"{metrics[0]} bootstrap CI (first seed) ± half-width", "best epoch (median; max hit)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        boot = r[f"{metrics[0]}_boot_ci"]
        boot_text = ("n/a" if not boot or None in boot else
                     f"[{boot[0]:.3f}, {boot[1]:.3f}] ± {(boot[1] - boot[0]) / 2:.3f}")
        epochs = r.get("best_epochs") or []
        hits = r.get("hit_max") or []
        epoch_text = (f"{float(np.median(epochs)):g} ({sum(hits)}/{len(hits)})" if epochs else "n/a")
        cells = [r["point"], r["kind"], f"{r['file_bytes']:,}", f"{r['sram_boot_bytes']:,}",
                 f"{r['sram_stream_bytes']:,}", *((_m4_cell(r, "boot"), _m4_cell(r, "stream")) if fit else ()),
                 f"{r['macs']:,}", f"{r['synthesis_macs']:,}",
                 ",".join(map(str, r["seeds"])), *(_fmt(r[m]) for m in metrics), boot_text, epoch_text]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
