"""hyper_tinypw_tf/generators.py: each strategy owns its contract, and the modules that use it hold no strategy names.

Covers the strategy classes' format names, input order and declared roles against export/format.py's wire
format, their limits at construction, and that hyper_tinypw_tf/encode.py, accounting.py, export/hyper.py and
export/expand.py neither name a strategy nor parse a tensor name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyper_tinypw_tf import generators
from hyper_tinypw_tf.export import format as fmt

ROOT = Path(__file__).resolve().parents[1]
SPECS = {  # built inside the test, so collecting this file names no Keras layer
    "tiled": {"strategy": "tiled", "config": {"tile_size": 4, "code_dim": 4, "hidden_dim": 8}},
    "paper_dense": {"strategy": "paper", "config": {"head": "dense", "code_dim": 4, "hidden_dim": 8}},
    "paper_factorized": {"strategy": "paper", "config": {"head": "factorized", "code_dim": 4, "hidden_dim": 8,
                                                         "max_in_channels": 16}},
    "low_rank": {"strategy": "low_rank", "config": {"rank": 3}},
}


def test_strategy_formats_are_the_wire_formats() -> None:
    """format.py takes the op variants and input orders from the classes (the C header pins their values,
    tests/test_c_format.py); the order is the C enum's, and every op ends with its own sign bits."""
    assert fmt.STRATEGIES == (fmt.TILED, fmt.PAPER_DENSE, fmt.PAPER_FACTORIZED, fmt.LOW_RANK)
    assert list(generators.STRATEGIES) == ["tiled", "paper", "low_rank"]
    for roles in fmt.INPUT_ROLES.values():
        assert roles[-1] == generators.ROLE_SIGNS and len(set(roles)) == len(roles)


@pytest.mark.parametrize("variant", sorted(SPECS))
def test_declared_roles_are_the_op_inputs(variant: str) -> None:
    generator = generators.deserialize(SPECS[variant])
    assert generator.format_name == variant
    records = [*generator.shared_tensors(), *generator.layer_tensors("pw", 16, 8)]
    assert sorted(r.role for r in records) == sorted(generator.input_roles())
    assert generators.for_format(generator.format_name) is type(generator)


def test_unknown_op_variant_is_named() -> None:
    with pytest.raises(ValueError, match=r"no strategy writes the op variant 'sparse'"):
        generators.for_format("sparse")


def test_tile_size_limit_is_checked_at_construction() -> None:
    assert generators.TiledGenerator(tile_size=fmt.MAX_TILE_SIZE).tile_size == fmt.MAX_TILE_SIZE
    with pytest.raises(ValueError, match=r"tile_size must be at most 255 .* received tile_size=256"):
        generators.TiledGenerator(tile_size=fmt.MAX_TILE_SIZE + 1)


@pytest.mark.parametrize("path", ["hyper_tinypw_tf/encode.py", "hyper_tinypw_tf/accounting.py", "export/hyper.py",
                                  "export/expand.py", "export/convert.py"])
def test_users_of_the_strategies_hold_no_strategy_names(path: str) -> None:
    text = (ROOT / path).read_text()
    names = re.findall(r"""["'](tiled|paper|paper_dense|paper_factorized|low_rank|dense|factorized)["']""", text)
    assert names == []
    assert re.findall(r"""rsplit\(["']/""", text) == []  # no role read from a tensor name's suffix
    assert re.findall(r"ROLE_(?!SIGNS)\w+", text) == []  # no input role but the sign bits every strategy has
