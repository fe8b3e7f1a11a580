"""The fit report: its byte and MAC arithmetic, its verdicts, and ``hyper-tinypw fit``'s exit statuses.

Cost: about 15 s once the Cortex-M4 runner is built (test_tflm_m4.py says what that costs): two
extra tiny exports, one op-size query and five fit reports of three QEMU runs each.
"""

from __future__ import annotations

import subprocess

import pytest

from hyper_tinypw_tf import accounting
from hyper_tinypw_tf.app import cli
from hyper_tinypw_tf.export import format as fmt
from tests.conftest_export import tiny_exports, tiny_float_model
from tests.test_tflm_m4 import _corrupt_codes
from tflm_harness import build, fit


@pytest.mark.parametrize("mode", [fmt.MODE_LAZY, fmt.MODE_STREAM])
def test_with_mode_gives_the_exporters_bytes(mode):
    _, boot = tiny_exports("tiled", fmt.MODE_BOOT)
    _, exported = tiny_exports("tiled", mode)
    assert fit.with_mode(boot, mode) == exported
    assert fit.with_mode(exported, fmt.MODE_BOOT) == boot


def test_with_mode_refuses_an_unknown_mode():
    _, boot = tiny_exports("tiled", fmt.MODE_BOOT)
    with pytest.raises(ValueError, match=r"fit: mode must be one of \('boot', 'lazy', 'stream'\), received mode='x'"):
        fit.with_mode(boot, "x")


def test_macs_read_from_the_file_match_the_models_bill():
    folded, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    bill = accounting.runtime_bill(tiny_float_model("tiled"))
    assert fit.backbone_macs(folded) == fit.backbone_macs(hyper) == bill.inference_macs
    assert fit.synthesis_macs(fit.hyper_ops(hyper)) == bill.synthesis_macs


def test_op_code_bytes_are_the_kernel_and_core_objects(tmp_path):
    tflm, htpw = build.build_harness("cortex-m4")
    members = [s.name + ".o" for s in build.harness_sources()
               if s.parent.name in ("core", "kernel") and s.name != "htpw_file.c"]
    assert "htpw_runner.cc.o" not in members and "htpw_kernel.cc.o" in members
    total = 0
    for member in members:  # each object on its own, out of the archive
        obj = tmp_path / member
        obj.write_bytes(subprocess.run([tflm.toolchain.ar, "p", str(htpw), member], capture_output=True,
                                       check=True).stdout)
        text, data = subprocess.run([fit._size_tool(tflm.toolchain), str(obj)], capture_output=True, text=True,
                                    check=True).stdout.splitlines()[1].split()[:2]
        total += int(text) + int(data)
    assert fit.op_code_bytes() == total > 0


@pytest.fixture(scope="module")
def tiled_report() -> fit.FitReport:
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    return fit.fit(hyper, name="tiny.tflite")


def test_report_rows_add_up(tiled_report):
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    ops = fit.hyper_ops(hyper)
    kernels = sum(o.c_out * o.c_in for o in ops)
    code = fit.op_code_bytes()
    rows = {row.mode: row for row in tiled_report.rows}
    assert list(rows) == list(fmt.MODES)
    for row in rows.values():
        # Each mode's row counts the file that ships in that mode (the mode string's length can move padding).
        shipped = len(fit.with_mode(hyper, row.mode))
        assert row.file_bytes == shipped and row.flash_bytes == shipped + code
        assert row.setup_instructions > 0 and row.inference_instructions > 0
    assert rows["boot"].cached_kernel_bytes == rows["lazy"].cached_kernel_bytes == kernels
    assert rows["stream"].cached_kernel_bytes == 0
    synthesis = fit.synthesis_macs(ops)
    assert (rows["boot"].synthesis_macs_setup, rows["boot"].synthesis_macs_per_inference) == (synthesis, 0)
    assert (rows["stream"].synthesis_macs_setup, rows["stream"].synthesis_macs_per_inference) == (0, synthesis)
    # boot synthesizes during setup, lazy during its first inference
    assert rows["boot"].setup_instructions > rows["lazy"].setup_instructions
    assert rows["lazy"].first_inference_instructions > rows["lazy"].inference_instructions
    assert tiled_report.backbone_macs == fit.backbone_macs(hyper)
    assert tiled_report.any_fits and "verdict: fits in boot, lazy, stream" in tiled_report.table()


def test_verdict_names_what_is_too_large(tiled_report):
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    report = fit.fit(hyper, name="tiny.tflite", flash=len(hyper), modes=(fmt.MODE_STREAM,))
    assert not report.any_fits and report.rows[0].verdict == "too large: flash"
    sram = {row.mode: row.sram_bytes for row in tiled_report.rows}
    smaller, larger = sorted(sram, key=sram.get)[0], sorted(sram, key=sram.get)[-1]
    assert sram[smaller] < sram[larger]
    tight = fit.fit(hyper, name="tiny.tflite", sram=sram[smaller], modes=(smaller, larger))
    assert {r.mode: r.verdict for r in tight.rows} == {smaller: "fits", larger: "too large: SRAM"}
    assert tight.any_fits


def test_folded_file_has_one_row_without_op_code():
    folded, _ = tiny_exports("tiled", fmt.MODE_BOOT)
    report = fit.fit(folded, name="folded.tflite")
    assert [(r.mode, r.op_code_bytes, r.cached_kernel_bytes, r.synthesis_macs_setup) for r in report.rows] == [
        (fit.FOLDED, 0, 0, 0)
    ]


def test_fit_command_exit_statuses(tmp_path, capsys):
    _, hyper = tiny_exports("tiled", fmt.MODE_BOOT)
    model = tmp_path / "tiny.tflite"
    model.write_bytes(hyper)
    assert cli.main(["fit", f"--model={model}"]) == 0
    out = capsys.readouterr().out
    assert f"Fit of {model} on a board with 1,048,576 bytes of flash and 262,144 bytes of SRAM" in out
    assert cli.main(["fit", f"--model={model}", "--sram=64"]) == 1
    assert "verdict: fits in no mode" in capsys.readouterr().out
    assert cli.main(["fit", f"--model={tmp_path / 'missing.tflite'}"]) == 2
    assert "hyper-tinypw fit: error: --model=" in capsys.readouterr().err
    assert cli.main(["fit", f"--model={model}", "--flash=0"]) == 2
    assert "hyper-tinypw fit: error: flag --flash=0" in capsys.readouterr().err
    not_a_model = tmp_path / "notes.tflite"
    not_a_model.write_bytes(b"not a flatbuffer at all")
    assert cli.main(["fit", f"--model={not_a_model}"]) == 2
    assert f"hyper-tinypw fit: error: {not_a_model}: not a .tflite flatbuffer" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(_corrupt_codes(hyper))
    assert cli.main(["fit", f"--model={corrupt}"]) == 2
    assert f"hyper-tinypw fit: error: {corrupt}: the TFLM runner failed in setup" in capsys.readouterr().err
