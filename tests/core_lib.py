"""Shared helpers of the C-core tests: build tflm_harness/core, mirror htpw_op.h in ctypes, read ops from files.

The valid ops every C test starts from come from real hyper files (``export.api.export_model`` of a
tiny untrained model), read the way a TFLM kernel reads them: options from the flexbuffer,
inputs as (type, shape, raw buffer bytes). The expected kernels are ``expand``'s.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf import low_rank, models, synthesis
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import api, expand
from hyper_tinypw_tf.export import format as fmt
from tflm_harness.build import core_sources

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "tflm_harness" / "core"
FUZZ = ROOT / "tflm_harness" / "fuzz"
CORE_SOURCES = tuple(core_sources())  # the one list every build reads
CASE_SOURCES = (FUZZ / "htpw_case.c",)
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")

# htpw_type of each TFLite tensor type the op reads (htpw_op.h).
HTPW_TYPE = {
    fb.schema.TensorType.INT8: 0, fb.schema.TensorType.INT4: 1, fb.schema.TensorType.INT32: 2,
    fb.schema.TensorType.UINT8: 3,
}
MAX_RANK = 4

# Tiny hyper models: every strategy with int8 and with int4 codes and weights.
# Odd code and hidden sizes and channel counts that are no multiple of the tile, so int4 tensors
# end on a half byte, tiles are padded and sign bytes are partly used.
_BASE = {
    "tiled": {"strategy": "tiled", "config": {"tile_size": 8, "code_dim": 3, "hidden_dim": 15}},
    "paper_dense": {"strategy": "paper", "config": {"head": "dense", "code_dim": 3, "hidden_dim": 7}},
    "paper_factorized": {"strategy": "paper", "config": {"head": "factorized", "code_dim": 3, "hidden_dim": 15,
                                                         "max_in_channels": 40}},
    "low_rank": {"strategy": "low_rank", "config": {"rank": 5}},
}
CONFIGS = tuple((strategy, bits) for strategy in _BASE for bits in (8, 4))


def compiler(name: str) -> str:
    """Path of a C compiler the test needs; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed to build tflm_harness/core (apt-get install {name})")
    return path


def build(out: Path, sources: tuple[Path, ...], flags: tuple[str, ...], cc: str = "gcc") -> Path:
    """Compile ``sources`` with the core and fuzz folders on the include path."""
    subprocess.run(
        [compiler(cc), *flags, f"-I{CORE}", f"-I{FUZZ}", *map(str, sources), "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    return out


class Input(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_int32), ("type", ctypes.c_int32),
                ("rank", ctypes.c_int32), ("dims", ctypes.c_int32 * MAX_RANK)]


class Options(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "version", "mode", "strategy", "c_out", "c_in", "code_dim", "hidden_dim", "tile_size", "code_bits",
        "weight_bits")] + [("crc32", ctypes.c_uint32)]


class FileInfo(ctypes.Structure):
    """``htpw_file_info`` (htpw_file.h)."""

    _fields_ = [("has_crc", ctypes.c_int32), ("crc_offset", ctypes.c_int32), ("hyper_ops", ctypes.c_int32),
                ("stored_crc", ctypes.c_uint32), ("computed_crc", ctypes.c_uint32)]


def load(path: Path) -> ctypes.CDLL:
    """The core as a ctypes library with the argument types of htpw_op.h."""
    lib = ctypes.CDLL(str(path))
    ptr, i32 = ctypes.c_void_p, ctypes.c_int32
    lib.htpw_status_name.restype = ctypes.c_char_p
    lib.htpw_status_name.argtypes = [ctypes.c_int]
    lib.htpw_crc32.restype = ctypes.c_uint32
    lib.htpw_crc32.argtypes = [ctypes.c_uint32, ptr, i32]
    lib.htpw_requantize.restype = i32
    lib.htpw_requantize.argtypes = [i32, i32, i32]
    for name in ("htpw_mode_from_string", "htpw_strategy_from_string", "htpw_option_from_key"):
        getattr(lib, name).argtypes = [ctypes.c_char_p, i32, ptr]
    lib.htpw_options_set_int.argtypes = [ptr, ctypes.c_int, ctypes.c_int64]
    lib.htpw_options_validate.argtypes = [ptr]
    lib.htpw_op_validate.argtypes = [ptr, ptr, i32]
    lib.htpw_op_validate_at.argtypes = [ptr, ptr, i32, ptr]
    lib.htpw_op_kernel_bytes.argtypes = [ptr, ptr]
    lib.htpw_op_scratch_bytes.argtypes = [ptr, ptr, i32, ptr]
    lib.htpw_op_synthesize.argtypes = [ptr, ptr, i32, ptr, i32, ptr, i32]
    lib.htpw_file_check.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ptr]
    lib.htpw_tiled_scratch_bytes.argtypes = [ptr, i32, i32]
    lib.htpw_paper_scratch_bytes.argtypes = [ptr, i32, i32]
    lib.htpw_channel_quantize_row.argtypes = [ptr, i32, ctypes.c_int, ptr]
    lib.htpw_mat_mult_s32.argtypes = [ptr, ptr, i32, i32, i32, ptr]
    lib.htpw_tiled_synthesize.argtypes = [ptr, ptr, i32, ptr, ptr, ptr, i32, i32, ptr, i32, ptr]
    lib.htpw_paper_synthesize.argtypes = [ptr, i32, ptr, ptr, i32, ptr, ptr, ptr, i32, i32, ptr, i32, ptr]
    return lib


@functools.cache
def _session_library(base: Path) -> ctypes.CDLL:
    (base / "core_lib").mkdir(exist_ok=True)
    return load(build(base / "core_lib" / "libhtpw.so", CORE_SOURCES, (*STRICT, "-O2", "-shared", "-fPIC")))


@pytest.fixture(scope="session", name="lib")
def library(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The core, built once per session: a test module takes it as ``lib = core_lib.library``."""
    return _session_library(tmp_path_factory.getbasetemp())


def file_check(lib: ctypes.CDLL, data: bytes) -> tuple[str, FileInfo]:
    """(status name, info) of ``htpw_file_check`` on ``data``."""
    info = FileInfo()
    return status_name(lib, lib.htpw_file_check(data, len(data), ctypes.byref(info))), info


def status_name(lib: ctypes.CDLL, status: int) -> str:
    return lib.htpw_status_name(status).decode()


@dataclass(frozen=True)
class RawInput:
    """One op input as the kernel sees it: htpw_type, shape, and the buffer's bytes."""

    type: int
    shape: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class Op:
    """One HyperTinyPW op of a file: decoded options, inputs, and expand's kernel for it."""

    label: str
    options: fmt.HyperOptions
    inputs: tuple[RawInput, ...]
    kernel: np.ndarray  # int8 (C_out, C_in) from export.expand.synthesize_op

    def with_input(self, index: int, **changes: object) -> Op:
        inputs = list(self.inputs)
        inputs[index] = replace(inputs[index], **changes)
        return replace(self, inputs=tuple(inputs))


def generator_config(strategy: str, bits: int) -> dict:
    config = {"strategy": _BASE[strategy]["strategy"], "config": dict(_BASE[strategy]["config"])}
    if bits == 4:
        config["config"].update(code_bits=4, weight_bits=4)
    return config


@functools.cache
def hyper_file(strategy: str, bits: int) -> bytes:
    """A tiny untrained ECG hyper file, generated layers 12->20 and 20->28, of one strategy and bit width.

    BatchNorm gains are random with both signs, so the sign bits of the op are exercised.
    """
    from hyper_tinypw_tf._keras import keras

    keras.utils.set_random_seed(0)
    backbone = models.Backbone(
        input_shape=(64, 1, 1), stem_channels=8, stem_kernel=(5, 1), stem_strides=(2, 2),
        channels=(12, 20, 28), strides=((2, 2), (2, 2), (1, 1)), dw_kernel=(3, 1),
    )
    model = models.build_backbone(backbone, 2, pw="hyper", generator=generator_config(strategy, bits))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n), rng.normal(0, 0.1, n),
                               rng.normal(0, 0.1, n), rng.uniform(0.5, 2.0, n)])
    data = rng.normal(size=(4, 64, 1, 1)).astype(np.float32)
    return api.export_model(model, fmt="hyper", representative_data=data)


@functools.cache
def file_ops(strategy: str, bits: int) -> tuple[Op, ...]:
    """Every HyperTinyPW op of :func:`hyper_file`, read from the flatbuffer."""
    model_t = fb.read(hyper_file(strategy, bits))
    subgraph = model_t.subgraphs[0]
    ops = []
    for number, op in enumerate(subgraph.operators):
        if fb.op_name(model_t, op) != fmt.CUSTOM_OP_NAME:
            continue
        label = f"{strategy}/int{bits} op {number}"
        options = fmt.decode_options(np.asarray(op.customOptions, np.uint8).tobytes())
        inputs = []
        for index in op.inputs:
            tensor = subgraph.tensors[int(index)]
            inputs.append(RawInput(HTPW_TYPE[tensor.type], tuple(int(d) for d in tensor.shape),
                                   fb.buffer_bytes(model_t, tensor)))
        _, kernel = expand.synthesize_op(model_t, op, label)
        ops.append(Op(label, options, tuple(inputs), kernel))
    assert ops, f"{strategy}/int{bits}: the exported file has no {fmt.CUSTOM_OP_NAME} op"
    return tuple(ops)


def options_struct(lib: ctypes.CDLL, options: fmt.HyperOptions) -> Options:
    """htpw_options of decoded options; mode and strategy ids come from the core's own parsers."""
    mode, strategy = ctypes.c_int(), ctypes.c_int()
    assert lib.htpw_mode_from_string(options.mode.encode(), len(options.mode), ctypes.byref(mode)) == 0
    assert lib.htpw_strategy_from_string(options.strategy.encode(), len(options.strategy),
                                         ctypes.byref(strategy)) == 0
    return Options(options.version, mode.value, strategy.value, options.c_out, options.c_in, options.code_dim,
                   options.hidden_dim, options.tile_size, options.code_bits, options.weight_bits, options.crc32)


class CInputs:
    """An htpw_input array over copies of the inputs' bytes, kept alive with it."""

    def __init__(self, inputs: tuple[RawInput, ...]):
        self.buffers = [ctypes.create_string_buffer(raw.data, max(len(raw.data), 1)) for raw in inputs]
        self.array = (Input * max(len(inputs), 1))()
        for slot, raw, buffer in zip(self.array, inputs, self.buffers, strict=False):
            slot.data = ctypes.cast(buffer, ctypes.c_void_p)
            slot.bytes = len(raw.data)
            slot.type = raw.type
            slot.rank = len(raw.shape)
            for d, size in enumerate(raw.shape[:MAX_RANK]):
                slot.dims[d] = size
        self.count = len(inputs)


def synthesize(lib: ctypes.CDLL, op: Op) -> tuple[str, np.ndarray | None]:
    """(status name, kernel) of htpw_op_validate then htpw_op_synthesize on ``op``."""
    options = options_struct(lib, op.options)
    inputs = CInputs(op.inputs)
    status = lib.htpw_op_validate(ctypes.byref(options), inputs.array, inputs.count)
    if status != 0:
        return status_name(lib, status), None
    kernel_bytes, scratch_bytes = ctypes.c_int32(), ctypes.c_int32()
    assert lib.htpw_op_kernel_bytes(ctypes.byref(options), ctypes.byref(kernel_bytes)) == 0
    assert lib.htpw_op_scratch_bytes(ctypes.byref(options), inputs.array, inputs.count,
                                     ctypes.byref(scratch_bytes)) == 0
    scratch = (ctypes.c_int32 * (scratch_bytes.value // 4 + 1))()
    kernel = np.zeros((op.options.c_out, op.options.c_in), np.int8)
    status = lib.htpw_op_synthesize(ctypes.byref(options), inputs.array, inputs.count, scratch,
                                    scratch_bytes.value, kernel.ctypes.data, kernel_bytes.value)
    return status_name(lib, status), kernel


# ---- case files (tflm_harness/fuzz/htpw_case.h) --------------------------------------------

_OPTION_FIELDS = ("version", "mode", "strategy", "c_out", "c_in", "code_dim", "hidden_dim", "tile_size",
                  "code_bits", "weight_bits")


def encode_case(options: Options, inputs: tuple[RawInput, ...]) -> bytes:
    """The htpw_case bytes of one op (options given as the C struct, so any int32 value fits)."""
    out = [struct.pack("<10iIi", *(getattr(options, f) for f in _OPTION_FIELDS), options.crc32, len(inputs))]
    for raw in inputs:
        dims = (list(raw.shape) + [0] * MAX_RANK)[:MAX_RANK]
        out.append(struct.pack("<2i4ii", raw.type, len(raw.shape), *dims, len(raw.data)))
        out.append(raw.data)
    return b"".join(out)


# ---- malformed ops, one property each -------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One op handed to the core, and the status htpw_op_validate must return for it."""

    label: str
    options: Options
    inputs: tuple[RawInput, ...]
    expected: str
    failed_input: int = -1  # what htpw_op_validate_at names (-1: not one input)


def _options(lib: ctypes.CDLL, op: Op, **fields: int) -> Options:
    options = options_struct(lib, op.options)
    for name, value in fields.items():
        setattr(options, name, value)
    return options


def _other_types(htpw_type: int) -> list[int]:
    return [t for t in HTPW_TYPE.values() if t != htpw_type]


def malformed_cases(lib: ctypes.CDLL, op: Op) -> list[Case]:
    """Mutated options, truncated or padded tensors, wrong shapes, types, bit widths, counts, requant and CRC."""
    strategy = op.options.strategy
    roles = fmt.INPUT_ROLES[strategy]
    cases = []

    def add(label: str, expected: str, inputs: tuple[RawInput, ...] | None = None, failed: int = -1,
            **fields: int) -> None:
        cases.append(Case(f"{op.label}: {label}", _options(lib, op, **fields),
                          op.inputs if inputs is None else inputs, expected, failed))

    # Options out of their ranges (docs/format.md §3).
    for value in (fmt.FORMAT_VERSION + 1, 0, -1):
        add(f"version={value}", "HTPW_ERR_OPTION_VERSION", version=value)
    for field, values in (("mode", (-1, len(fmt.MODES))), ("strategy", (-1, len(fmt.STRATEGIES)))):
        for value in values:
            add(f"{field} id {value}", f"HTPW_ERR_OPTION_{field.upper()}", **{field: value})
    for field in ("c_out", "c_in", "code_dim", "hidden_dim"):
        for value in (0, -1, fmt.MAX_DIM + 1, 2**31 - 1):
            add(f"{field}={value}", f"HTPW_ERR_OPTION_{field.upper()}", **{field: value})
    for field in ("code_bits", "weight_bits"):
        for value in (0, 2, 7, 16, -8):
            add(f"{field}={value}", f"HTPW_ERR_OPTION_{field.upper()}", **{field: value})
    tile_values = (0, 256, -1) if strategy == fmt.TILED else (1, 8)
    for value in tile_values:
        add(f"tile_size={value}", "HTPW_ERR_OPTION_TILE_SIZE", tile_size=value)
    if strategy == fmt.PAPER_FACTORIZED:
        add("hidden_dim=1025 for paper_factorized", "HTPW_ERR_OPTION_HIDDEN_DIM", hidden_dim=1025)
    # Valid options that disagree with the tensors: the bit widths, then the shapes.
    first_weight = roles.index(fmt.ROLE_V if strategy == fmt.LOW_RANK else fmt.ROLE_W1)
    add("code_bits flipped", "HTPW_ERR_INPUT_TYPE", failed=0, code_bits=12 - op.options.code_bits)
    add("weight_bits flipped", "HTPW_ERR_INPUT_TYPE", failed=first_weight,
        weight_bits=12 - op.options.weight_bits)
    if strategy == fmt.LOW_RANK:  # code_dim is the rank, as hidden_dim: the options disagree first
        add("code_dim + 1", "HTPW_ERR_OPTION_CODE_DIM", code_dim=op.options.code_dim + 1)
        rank = op.options.hidden_dim + 1
        add("rank + 1", "HTPW_ERR_INPUT_SHAPE", failed=0, code_dim=rank, hidden_dim=rank)
    else:
        add("code_dim + 1", "HTPW_ERR_INPUT_SHAPE", failed=0, code_dim=op.options.code_dim + 1)
    # Input counts.
    add("one input missing", "HTPW_ERR_INPUT_COUNT", inputs=op.inputs[:-1])
    add("one input extra", "HTPW_ERR_INPUT_COUNT", inputs=op.inputs + op.inputs[-1:])
    add("no inputs", "HTPW_ERR_INPUT_COUNT", inputs=())
    # Each input: truncated, padded, re-shaped, re-typed.
    for i, (role, raw) in enumerate(zip(roles, op.inputs, strict=True)):
        def changed(**kw: object) -> tuple[RawInput, ...]:
            return op.with_input(i, **kw).inputs  # noqa: B023 (called at once)

        add(f"{role} truncated by one byte", "HTPW_ERR_INPUT_BYTES", changed(data=raw.data[:-1]), i)
        add(f"{role} one byte too long", "HTPW_ERR_INPUT_BYTES", changed(data=raw.data + b"\0"), i)
        add(f"{role} empty", "HTPW_ERR_INPUT_BYTES", changed(data=b""), i)
        add(f"{role} rank + 1", "HTPW_ERR_INPUT_SHAPE", changed(shape=raw.shape + (1,)), i)
        add(f"{role} rank 0", "HTPW_ERR_INPUT_SHAPE", changed(shape=()), i)
        add(f"{role} first dim + 1", "HTPW_ERR_INPUT_SHAPE", changed(shape=(raw.shape[0] + 1, *raw.shape[1:])), i)
        add(f"{role} negative dim", "HTPW_ERR_INPUT_SHAPE", changed(shape=(-raw.shape[0], *raw.shape[1:])), i)
        for other in _other_types(raw.type):
            add(f"{role} type {other}", "HTPW_ERR_INPUT_TYPE", changed(type=other), i)
    if strategy == fmt.PAPER_FACTORIZED:
        i = roles.index(fmt.ROLE_B_SHARED)
        raw = op.inputs[i]
        add("b_shared narrower than c_in", "HTPW_ERR_INPUT_SHAPE",
            op.with_input(i, shape=(raw.shape[0], op.options.c_in - 1)).inputs, i)
    # Requantization out of range (the strategies with a micro-MLP).
    if fmt.ROLE_REQUANT in roles:
        r = roles.index(fmt.ROLE_REQUANT)
        multiplier, shift = struct.unpack("<2i", op.inputs[r].data)
        for m, n, expected in ((2**30 - 1, shift, "MULTIPLIER"), (-(2**31), shift, "MULTIPLIER"),
                               (0, shift, "MULTIPLIER"), (multiplier, 31, "SHIFT"), (multiplier, -32, "SHIFT")):
            add(f"requant ({m}, {n})", f"HTPW_ERR_{expected}", op.with_input(r, data=struct.pack("<2i", m, n)).inputs,
                r)
    # Integrity: one flipped bit in any input, or in the option.
    for i, (role, raw) in enumerate(zip(roles, op.inputs, strict=True)):
        if role == fmt.ROLE_REQUANT:
            continue  # a flipped requant bit may leave the range first; covered above
        flipped = bytes([raw.data[0] ^ 0x10]) + raw.data[1:]
        add(f"{role} bit flipped", "HTPW_ERR_CRC", op.with_input(i, data=flipped).inputs)
    add("crc32 option off by one bit", "HTPW_ERR_CRC", crc32=op.options.crc32 ^ 1)
    return cases


# ---- synthetic ops at the edges of docs/format.md's ranges ----------------------------------

def _stored(values: np.ndarray, bits: int) -> RawInput:
    values = np.asarray(values)
    raw = synthesis.pack_int4(values).tobytes() if bits == 4 else values.astype(np.int8).tobytes()
    return RawInput(HTPW_TYPE[fb.schema.TensorType.INT4 if bits == 4 else fb.schema.TensorType.INT8],
                    tuple(values.shape), raw)


def synthetic_op(strategy: str, bits: int, *, c_out: int, c_in: int, d_z: int, d_h: int, tile: int = 0,
                 b_cols: int = 0, extreme: bool = False, seed: int = 0, real: float = 0.01) -> Op:
    """An op built from integers per docs/format.md §2, expected kernel from the numpy reference.

    ``extreme``: every stored value at the negative end (-128, or -8 for int4) and the hidden
    activation saturated at 127, so each accumulation reaches the largest magnitude the limits allow.
    ``real``: the hidden requantization multiplier (its shift picks the requantize path).
    """
    rng = np.random.default_rng(seed)
    low, high = (-8, 7) if bits == 4 else (-128, 127)

    def values(*shape: int) -> np.ndarray:
        return np.full(shape, low, np.int64) if extreme else rng.integers(low, high + 1, shape)

    if strategy == fmt.LOW_RANK:
        return _low_rank_op(bits, c_out, c_in, d_h, values, synthesis.pack_signs(rng.random(c_out) < 0.5))
    tiles = synthesis.tile_grid(c_out, c_in, tile) if strategy == fmt.TILED else (1, 1)
    codes, w1 = values(tiles[0] * tiles[1], d_z), values(d_z, d_h)
    b1 = np.full(d_h, 2**31 - 1 if extreme else 0, np.int64) + (0 if extreme else rng.integers(-5000, 5000, d_h))
    requant = synthesis.Requant(2**30, 0) if extreme else synthesis.Requant(*synthesis.quantize_multiplier(real))
    signs = synthesis.pack_signs(rng.random(c_out) < 0.5)
    inputs = [_stored(codes, bits), _stored(w1, bits),
              RawInput(HTPW_TYPE[fb.schema.TensorType.INT32], (d_h,), b1.astype("<i4").tobytes())]
    if strategy == fmt.TILED:
        extra = values(d_h, tile * tile)
        acc = synthesis.tiled_accumulators(codes, w1, b1, extra, requant, c_out, c_in, tile)
        inputs.append(_stored(extra, bits))
    elif strategy == fmt.PAPER_DENSE:
        extra = values(d_h, c_out * c_in)
        acc = synthesis.paper_dense_accumulators(codes, w1, b1, extra, requant, c_out, c_in)
        inputs.append(_stored(extra, bits))
    else:
        head, b_shared = values(c_out, d_h), values(d_h, b_cols)
        acc = synthesis.paper_factorized_accumulators(codes, w1, b1, head, b_shared, requant, c_out, c_in)
        inputs += [_stored(head, bits), _stored(b_shared, bits)]
    inputs += [RawInput(HTPW_TYPE[fb.schema.TensorType.INT32], (2,),
                        np.array([requant.multiplier, requant.shift], "<i4").tobytes()),
               RawInput(HTPW_TYPE[fb.schema.TensorType.UINT8], (signs.size,), signs.tobytes())]
    kernel, _ = synthesis.finish_kernel(acc, signs)
    options = fmt.HyperOptions(
        version=fmt.FORMAT_VERSION, mode=fmt.MODE_STREAM, strategy=strategy, c_out=c_out, c_in=c_in, code_dim=d_z,
        hidden_dim=d_h, tile_size=tile, code_bits=bits, weight_bits=bits,
        crc32=fmt.inputs_crc32(raw.data for raw in inputs),
    )
    return Op(f"synthetic {strategy}/int{bits} {c_out}x{c_in}", options, tuple(inputs), kernel)


def _low_rank_op(bits: int, c_out: int, c_in: int, rank: int, values, signs: np.ndarray) -> Op:  # noqa: ANN001
    """A low_rank op: inputs u [c_out, r], v [r, c_in], signs; no micro-MLP, code_dim = hidden_dim = r."""
    u, v = values(c_out, rank), values(rank, c_in)
    inputs = (_stored(u, bits), _stored(v, bits),
              RawInput(HTPW_TYPE[fb.schema.TensorType.UINT8], (signs.size,), signs.tobytes()))
    kernel, _ = synthesis.finish_kernel(low_rank.low_rank_accumulators(u, v), signs)
    options = fmt.HyperOptions(
        version=fmt.FORMAT_VERSION, mode=fmt.MODE_STREAM, strategy=fmt.LOW_RANK, c_out=c_out, c_in=c_in,
        code_dim=rank, hidden_dim=rank, tile_size=0, code_bits=bits, weight_bits=bits,
        crc32=fmt.inputs_crc32(raw.data for raw in inputs),
    )
    return Op(f"synthetic {fmt.LOW_RANK}/int{bits} {c_out}x{c_in}", options, inputs, kernel)


@functools.cache
def edge_ops() -> tuple[Op, ...]:
    """Ops at the limits: the largest int32 sums, a 255 tile, single channels, odd int4 counts."""
    return (
        synthetic_op(fmt.PAPER_FACTORIZED, 8, c_out=3, c_in=5, d_z=1, d_h=synthesis.MAX_FACTOR_RANK, b_cols=7,
                     extreme=True),
        synthetic_op(fmt.PAPER_DENSE, 8, c_out=1, c_in=1, d_z=1, d_h=synthesis.MAX_DENSE_TERMS, extreme=True),
        synthetic_op(fmt.TILED, 8, c_out=1, c_in=2, d_z=1, d_h=synthesis.MAX_DENSE_TERMS, tile=1, extreme=True),
        synthetic_op(fmt.TILED, 4, c_out=3, c_in=300, d_z=3, d_h=5, tile=fmt.MAX_TILE_SIZE, seed=1),
        synthetic_op(fmt.TILED, 4, c_out=1, c_in=1, d_z=1, d_h=1, tile=1, seed=2),
        synthetic_op(fmt.PAPER_FACTORIZED, 4, c_out=9, c_in=1, d_z=5, d_h=3, b_cols=1, seed=3),
        synthetic_op(fmt.PAPER_DENSE, 4, c_out=7, c_in=3, d_z=3, d_h=5, extreme=True),
        synthetic_op(fmt.TILED, 8, c_out=9, c_in=10, d_z=2, d_h=7, tile=3, seed=4, real=3.0),  # shift 2
        synthetic_op(fmt.TILED, 8, c_out=4, c_in=5, d_z=3, d_h=2, tile=2, seed=5, real=0.75),  # shift 0
        synthetic_op(fmt.LOW_RANK, 8, c_out=1, c_in=2, d_z=synthesis.MAX_DENSE_TERMS, d_h=synthesis.MAX_DENSE_TERMS,
                     extreme=True),
        synthetic_op(fmt.LOW_RANK, 4, c_out=9, c_in=7, d_z=3, d_h=3, seed=6),
    )
