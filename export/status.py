"""Status codes of the device core (``tflm_harness/core``), with the message each one stands for.

The C enum ``htpw_status`` (``htpw_synthesis.h``) returns one distinct value per failure, so a
failure is identifiable even when a device build strips its error strings (as TFLM's
``TF_LITE_STRIP_ERROR_STRINGS`` does). This is the host-side table that turns a value back into
words. ``tests/test_c_status.py`` parses the C header and compares every name, value and
message with this module, so the two cannot drift apart.
"""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """``htpw_status``: the C name is ``HTPW_`` + the member name."""

    OK = 0
    ERR_NULL = 1
    ERR_DIMENSION = 2
    ERR_BITS = 3
    ERR_SHIFT = 4
    ERR_MULTIPLIER = 5
    ERR_SCRATCH = 6
    ERR_HEAD = 7
    ERR_CRC = 8
    ERR_INPUT_COUNT = 9
    ERR_INPUT_TYPE = 10
    ERR_INPUT_SHAPE = 11
    ERR_INPUT_BYTES = 12
    ERR_OPTION_MISSING = 13
    ERR_OPTION_TYPE = 14
    ERR_OPTION_UNKNOWN = 15
    ERR_OPTION_VERSION = 16
    ERR_OPTION_MODE = 17
    ERR_OPTION_STRATEGY = 18
    ERR_OPTION_C_OUT = 19
    ERR_OPTION_C_IN = 20
    ERR_OPTION_CODE_DIM = 21
    ERR_OPTION_HIDDEN_DIM = 22
    ERR_OPTION_TILE_SIZE = 23
    ERR_OPTION_CODE_BITS = 24
    ERR_OPTION_WEIGHT_BITS = 25
    ERR_OPTION_CRC32 = 26
    ERR_OPTIONS_FORMAT = 27
    ERR_OUTPUT = 28
    ERR_SIZE = 29
    ERR_ALIGN = 30
    ERR_INPUT_CONSTANT = 31
    ERR_FILE_FORMAT = 32
    ERR_FILE_CRC = 33
    ERR_FILE_NO_CRC = 34


MESSAGES: dict[Status, str] = {
    Status.OK: "success",
    Status.ERR_NULL: "a required pointer is NULL",
    Status.ERR_DIMENSION: "a dimension is <= 0 or above its bound",
    Status.ERR_BITS: "a tensor's bit width is not 4 or 8",
    Status.ERR_SHIFT: "requantization shift outside [-31, 30]",
    Status.ERR_MULTIPLIER: "requantization multiplier outside [2^30, 2^31)",
    Status.ERR_SCRATCH: "scratch buffer smaller than the *_scratch_bytes() it needs",
    Status.ERR_HEAD: "unknown paper head kind",
    Status.ERR_CRC: "option crc32 differs from the CRC-32 of the inputs' bytes",
    Status.ERR_INPUT_COUNT: "number of inputs differs from the strategy's",
    Status.ERR_INPUT_TYPE: "an input's element type (or bit width) is not the one required",
    Status.ERR_INPUT_SHAPE: "an input's rank or dimensions are not the ones required",
    Status.ERR_INPUT_BYTES: "an input's byte length differs from what its shape and type need",
    Status.ERR_OPTION_MISSING: "a required option key is absent",
    Status.ERR_OPTION_TYPE: "an option has the wrong flexbuffer type",
    Status.ERR_OPTION_UNKNOWN: "an option key the format does not define",
    Status.ERR_OPTION_VERSION: "option version is not HTPW_FORMAT_VERSION",
    Status.ERR_OPTION_MODE: "option mode is not boot, lazy or stream",
    Status.ERR_OPTION_STRATEGY: "option strategy is not tiled, paper_dense, paper_factorized or low_rank",
    Status.ERR_OPTION_C_OUT: "option c_out outside [1, HTPW_MAX_DIM]",
    Status.ERR_OPTION_C_IN: "option c_in outside [1, HTPW_MAX_DIM]",
    Status.ERR_OPTION_CODE_DIM: "code_dim outside [1, HTPW_MAX_DIM] (or not hidden_dim if low_rank)",
    Status.ERR_OPTION_HIDDEN_DIM: "hidden_dim outside [1, HTPW_MAX_DIM] (HTPW_MAX_FACTOR_RANK if factorized)",
    Status.ERR_OPTION_TILE_SIZE: "tile_size outside [1, HTPW_MAX_TILE_SIZE] (tiled) or not 0 (others)",
    Status.ERR_OPTION_CODE_BITS: "option code_bits is not 4 or 8",
    Status.ERR_OPTION_WEIGHT_BITS: "option weight_bits is not 4 or 8",
    Status.ERR_OPTION_CRC32: "option crc32 outside [0, 2^32)",
    Status.ERR_OPTIONS_FORMAT: "custom options absent or not a flexbuffer map",
    Status.ERR_OUTPUT: "output tensor (or kernel buffer) is not int8 [c_out, 1, 1, c_in]",
    Status.ERR_SIZE: "a size the options imply does not fit in int32 bytes",
    Status.ERR_ALIGN: "scratch is not 4-byte aligned",
    Status.ERR_INPUT_CONSTANT: "an input is not a constant tensor with a buffer",
    Status.ERR_FILE_FORMAT: "the file's tables leave the file, or its CRC entry is malformed",
    Status.ERR_FILE_CRC: "the file's CRC-32 metadata differs from the CRC-32 of its bytes",
    Status.ERR_FILE_NO_CRC: "a file with HyperTinyPW ops has no CRC-32 metadata",
}


def c_name(status: Status) -> str:
    """The C enumerator, e.g. ``HTPW_ERR_CRC``."""
    return f"HTPW_{status.name}"


def describe(code: int) -> str:
    """``"HTPW_ERR_CRC (8): option crc32 differs ..."`` for a status value, or says it is unknown."""
    try:
        status = Status(code)
    except ValueError:
        return f"unknown htpw_status {code}"
    return f"{c_name(status)} ({int(status)}): {MESSAGES[status]}"
