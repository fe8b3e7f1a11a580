"""The package's layers, read from its imports (lazy ones included): no cycle, no import upwards.

From the bottom up (docs/extending.md, "Layers"):

0. the library: ``hyper_tinypw_tf`` (layers, generators, synthesis, accounting, quantization, data,
   evaluation, tasks, ...) and ``hyper_tinypw_tf.export`` (the ``export/`` folder);
1. the TFLM harness: ``tflm_harness`` (builds and runs the C op; it may use the library);
2. the app: ``hyper_tinypw_tf.app`` (``pipeline``, ``stages``, ``main_job``, ``compress``, ``cli``)
   (the commands: they use everything below).

``bench/`` and ``tests/`` sit above all of them and are not checked. A new import that points up,
or closes a circle, fails here with the modules that do it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Python package → its folder (setup.cfg's package_dir: hyper_tinypw_tf.export lives in export/).
PACKAGES = {"hyper_tinypw_tf": ROOT / "hyper_tinypw_tf", "hyper_tinypw_tf.export": ROOT / "export",
            "tflm_harness": ROOT / "tflm_harness"}
APP = "hyper_tinypw_tf.app"  # the package folder hyper_tinypw_tf/app/
LAYER_NAMES = ("library", "TFLM harness", "app")


def layer_of(module: str) -> int:
    if module == APP or module.startswith(f"{APP}."):
        return 2
    return 1 if module.split(".")[0] == "tflm_harness" else 0


def modules() -> dict[str, Path]:
    """Every module of the three packages by its dotted name."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if not (package == "hyper_tinypw_tf" and name.startswith("hyper_tinypw_tf.export")):
                found[name] = path  # (a hyper_tinypw_tf/export link in a work tree is export/ itself)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its body (top level or inside a function)."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {owner(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                targets |= {owner(f"{base}.{alias.name}") or owner(base) for alias in node.names}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    """The reader sees the imports it must judge (so the two tests below cannot pass on an empty graph)."""
    graph = import_graph()
    assert "hyper_tinypw_tf.generators" in graph["hyper_tinypw_tf.layers"]  # a top-level import
    assert {"hyper_tinypw_tf.app.pipeline", "tflm_harness.fit"} <= graph["hyper_tinypw_tf.app.cli"]  # lazy ones too
    assert "hyper_tinypw_tf.export.format" in graph["hyper_tinypw_tf.export.hyper"]  # export/ is the export package


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_import_points_to_a_higher_layer() -> None:
    upward = sorted(f"{a} ({LAYER_NAMES[layer_of(a)]}) imports {b} ({LAYER_NAMES[layer_of(b)]})"
                    for a, targets in import_graph().items() for b in targets if layer_of(b) > layer_of(a))
    assert upward == []


def test_the_checks_catch_a_cycle_and_an_upward_import() -> None:
    graph = {"hyper_tinypw_tf.a": {"hyper_tinypw_tf.b"}, "hyper_tinypw_tf.b": {"hyper_tinypw_tf.a"},
             "hyper_tinypw_tf.c": set()}
    assert cycles(graph) == [["hyper_tinypw_tf.a", "hyper_tinypw_tf.b"]]
    assert layer_of("hyper_tinypw_tf.app.pipeline") > layer_of("tflm_harness.run") > layer_of("hyper_tinypw_tf.layers")
