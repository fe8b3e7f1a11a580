"""bench/frontier.py: the quick run on real MIT-BIH records, and the answers to the issue's questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import _frontier_answers as fa
from bench import frontier

MITDB = Path(frontier.DATA) / "mitdb"


def _row(point: str, kind: str, file_bytes: int, f1s: list[float]) -> dict:
    return {"point": point, "kind": kind, "file_bytes": file_bytes, "macro_f1": fa.seed_stats(f1s)}


@pytest.mark.skipif(not (MITDB / "101.hea").exists(), reason="the shared MIT-BIH copy is not here")
def test_quick_run_writes_every_point_with_true_file_bytes(tmp_path):
    summary = frontier.main(["--task=mitdb_aami", "--quick", f"--out={tmp_path}"])
    expected = set(frontier.QUICK_POINTS["mitdb_aami"])
    on_disk = json.loads((tmp_path / "frontier.json").read_text())
    assert {r["point"] for r in on_disk["rows"]} == expected
    assert {r["kind"] for r in on_disk["rows"]} == {"stored", "hyper", "lut"}
    for run in on_disk["runs"]:  # pooled over the quick run's cv:3 folds: every record tested once
        assert run["folds"] == 3 and run["n_groups"] == len(frontier.QUICK_RECORDS)
        assert run["file_bytes"] == Path(run["file"]).stat().st_size, run["point"]
        assert run["best_epochs"] == [1, 1, 1] and all(run["hit_max"])  # one epoch allowed: the maximum is hit
        assert run["sram_boot_bytes"] >= run["tflm_arena_bytes"] > 0
        assert 0.0 <= run["metrics"]["macro_f1"] <= 1.0
    hyper = next(r for r in on_disk["runs"] if r["kind"] == "hyper")
    assert hyper["synthesis_macs"] > 0 and hyper["sram_boot_bytes"] > hyper["sram_stream_bytes"]
    stored = next(r for r in on_disk["runs"] if r["kind"] == "stored")
    assert stored["synthesis_macs"] == 0 and stored["sram_boot_bytes"] == stored["tflm_arena_bytes"]
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- begin frontier_mitdb_aami -->" in text
    for row in summary["rows"]:
        assert f"| {row['point']} | {row['kind']} | {row['file_bytes']:,} |" in text
    assert (tmp_path / "frontier_mitdb_aami.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(c) lut16_stored_32k" in text

    # A run stopped after training resumes to the same numbers: one fold's float model, file and scores, and the
    # pooled result, are deleted; the float model comes back from the fold's checkpoints, the rest is recomputed.
    fold = tmp_path / "hyper_32k" / "seed0" / "fold1"
    for name in ("model.keras", "model.tflite", "scores.npz", "result.json"):
        (fold / name).unlink()
    (tmp_path / "hyper_32k" / "seed0" / "result.json").unlink()
    frontier.main(["--task=mitdb_aami", "--quick", f"--out={tmp_path}"])
    resumed = json.loads((tmp_path / "frontier.json").read_text())["runs"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in on_disk["runs"]]

    # --collect --fit: the same points, SRAM measured on the Cortex-M4 through the op (QEMU), cached per point.
    frontier.main(["--task=mitdb_aami", "--quick", "--collect", "--fit", f"--out={tmp_path}"])
    m4 = {p: json.loads((tmp_path / p / "seed0" / "fold0" / "fit.json").read_text()) for p in expected}
    hyper_m4, stored_m4 = m4["hyper_32k"], m4["stored_32k"]
    assert hyper_m4["boot"]["sram_bytes"] > hyper_m4["stream"]["sram_bytes"] > 0
    assert hyper_m4["boot"]["inference_instructions"] < hyper_m4["stream"]["inference_instructions"]
    assert stored_m4["folded"]["sram_bytes"] > 0 and stored_m4["folded"]["fits_nano"]
    lut_m4 = m4["lut16_stored_32k"]["folded"]  # the runner registers DECODE: LUT files are measured too
    assert lut_m4["sram_bytes"] > 0 and lut_m4["inference_instructions"] > 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert f"| {hyper_m4['boot']['sram_bytes']:,} | {hyper_m4['stream']['sram_bytes']:,} |" in text


def test_unknown_point_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown point 'stored_7k' for --task=mitdb_aami"):
        frontier.resolve_points("mitdb_aami", ["stored_7k"])


def test_points_come_after_what_they_need():
    names = [p.name for p in frontier.resolve_points("mitdb_aami", ["lut8_stored_225k", "hyper_64k_kd"])]
    assert names == ["stored_225k", "lut8_stored_225k", "twin_64k", "hyper_64k_kd"]


def test_clustered_points_with_cluster_preserving_qat_are_named_with_q():
    names = ["lut8_stored_64k", "lut8q_stored_64k", "hyperlut16q_hyper_64k"]
    points = {p.name: p for p in frontier.resolve_points("mitdb_aami", names)}
    plain, cqat, hyper_cqat = (points[name] for name in names)
    assert (plain.name, plain.clusters, plain.cluster_qat) == ("lut8_stored_64k", 8, False)
    assert (cqat.name, cqat.clusters, cqat.cluster_qat, cqat.base) == ("lut8q_stored_64k", 8, True, "stored_64k")
    assert (hyper_cqat.kind, hyper_cqat.clusters, hyper_cqat.cluster_qat) == ("hyperlut", 16, True)
    with pytest.raises(ValueError, match="unknown point 'lut8qq_stored_64k'"):
        frontier.resolve_points("mitdb_aami", ["lut8qq_stored_64k"])


def test_seed_stats_mean_sd_and_t_interval():
    stats = fa.seed_stats([0.5, 0.7])
    assert stats["mean"] == pytest.approx(0.6) and stats["sd"] == pytest.approx(0.1414214, rel=1e-6)
    assert stats["ci"] == pytest.approx([0.6 - 12.706 * 0.1, 0.6 + 12.706 * 0.1])
    assert fa.seed_stats([0.4])["ci"] is None


def test_answers_with_gaps():
    rows = [
        _row("twin_large", "stored", 400_000, [0.80, 0.82]),
        _row("hyper_large", "hyper", 100_000, [0.74, 0.76]),
        _row("stored_32k", "stored", 30_000, [0.70]),
        _row("hyper_32k", "hyper", 31_000, [0.65]),
        _row("lut16_stored_64k", "lut", 40_000, [0.72]),
        _row("hyper_64k", "hyper", 60_000, [0.74]),
        _row("hyper_64k_low_rank_r8", fa.LOW_RANK, 59_000, [0.76]),
    ]
    result = fa.answers(rows)
    assert result["a"]["answer"] is False
    assert result["a"]["kept"] == pytest.approx(0.75 / 0.81)
    assert "missed by 2.4 points" in result["a"]["text"]
    b32, b64, b225 = result["b"]
    assert (b32["hyper"], b32["stored"], b32["beats_stored"], b32["beats_lut"]) == ("hyper_32k", "stored_32k",
                                                                                  False, None)
    assert b32["gap_stored"] == pytest.approx(-0.05)
    assert (b64["hyper"], b64["beats_stored"], b64["beats_lut"]) == ("hyper_64k", True, True)
    assert b64["gap_lut"] == pytest.approx(0.02)
    # The low_rank baseline is a hyper file but not a hypernetwork: never "best hyper", compared on its own.
    assert (b64[fa.LOW_RANK], b64[f"beats_{fa.LOW_RANK}"]) == ("hyper_64k_low_rank_r8", False)
    assert b64[f"gap_{fa.LOW_RANK}"] == pytest.approx(-0.02)
    assert b32[f"beats_{fa.LOW_RANK}"] is None
    assert b225["hyper"] == "hyper_large"
    (c,) = result["c"]
    assert (c["hyper"], c["ratio"]) == ("hyper_64k", pytest.approx(40_000 / 60_000))
    assert "hyper is 1.50x LARGER" in c["text"]


def test_answers_say_what_was_not_measured():
    result = fa.answers([_row("lut8_stored_64k", "lut", 30_000, [0.9]), _row("hyper_64k", "hyper", 50_000, [0.8])])
    assert result["a"]["text"] == "(a) not measured: this run has no hyper_large and no twin_large point"
    assert result["c"][0]["ratio"] is None
    assert "no hyper point reaches" in result["c"][0]["text"] and "(-0.100)" in result["c"][0]["text"]
    assert "no hyper point within 32,000 B" in result["b"][0]["text"]


@pytest.mark.parametrize("name, error, cell", [
    ("hyper_64k", RuntimeError("firmware exited with status 3: qemu ...\nmodel.tflite: larger than 4 MB\n"),
     "not runnable: model.tflite: larger than 4 MB"),
    ("lut16_stored_64k", ValueError("runner refused the model\nmodel.tflite: arena too small\n"),
     "not runnable: model.tflite: arena too small"),
    ("stored_64k", RuntimeError("qemu-system-arm did not finish"), "runner failed"),
])
def test_m4_cell_says_why_a_file_could_not_run(tmp_path, monkeypatch, name, error, cell):
    from types import SimpleNamespace

    from tflm_harness import fit

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(fit, "fit", refuse)
    point = {p.name: p for p in frontier.resolve_points("mitdb_aami", [name])}[name]
    (tmp_path / name / "seed0").mkdir(parents=True)
    (tmp_path / name / "seed0" / "model.tflite").write_bytes(b"")
    ctx = SimpleNamespace(out=tmp_path, task="mitdb_aami", log=lambda message: None, fold=None)
    measured = frontier.measure_fit(point, 0, ctx)
    assert json.loads((tmp_path / name / "seed0" / "fit.json").read_text()) == measured
    assert fa._m4_cell({"m4": measured}, "boot") == cell


def test_an_out_folder_refuses_a_run_under_other_settings(tmp_path):
    """The cache is keyed by point, seed and fold: another schedule or input must not continue a folder."""
    argv = ["--task=mitdb_aami", f"--out={tmp_path}", "--epochs=25", "--patience=6"]
    frontier.check_settings(frontier.parse(argv))
    recorded = json.loads((tmp_path / "settings.json").read_text())
    assert recorded["epochs"] == 25 and recorded["beat_template"] is True
    frontier.check_settings(frontier.parse([*argv, "--tag=again", "--points=stored_28k"]))  # same settings: fine
    with pytest.raises(SystemExit, match=r"beat_template=True there, False here; epochs=25 there, 30 here"):
        frontier.check_settings(frontier.parse([*argv[:2], "--epochs=30", "--patience=6", "--no-beat_template"]))
    # A folder from before settings.json, or a setting the file does not list, is not checked.
    (tmp_path / "settings.json").write_text(json.dumps({"task": "mitdb_aami"}))
    frontier.check_settings(frontier.parse([*argv[:2], "--epochs=30"]))
