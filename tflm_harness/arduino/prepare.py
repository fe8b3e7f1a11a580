"""Assemble the Arduino Nano 33 BLE sketch folder: the sketch, our runner, kernel and core, and the model.

``python -m tflm_harness.arduino.prepare --model=X.tflite --out=DIR`` writes
``DIR/hyper_tinypw_nano33/`` (the folder name must match the ``.ino``'s). The sources are copied
from this checkout at that moment, the same files :mod:`tflm_harness.build` compiles for the host and
the Cortex-M4 (so what runs under QEMU is what runs on the board), flattened into the sketch folder
because they include each other by file name. The model becomes ``model_data.h/.cc``
(``hyper_tinypw_tf.export.c_array``, 16-byte aligned). TFLM itself comes from an Arduino library (see README.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tflm_harness import build

SKETCH = "hyper_tinypw_nano33"
HERE = Path(__file__).resolve().parent
MODEL_ARRAY = "model_data"  # the name the sketch includes


def sketch_files() -> list[Path]:
    """The sketch and every harness source and header it compiles (as build.py compiles them)."""
    headers = [p for d in ("core", "kernel", "runner") for p in sorted((build.HARNESS / d).glob("*.h"))]
    return [HERE / SKETCH / f"{SKETCH}.ino", *build.harness_sources(), *headers]


def prepare(model: Path, out: Path) -> Path:
    """Write the sketch folder for ``model`` under ``out``; return its path.

    Raises:
      ValueError: ``model`` is no .tflite file, or the sketch folder exists already.
    """
    from hyper_tinypw_tf.export import _flatbuffer as fb
    from hyper_tinypw_tf.export import c_array

    data = Path(model).read_bytes()
    fb.check_identifier(data, str(model))
    folder = Path(out) / SKETCH
    if folder.exists():
        raise ValueError(f"prepare: {folder} exists already; remove it or pass another --out")
    header, source = c_array.to_c_array(data, MODEL_ARRAY)
    folder.mkdir(parents=True)
    for path in sketch_files():
        shutil.copy2(path, folder / path.name)
    (folder / f"{MODEL_ARRAY}.h").write_text(header)
    (folder / f"{MODEL_ARRAY}.cc").write_text(source)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tflm_harness.arduino.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="the .tflite (hyper or folded) to run")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the sketch folder into")
    args = parser.parse_args(argv)
    try:
        folder = prepare(args.model, args.out)
    except (ValueError, OSError) as error:
        sys.stderr.write(f"prepare: error: {error}\n")
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
