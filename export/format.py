"""Wire format of the ``HyperTinyPW`` custom op: its name, inputs, options and their flexbuffer codec.

This module is the one writer and the one reader of the options (docs/format.md documents the
same facts for the TFLM kernel; a C header must mirror these constants). Decoding validates
every key, type and value and names the option and the value received, because a hyper file
is untrusted input on the host (``expand``) and on the device.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from flatbuffers import flexbuffers

from hyper_tinypw_tf import generators, synthesis
from hyper_tinypw_tf.generators import PaperGenerator, TiledGenerator
from hyper_tinypw_tf.low_rank import LowRankGenerator

CUSTOM_OP_NAME = "HyperTinyPW"
FORMAT_VERSION = 2  # 2: the "crc32" option and the file's "hyper_tinypw_crc32" metadata (docs/format.md §7)

MODE_BOOT = "boot"  # every kernel synthesized once in Prepare, kept for the model's lifetime
MODE_LAZY = "lazy"  # a kernel synthesized at its first Eval, then kept
MODE_STREAM = "stream"  # a kernel synthesized into scratch memory before every use, never kept
MODES = (MODE_BOOT, MODE_LAZY, MODE_STREAM)

# The op variants (option "strategy") are the strategies' own names, in the order of the C enum
# htpw_strategy_id (tests/test_c_status.py); each is validated below with the limits the C core checks.
TILED = TiledGenerator.FORMAT
PAPER_DENSE = PaperGenerator.FORMAT_DENSE
PAPER_FACTORIZED = PaperGenerator.FORMAT_FACTORIZED
LOW_RANK = LowRankGenerator.FORMAT
# Input roles, in input order, per op variant: what the strategies declare (``HyperGenerator.FORMATS``).
INPUT_ROLES = {name: roles for cls in generators.STRATEGIES.values() for name, roles in cls.FORMATS.items()}
STRATEGIES = tuple(INPUT_ROLES)

# Option keys (flexbuffer map keys).
KEY_VERSION = "version"
KEY_MODE = "mode"
KEY_STRATEGY = "strategy"
KEY_C_OUT = "c_out"
KEY_C_IN = "c_in"
KEY_CODE_DIM = "code_dim"
KEY_HIDDEN_DIM = "hidden_dim"
KEY_TILE_SIZE = "tile_size"
KEY_CODE_BITS = "code_bits"
KEY_WEIGHT_BITS = "weight_bits"
KEY_CRC32 = "crc32"
OPTION_KEYS = (
    KEY_VERSION, KEY_MODE, KEY_STRATEGY, KEY_C_OUT, KEY_C_IN, KEY_CODE_DIM, KEY_HIDDEN_DIM,
    KEY_TILE_SIZE, KEY_CODE_BITS, KEY_WEIGHT_BITS, KEY_CRC32,
)
CRC32_MAX = 2**32 - 1

# File-level integrity: a metadata entry of this name whose buffer holds the little-endian CRC-32 of
# the whole file, computed with those 4 bytes set to zero (docs/format.md §7).
METADATA_CRC32 = "hyper_tinypw_crc32"
METADATA_CRC32_BYTES = 4
_STRING_KEYS = (KEY_MODE, KEY_STRATEGY)

# The input roles by name (the strategies' constants; the C header's input positions mirror them).
ROLE_CODES = generators.ROLE_CODES
ROLE_W1 = generators.ROLE_W1
ROLE_B1 = generators.ROLE_B1
ROLE_W2 = TiledGenerator.ROLE_W2
ROLE_HEAD = PaperGenerator.ROLE_HEAD
ROLE_B_SHARED = PaperGenerator.ROLE_B_SHARED
ROLE_REQUANT = generators.ROLE_REQUANT
ROLE_SIGNS = generators.ROLE_SIGNS
ROLE_U = LowRankGenerator.ROLE_U
ROLE_V = LowRankGenerator.ROLE_V
MAX_DIM = 65535
MAX_TILE_SIZE = synthesis.MAX_TILE_SIZE  # docs/synthesis.md §5; checked by synthesis.tile_size_problem


@dataclass(frozen=True)
class HyperOptions:
    """Decoded custom options of one ``HyperTinyPW`` op (docs/format.md §3)."""

    version: int
    mode: str
    strategy: str
    c_out: int
    c_in: int
    code_dim: int
    hidden_dim: int
    tile_size: int  # 0 unless strategy == TILED
    code_bits: int
    weight_bits: int
    crc32: int  # zlib.crc32 of the op's input buffers, in input order (inputs_crc32)

    def __post_init__(self) -> None:
        _validate(asdict(self))


def _bad(key: str, value: object, expected: str) -> ValueError:
    return ValueError(f"{CUSTOM_OP_NAME} option {key!r}: expected {expected}, received {key}={value!r}")


def _validate(options: dict[str, object]) -> None:
    """Check every option's type and value; raise ValueError naming the first bad one."""
    for key in OPTION_KEYS:
        if key not in options:
            raise ValueError(f"{CUSTOM_OP_NAME} options: missing option {key!r}")
        value = options[key]
        if key in _STRING_KEYS:
            if not isinstance(value, str):
                raise _bad(key, value, "a string")
        elif not isinstance(value, int) or isinstance(value, bool):
            raise _bad(key, value, "an integer")
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ValueError(f"{CUSTOM_OP_NAME} options: unknown option {unknown[0]!r}={options[unknown[0]]!r}")
    if options[KEY_VERSION] != FORMAT_VERSION:
        raise _bad(KEY_VERSION, options[KEY_VERSION], f"format version {FORMAT_VERSION}")
    if options[KEY_MODE] not in MODES:
        raise _bad(KEY_MODE, options[KEY_MODE], f"one of {MODES}")
    if options[KEY_STRATEGY] not in STRATEGIES:
        raise _bad(KEY_STRATEGY, options[KEY_STRATEGY], f"one of {STRATEGIES}")
    for key in (KEY_C_OUT, KEY_C_IN, KEY_CODE_DIM, KEY_HIDDEN_DIM):
        if not 0 < options[key] <= MAX_DIM:
            raise _bad(key, options[key], f"an integer in [1, {MAX_DIM}]")
    if options[KEY_STRATEGY] == LOW_RANK and options[KEY_CODE_DIM] != options[KEY_HIDDEN_DIM]:
        raise _bad(KEY_CODE_DIM, options[KEY_CODE_DIM],
                   f"hidden_dim={options[KEY_HIDDEN_DIM]} (both are the rank) for strategy {LOW_RANK!r}")
    for key in (KEY_CODE_BITS, KEY_WEIGHT_BITS):
        if options[key] not in (4, 8):
            raise _bad(key, options[key], "4 or 8")
    tiled = options[KEY_STRATEGY] == TILED
    need = synthesis.tile_size_problem(options[KEY_TILE_SIZE]) if tiled else None
    if need:
        raise _bad(KEY_TILE_SIZE, options[KEY_TILE_SIZE], f"{need} for strategy {TILED!r}")
    if not tiled and options[KEY_TILE_SIZE] != 0:
        raise _bad(KEY_TILE_SIZE, options[KEY_TILE_SIZE], f"0 for strategy {options[KEY_STRATEGY]!r}")
    if not 0 <= options[KEY_CRC32] <= CRC32_MAX:
        raise _bad(KEY_CRC32, options[KEY_CRC32], f"an integer in [0, {CRC32_MAX}]")


def inputs_crc32(buffers: Iterable[bytes]) -> int:
    """The ``crc32`` option: CRC-32 (``zlib.crc32``) of the op's input buffers concatenated in input order.

    A shared input counts each time it appears, so every op checks all the bytes it reads.
    """
    crc = 0
    for raw in buffers:
        crc = zlib.crc32(raw, crc)
    return crc


def file_crc32(data: bytes, offset: int) -> int:
    """CRC-32 of a whole file with the :data:`METADATA_CRC32_BYTES` bytes at ``offset`` read as zero."""
    end = offset + METADATA_CRC32_BYTES
    crc = zlib.crc32(data[:offset])
    crc = zlib.crc32(bytes(METADATA_CRC32_BYTES), crc)
    return zlib.crc32(data[end:], crc)


def encode_options(options: HyperOptions) -> bytes:
    """The flexbuffer map of ``options`` (keys sorted by flexbuffers, so the bytes are deterministic)."""
    return bytes(flexbuffers.Dumps(asdict(options)))


def decode_options(data: bytes | bytearray | None) -> HyperOptions:
    """Parse and validate custom options; the inverse of :func:`encode_options`.

    Raises:
      ValueError: naming the option and the value received, or saying the bytes are no flexbuffer map.
    """
    if data is None or len(data) == 0:
        raise ValueError(f"{CUSTOM_OP_NAME}: custom options are missing")
    try:
        root = flexbuffers.GetRoot(bytes(data))
        if not root.IsMap:
            raise ValueError("the root is not a map")
        raw = root.AsMap
        options: dict[str, object] = {}
        for key, ref in zip(raw.Keys, raw.Values, strict=True):
            name = key.AsKey
            if ref.IsString:
                options[name] = ref.AsString
            elif ref.IsInt:
                options[name] = ref.AsInt
            else:
                options[name] = ref.Value
    except (ValueError, IndexError, KeyError, TypeError, struct.error, UnicodeDecodeError) as error:
        raise ValueError(
            f"{CUSTOM_OP_NAME}: custom options ({len(data)} bytes) are not a valid flexbuffer map: {error}"
        ) from error
    _validate(options)
    return HyperOptions(**options)  # type: ignore[arg-type]
