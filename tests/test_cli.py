"""The console script: its report command and its refusal of unknown commands."""

import subprocess
import sys


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "hyper_tinypw_tf.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_report_prints_the_same_backbone_comparison():
    result = _run("report", "--preset=large")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same-backbone ratio (stored / hyper):" in result.stdout
    assert "generated part / PW bytes it replaces:" in result.stdout


def test_unknown_command_prints_usage():
    result = _run("fly")
    assert result.returncode == 2
    assert "Commands" in result.stdout
