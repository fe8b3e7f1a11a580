"""The C op API (tflm_harness/core/htpw_op.h) on real hyper files: expand's bytes, and one status per defect."""

from __future__ import annotations

import ctypes
import struct
import zlib

import numpy as np
import pytest

from hyper_tinypw_tf.export import format as fmt
from tests import core_lib

lib = core_lib.library  # the session's build of the core


@pytest.mark.parametrize(("strategy", "bits"), core_lib.CONFIGS)
def test_kernels_are_expands_bytes(lib, strategy, bits):
    """Every op of the file validates and synthesizes exactly the kernel expand writes."""
    for op in core_lib.file_ops(strategy, bits):
        status, kernel = core_lib.synthesize(lib, op)
        assert status == "HTPW_OK", op.label
        np.testing.assert_array_equal(kernel, op.kernel, err_msg=op.label)


@pytest.mark.parametrize(("strategy", "bits"), core_lib.CONFIGS)
def test_malformed_ops_are_rejected_with_their_status(lib, strategy, bits):
    """Each defect gets its own status code, and the input it concerns is named by position."""
    op = core_lib.file_ops(strategy, bits)[0]
    for case in core_lib.malformed_cases(lib, op):
        inputs = core_lib.CInputs(case.inputs)
        failed = ctypes.c_int32(99)
        status = lib.htpw_op_validate_at(ctypes.byref(case.options), inputs.array, inputs.count,
                                         ctypes.byref(failed))
        assert core_lib.status_name(lib, status) == case.expected, case.label
        assert failed.value == case.failed_input, case.label


def test_crc32_is_zlibs_and_chains(lib):
    rng = np.random.default_rng(3)
    pieces = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (0, 1, 7, 300, 4096)]
    crc = 0
    for piece in pieces:
        crc = lib.htpw_crc32(crc, piece, len(piece))
    assert crc == zlib.crc32(b"".join(pieces))
    assert lib.htpw_crc32(0, b"123456789", 9) == 0xCBF43926  # the CRC-32 check value


def test_null_input_data_is_not_a_constant_tensor(lib):
    op = core_lib.file_ops("tiled", 8)[0]
    options, inputs = core_lib.options_struct(lib, op.options), core_lib.CInputs(op.inputs)
    inputs.array[3].data = None
    assert core_lib.status_name(lib, lib.htpw_op_validate(ctypes.byref(options), inputs.array, inputs.count)) == (
        "HTPW_ERR_INPUT_CONSTANT"
    )


def test_option_keys_and_strings_parse_by_exact_name(lib):
    out = ctypes.c_int()
    for position, key in enumerate(fmt.OPTION_KEYS):
        assert lib.htpw_option_from_key(key.encode(), len(key), ctypes.byref(out)) == 0
        assert out.value == position  # htpw_option_id follows format.py's key order
    for name, expected in (("crc", "UNKNOWN"), ("c_out ", "UNKNOWN"), ("", "UNKNOWN")):
        status = lib.htpw_option_from_key(name.encode(), len(name), ctypes.byref(out))
        assert core_lib.status_name(lib, status) == f"HTPW_ERR_OPTION_{expected}"
    for position, mode in enumerate(fmt.MODES):
        assert lib.htpw_mode_from_string(mode.encode(), len(mode), ctypes.byref(out)) == 0 and out.value == position
    for position, strategy in enumerate(fmt.STRATEGIES):
        assert lib.htpw_strategy_from_string(strategy.encode(), len(strategy), ctypes.byref(out)) == 0
        assert out.value == position
    # Not NUL-terminated: only `len` bytes count.
    assert lib.htpw_mode_from_string(b"bootX", 4, ctypes.byref(out)) == 0
    for parser, text, expected in ((lib.htpw_mode_from_string, "Boot", "MODE"),
                                   (lib.htpw_strategy_from_string, "paper", "STRATEGY")):
        assert core_lib.status_name(lib, parser(text.encode(), len(text), ctypes.byref(out))) == (
            f"HTPW_ERR_OPTION_{expected}"
        )


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("c_out", 2**32 + 5, "HTPW_ERR_OPTION_C_OUT"),  # would truncate to 5
    ("c_in", -(2**31) - 1, "HTPW_ERR_OPTION_C_IN"),
    ("code_dim", 2**40, "HTPW_ERR_OPTION_CODE_DIM"),
    ("hidden_dim", 2**31, "HTPW_ERR_OPTION_HIDDEN_DIM"),
    ("tile_size", 2**32 + 8, "HTPW_ERR_OPTION_TILE_SIZE"),
    ("code_bits", 2**32 + 8, "HTPW_ERR_OPTION_CODE_BITS"),
    ("weight_bits", -(2**32) + 8, "HTPW_ERR_OPTION_WEIGHT_BITS"),
    ("version", 2**32 + fmt.FORMAT_VERSION, "HTPW_ERR_OPTION_VERSION"),
    ("crc32", 2**32, "HTPW_ERR_OPTION_CRC32"),
    ("crc32", -1, "HTPW_ERR_OPTION_CRC32"),
    ("mode", 0, "HTPW_ERR_OPTION_TYPE"),
    ("strategy", 1, "HTPW_ERR_OPTION_TYPE"),
])
def test_int_options_out_of_int32_are_rejected_not_truncated(lib, key, value, expected):
    options = core_lib.Options()
    status = lib.htpw_options_set_int(ctypes.byref(options), fmt.OPTION_KEYS.index(key), value)
    assert core_lib.status_name(lib, status) == expected


def test_set_int_stores_every_int_option(lib):
    op = core_lib.file_ops("tiled", 8)[0]
    options = core_lib.options_struct(lib, op.options)
    built = core_lib.Options(mode=options.mode, strategy=options.strategy)
    for position, key in enumerate(fmt.OPTION_KEYS):
        if key not in (fmt.KEY_MODE, fmt.KEY_STRATEGY):
            assert lib.htpw_options_set_int(ctypes.byref(built), position, getattr(op.options, key)) == 0
    assert bytes(built) == bytes(options)
    assert lib.htpw_options_validate(ctypes.byref(built)) == 0


def _synthesize_status(lib, op, scratch_bytes=None, scratch_offset=0, kernel_bytes=None):
    options, inputs = core_lib.options_struct(lib, op.options), core_lib.CInputs(op.inputs)
    needed = ctypes.c_int32()
    assert lib.htpw_op_scratch_bytes(ctypes.byref(options), inputs.array, inputs.count, ctypes.byref(needed)) == 0
    scratch = (ctypes.c_int32 * (needed.value // 4 + 2))()
    kernel = np.zeros(op.kernel.size + 1, np.int8)
    status = lib.htpw_op_synthesize(
        ctypes.byref(options), inputs.array, inputs.count, ctypes.addressof(scratch) + scratch_offset,
        needed.value if scratch_bytes is None else scratch_bytes, kernel.ctypes.data,
        op.kernel.size if kernel_bytes is None else kernel_bytes,
    )
    return core_lib.status_name(lib, status)


@pytest.mark.parametrize("strategy", fmt.STRATEGIES)
def test_synthesize_checks_its_buffers(lib, strategy):
    op = core_lib.file_ops(strategy, 8)[0]
    assert _synthesize_status(lib, op) == "HTPW_OK"
    assert _synthesize_status(lib, op, scratch_bytes=4) == "HTPW_ERR_SCRATCH"
    assert _synthesize_status(lib, op, scratch_offset=1) == "HTPW_ERR_ALIGN"
    assert _synthesize_status(lib, op, kernel_bytes=op.kernel.size + 1) == "HTPW_ERR_OUTPUT"
    bad = op.with_input(len(op.inputs) - 1, data=op.inputs[-1].data + b"\0")
    assert _synthesize_status(lib, bad) == "HTPW_ERR_INPUT_BYTES"


def test_sizes_beyond_int32_are_rejected(lib):
    """A 65535 x 65535 kernel is valid per option but cannot exist in int32 bytes."""
    op = core_lib.file_ops("paper_dense", 8)[0]
    options = core_lib._options(lib, op, c_out=fmt.MAX_DIM, c_in=fmt.MAX_DIM)
    out = ctypes.c_int32()
    assert lib.htpw_options_validate(ctypes.byref(options)) == 0
    assert core_lib.status_name(lib, lib.htpw_op_kernel_bytes(ctypes.byref(options), ctypes.byref(out))) == (
        "HTPW_ERR_SIZE"
    )
    tiled = core_lib._options(lib, core_lib.file_ops("tiled", 8)[0], c_in=fmt.MAX_DIM, tile_size=255,
                              hidden_dim=fmt.MAX_DIM, c_out=1)
    status = lib.htpw_op_scratch_bytes(ctypes.byref(tiled), None, 0, ctypes.byref(out))
    assert core_lib.status_name(lib, status) == "HTPW_ERR_SIZE"


def test_requant_is_read_bytewise_little_endian(lib):
    """The requant buffer needs no alignment: an op whose inputs sit at odd addresses synthesizes the same bytes."""
    op = core_lib.file_ops("tiled", 4)[1]
    options, inputs = core_lib.options_struct(lib, op.options), core_lib.CInputs(op.inputs)
    shifted = [ctypes.create_string_buffer(b"\0" + raw.data) for raw in op.inputs]
    for slot, buffer in zip(inputs.array, shifted, strict=False):
        slot.data = ctypes.addressof(buffer) + 1
    assert struct.unpack("<2i", op.inputs[4].data)[0] >= 2**30
    needed = ctypes.c_int32()
    assert lib.htpw_op_scratch_bytes(ctypes.byref(options), None, 0, ctypes.byref(needed)) == 0
    scratch = (ctypes.c_int32 * (needed.value // 4 + 1))()
    kernel = np.zeros_like(op.kernel)
    assert lib.htpw_op_synthesize(ctypes.byref(options), inputs.array, inputs.count, scratch, needed.value,
                                  kernel.ctypes.data, kernel.size) == 0
    np.testing.assert_array_equal(kernel, op.kernel)


@pytest.mark.parametrize("index", range(len(core_lib.edge_ops())))
def test_edge_ops_match_the_reference(lib, index):
    """At the largest sums the limits allow, a 255 tile, single channels: the reference's bytes."""
    op = core_lib.edge_ops()[index]
    status, kernel = core_lib.synthesize(lib, op)
    assert status == "HTPW_OK", op.label
    np.testing.assert_array_equal(kernel, op.kernel, err_msg=op.label)


@pytest.fixture(scope="module")
def cmsis_lib(tmp_path_factory):
    """The core with HTPW_USE_CMSIS_NN, linked with CMSIS-NN's s8 x s8 -> s32 product from the pinned tree.

    On the host CMSIS-NN compiles its plain-C path (no ARM_MATH_DSP), which checks how the core
    calls it (operand order, layout, zeroed output); the SMLAD path runs in the Cortex-M4 tests.
    """
    from tflm_harness import build

    cmsis_nn = build.tflm_dir() / "tensorflow/lite/micro/tools/make/downloads/cmsis_nn"
    out = tmp_path_factory.mktemp("cmsis") / "libhtpw_cmsis.so"
    sources = (*core_lib.CORE_SOURCES, cmsis_nn / "Source/NNSupportFunctions/arm_nn_mat_mult_nt_t_s8_s32.c")
    core_lib.build(out, sources, ("-std=c99", "-O2", "-shared", "-fPIC", "-DHTPW_USE_CMSIS_NN",
                                  f"-I{cmsis_nn / 'Include'}"))
    return core_lib.load(out)


@pytest.mark.parametrize(("strategy", "bits"), core_lib.CONFIGS)
def test_cmsis_nn_product_gives_the_same_bytes(cmsis_lib, strategy, bits):
    for op in (*core_lib.file_ops(strategy, bits), *core_lib.edge_ops()):
        status, kernel = core_lib.synthesize(cmsis_lib, op)
        assert status == "HTPW_OK", op.label
        np.testing.assert_array_equal(kernel, op.kernel, err_msg=op.label)
