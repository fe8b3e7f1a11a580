"""tflm_harness/core/htpw_format.h mirrors export/format.py, constant for constant."""

import re
from pathlib import Path

import pytest

from hyper_tinypw_tf.export import format as fmt

HEADER = Path(__file__).resolve().parents[1] / "tflm_harness" / "core" / "htpw_format.h"


@pytest.fixture(scope="module")
def defines() -> dict[str, object]:
    found: dict[str, object] = {}
    for name, value in re.findall(r"^#define (HTPW_\w+) (.+)$", HEADER.read_text(), re.M):
        value = value.strip()
        found[name] = value[1:-1] if value.startswith('"') else int(value)
    return found


def test_names_and_version(defines):
    assert defines["HTPW_CUSTOM_OP_NAME"] == fmt.CUSTOM_OP_NAME
    assert defines["HTPW_FORMAT_VERSION"] == fmt.FORMAT_VERSION
    assert defines["HTPW_MAX_DIM"] == fmt.MAX_DIM
    assert defines["HTPW_METADATA_CRC32"] == fmt.METADATA_CRC32
    assert defines["HTPW_METADATA_CRC32_BYTES"] == fmt.METADATA_CRC32_BYTES
    assert [defines[f"HTPW_MODE_{m.upper()}"] for m in fmt.MODES] == list(fmt.MODES)
    assert [defines[f"HTPW_STRATEGY_{s.upper()}"] for s in fmt.STRATEGIES] == list(fmt.STRATEGIES)


def test_every_option_key(defines):
    keys = {v for k, v in defines.items() if k.startswith("HTPW_KEY_")}
    assert keys == set(fmt.OPTION_KEYS)
    for key in fmt.OPTION_KEYS:
        assert defines[f"HTPW_KEY_{key.upper()}"] == key


@pytest.mark.parametrize("strategy", fmt.STRATEGIES)
def test_input_order(defines, strategy):
    roles = fmt.INPUT_ROLES[strategy]
    prefix = f"HTPW_{strategy.upper()}_INPUT"
    assert defines[f"{prefix}S"] == len(roles)
    for position, role in enumerate(roles):
        assert defines[f"{prefix}_{role.upper()}"] == position
    assert len([k for k in defines if k.startswith(prefix + "_")]) == len(roles)
