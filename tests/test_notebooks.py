"""Every code cell of the notebooks runs, top to bottom, in one namespace."""

import json
import re
from pathlib import Path

import pytest

from hyper_tinypw_tf.data.options import default_data_dir

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SPEECH_COMMANDS = default_data_dir("speech_commands")
# What each notebook must print: the line that shows it reached its point.
EXPECTED = {
    "quickstart.ipynb": r"same-backbone ratio",
    "kws.ipynb": r"TFLM test accuracy 0\.\d{3} \(QAT Keras 0\.\d{3}, chance 0\.083\)",
    # a float gap below 1e-5 between the Keras 3 model and its tf_keras twin, and equal TFLM outputs
    "keras3.ipynb": r"Keras 3 model -> tf_keras: max \|diff\| (\d\.\de-(0[6-9]|[1-9]\d)|0\.0e\+00); "
                    r"hyper file == folded file in TFLM: True",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, capsys, monkeypatch):
    assert path.name in EXPECTED, f"{path.name}: add the line it must print to EXPECTED"
    if path.name == "kws.ipynb":
        if not SPEECH_COMMANDS.is_dir():
            pytest.skip("the shared Speech Commands copy is not here")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # figures are drawn, not shown
    namespace: dict = {}
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)  # noqa: S102
    assert re.search(EXPECTED[path.name], capsys.readouterr().out)
