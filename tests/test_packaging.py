"""setup.cfg declares every third-party package the library imports (a missing one breaks a fresh install)."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"hyper_tinypw_tf", "export", "tflm_harness", "tests", "bench"}


def _imported_modules() -> dict[str, str]:
    """Top-level module → one file importing it, over the installed packages' sources."""
    found: dict[str, str] = {}
    for package in ("hyper_tinypw_tf", "export", "tflm_harness"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]
    return {re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0].lower().replace("_", "-") for line in lines}


def test_every_imported_distribution_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        if module in sys.stdlib_module_names or module in LOCAL or module == "__future__":
            continue
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (imported by {where}; distribution {sorted(names)})")
    assert not missing, "not in setup.cfg install_requires: " + "; ".join(missing)


def test_tqdm_and_scipy_are_declared() -> None:
    assert {"tqdm", "scipy"} <= _declared()


def _options() -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["options"]


def _folder_packages() -> set[str]:
    """Every folder with an ``__init__.py`` among the installed ones, under its installed name."""
    names = set()
    for top, installed in (("hyper_tinypw_tf", "hyper_tinypw_tf"), ("export", "hyper_tinypw_tf.export"),
                           ("tflm_harness", "tflm_harness")):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            names.add(".".join((installed, *parts)))
    return names


def test_the_package_list_names_every_folder_and_export_installs_under_the_library() -> None:
    options = _options()
    listed = {line.strip() for line in options["packages"].splitlines() if line.strip()}
    assert listed == _folder_packages()
    assert "export" not in listed  # a top-level `export` would collide with other distributions
    package_dir = dict(line.replace(" ", "").split("=") for line in options["package_dir"].splitlines() if line.strip())
    assert package_dir == {"hyper_tinypw_tf.export": "export"}


def test_the_installed_library_imports_export_under_its_own_name(tmp_path: Path) -> None:
    """From outside the checkout (no cwd on the path) the exporter is only reachable as hyper_tinypw_tf.export."""
    import subprocess

    code = ("import importlib.util, hyper_tinypw_tf.export.api as api; "
            "print(api.__file__); print(importlib.util.find_spec('export') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(Path.home())})
    file, no_top_level = out.stdout.split()
    assert Path(file) == ROOT / "export" / "api.py"
    assert no_top_level == "True"
