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
    for package in ("hyper_tinypw_tf", "export"):
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
