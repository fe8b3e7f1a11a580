"""export/api.py, export/convert.py, export/hyper.py: the exported bytes of the reference models are pinned.

Refactors of the strategies, the encoder or the exporter must not change one byte of a folded or
hyper file. The models are built in a fresh interpreter, each after ``clear_session``, so that Keras'
layer-name counters (which name the tensors in the file) do not depend on what was built before. The pins hold for the
pinned TensorFlow converter (setup.cfg); a converter upgrade re-pins them deliberately.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (folded, hyper) SHA-256 for fixed (seeded) weights; "large" is the large ECG preset, tiled.
PINS = {
    "tiled": (
        "eb59f06687c855eda4620c8540923dea454208e4d692a0612290afa5a25c7614",
        "0da4e4283550ee8acba8cf27df783d20e4a014b59455c1b09053c5998b08bb13",
    ),
    "tiled_int4": (
        "71c0383e6f573e8721cb241b48dba0c46bcf221ed4144861f1d5fa4cf25a738f",
        "2c083e31b47811e51fe667d3a40ce7a000555ce076ac0225aad3d36ddaf497df",
    ),
    "paper_dense": (
        "9b0907190e609628c0260976be2007128c6c9b29c4229e9a2634b6024836e439",
        "b55eea85dd0912792294dd8f30d8b3d06a02301309bc331b584b62194186c30d",
    ),
    "paper_factorized_int4": (
        "b1bc91a559fd86d98a075daa842dcfb3194ed64ddd2b03e1714dad897e0fb294",
        "8fe31ad02f19e8b44f7ebe6587710eb3c15671f8518c8d499e213d58a8a61cc7",
    ),
    "large": (
        "52fcb278383110304133680574a5b33724149c46b06e86b1e021b539981df983",
        "7f588556c8f35d9d510263f1230130ddcddd672b21789815054000001131f086",
    ),
}
SCRIPT = """
import hashlib, sys
from hyper_tinypw_tf._keras import keras
from tests.conftest_export import large_exports, tiny_exports
for name in sys.argv[1:]:
    keras.backend.clear_session()  # layer names (tensor names in the file) start afresh per model
    folded, hyper = large_exports()[1:] if name == "large" else tiny_exports(name)
    print(name, hashlib.sha256(folded).hexdigest(), hashlib.sha256(hyper).hexdigest())
"""


def test_exported_files_keep_their_bytes() -> None:
    tiny = [name for name in PINS if name != "large"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, *tiny, "large"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = {name: (folded, hyper) for name, folded, hyper in (line.split() for line in run.stdout.splitlines())}
    assert got == PINS
