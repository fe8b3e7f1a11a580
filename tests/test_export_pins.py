"""export/api.py, export/convert.py, export/hyper.py: the exported bytes of the reference models are pinned.

Refactors of the strategies, the encoder or the exporter must not change one byte of a folded or
hyper file. The models are built in a fresh interpreter, each after ``clear_session``, so that Keras'
layer-name counters (which name the tensors in the file) do not depend on what was built before. The pins hold for the
pinned TensorFlow converter (setup.cfg); a converter upgrade re-pins them deliberately.
The folded pins changed once on purpose: folded files carry the file CRC-32 metadata by default
(docs/format.md §7, ``slim.sealed``); the hyper pins did not (``to_hyper`` drops the folded file's entry).
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
        "8f036c97485496d2722c55849c7ac69522d5137158358da12ba45bca74acf1bc",
        "0da4e4283550ee8acba8cf27df783d20e4a014b59455c1b09053c5998b08bb13",
    ),
    "tiled_int4": (
        "edb7605e04b20273a92a615e43a49dee517ad9262f5fc33d949045265833d9b7",
        "2c083e31b47811e51fe667d3a40ce7a000555ce076ac0225aad3d36ddaf497df",
    ),
    "paper_dense": (
        "679fb47d4a63c4b98a0d481631b49c85d0f79c8475e2463637874e2bf6f33df3",
        "b55eea85dd0912792294dd8f30d8b3d06a02301309bc331b584b62194186c30d",
    ),
    "paper_factorized_int4": (
        "f23f7b4cc4a41ed9311ab4216e82c6d530204023f133d1f08d3f47f52966e9e4",
        "8fe31ad02f19e8b44f7ebe6587710eb3c15671f8518c8d499e213d58a8a61cc7",
    ),
    "large": (
        "41bf8a1847865dbf211c2496a0b0524064cb795420f346c8470d0ce3385160a7",
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
