"""Status codes, limits and option ids mean the same on both sides: C headers against export/ and synthesis.py."""

from __future__ import annotations

import ctypes
import dataclasses
import re

from hyper_tinypw_tf import synthesis
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export import status
from tests import core_lib

SYNTHESIS_H = core_lib.CORE / "htpw_synthesis.h"
OP_H = core_lib.CORE / "htpw_op.h"


def _enum(text: str, prefix: str) -> dict[str, int]:
    """Enumerators of ``prefix`` (without the sentinels that only fix an enum's width)."""
    found = re.findall(rf"\b({prefix}\w*) = (\w+)", text)
    return {name: int(value, 0) for name, value in found if not name.endswith("_SENTINEL_")}


def _defines(*headers) -> dict[str, int]:
    found = {}
    for header in headers:
        for name, value in re.findall(r"^#define (HTPW_\w+) (-?\d+)\s*$", header.read_text(), re.M):
            found[name] = int(value)
    return found


lib = core_lib.library  # the session's build of the core


def test_status_enum_matches_python_name_value_and_message():
    lines = re.findall(r"^\s*(HTPW_(?:OK|ERR_\w+)) = (\d+),?\s*/\* (.*?) \*/", SYNTHESIS_H.read_text(), re.M)
    in_c = {name: (int(value), message) for name, value, message in lines}
    in_python = {status.c_name(s): (int(s), status.MESSAGES[s]) for s in status.Status if s != status.Status.OK}
    assert in_c == in_python
    assert _enum(SYNTHESIS_H.read_text(), "HTPW_OK")["HTPW_OK"] == status.Status.OK == 0


def test_status_names_from_the_library(lib):
    for s in status.Status:
        assert core_lib.status_name(lib, int(s)) == status.c_name(s)
    for value in (len(status.Status), -1, 1000):
        assert core_lib.status_name(lib, value) == "HTPW_ERR_UNKNOWN_STATUS"
    assert status.describe(8) == "HTPW_ERR_CRC (8): option crc32 differs from the CRC-32 of the inputs' bytes"
    assert status.describe(99) == "unknown htpw_status 99"


def test_limits_are_the_python_ones():
    defines = _defines(SYNTHESIS_H, core_lib.CORE / "htpw_format.h")
    assert defines["HTPW_MAX_DENSE_TERMS"] == synthesis.MAX_DENSE_TERMS
    assert defines["HTPW_MAX_FACTOR_RANK"] == synthesis.MAX_FACTOR_RANK
    assert defines["HTPW_MAX_TILE_SIZE"] == fmt.MAX_TILE_SIZE
    assert defines["HTPW_MAX_DIM"] == fmt.MAX_DIM


def test_option_mode_and_strategy_ids_follow_format_py():
    text = OP_H.read_text()
    options = _enum(text, "HTPW_OPTION_")
    assert options.pop("HTPW_OPTION_COUNT") == len(fmt.OPTION_KEYS)
    assert options == {f"HTPW_OPTION_{key.upper()}": i for i, key in enumerate(fmt.OPTION_KEYS)}
    assert _enum(text, "HTPW_MODE_ID_") == {f"HTPW_MODE_ID_{m.upper()}": i for i, m in enumerate(fmt.MODES)}
    assert _enum(text, "HTPW_STRATEGY_ID_") == {
        f"HTPW_STRATEGY_ID_{s.upper()}": i for i, s in enumerate(fmt.STRATEGIES)
    }
    assert _enum(text, "HTPW_STRATEGY_COUNT")["HTPW_STRATEGY_COUNT"] == len(fmt.STRATEGIES)  # htpw_op.c's table


def _option_variants(base: fmt.HyperOptions):
    """The valid options of each strategy, then one field at a time moved to and past its range ends."""
    tiled = dataclasses.replace(base, strategy=fmt.TILED, tile_size=8)
    low_rank = dataclasses.replace(base, strategy=fmt.LOW_RANK, tile_size=0, hidden_dim=base.code_dim)
    for strategy in fmt.STRATEGIES:
        valid = {fmt.TILED: tiled, fmt.LOW_RANK: low_rank}.get(strategy)
        yield dataclasses.asdict(valid or dataclasses.replace(base, strategy=strategy, tile_size=0))
    probes = {
        "version": (0, fmt.FORMAT_VERSION - 1, fmt.FORMAT_VERSION + 1),
        "c_out": (-1, 0, 1, fmt.MAX_DIM, fmt.MAX_DIM + 1),
        "c_in": (0, 1, fmt.MAX_DIM, fmt.MAX_DIM + 1),
        "code_dim": (0, 1, fmt.MAX_DIM + 1),
        "hidden_dim": (0, synthesis.MAX_FACTOR_RANK, fmt.MAX_DIM, fmt.MAX_DIM + 1),
        "tile_size": (-1, 0, 1, fmt.MAX_TILE_SIZE, fmt.MAX_TILE_SIZE + 1),
        "code_bits": (0, 1, 4, 8, 16), "weight_bits": (3, 4, 5, 8, 9),
    }
    for start in (tiled, dataclasses.replace(base, strategy=fmt.PAPER_DENSE, tile_size=0), low_rank):
        for key, values in probes.items():
            for value in values:
                yield {**dataclasses.asdict(start), key: value}


def test_c_and_python_reject_the_same_options_naming_the_same_key(lib):
    """htpw_options_validate fails with HTPW_ERR_OPTION_<KEY> exactly when format.py names option <key>."""
    base = fmt.HyperOptions(version=fmt.FORMAT_VERSION, mode=fmt.MODE_BOOT, strategy=fmt.PAPER_DENSE, c_out=20,
                            c_in=12, code_dim=3, hidden_dim=7, tile_size=0, code_bits=8, weight_bits=8, crc32=0)
    checked = 0
    for values in _option_variants(base):
        try:
            fmt.HyperOptions(**values)
            expected = "HTPW_OK"
        except ValueError as error:
            key = re.search(r"option '(\w+)'", str(error)).group(1)
            expected = f"HTPW_ERR_OPTION_{key.upper()}"
        c_options = core_lib.Options(mode=0, strategy=fmt.STRATEGIES.index(values["strategy"]))
        for position, key in enumerate(fmt.OPTION_KEYS):
            if key not in (fmt.KEY_MODE, fmt.KEY_STRATEGY):
                assert lib.htpw_options_set_int(ctypes.byref(c_options), position, values[key]) == 0
        got = core_lib.status_name(lib, lib.htpw_options_validate(ctypes.byref(c_options)))
        assert got == expected, values
        checked += 1
    assert checked > 60
