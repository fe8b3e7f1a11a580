"""Folded ``.tflite`` bytes → hyper bytes: each generated filter becomes a ``HyperTinyPW`` custom op's output.

The rewrite only appends: new constant tensors (codes, heads, requant, signs, and each shared
generator tensor once), their buffers, one operator code, and one custom op inserted before the
CONV_2D that consumes the filter, plus the file's CRC-32 as a metadata entry written last (``seal``).
The filter tensor keeps its index, shape and per-channel quantization; only its buffer is emptied.
``expand`` undoes exactly this, so expanding a hyper file gives back the folded file. Tensor names,
roles and the input order are the ones the strategies declare (``hyper_tinypw_tf.storage.StoredTensor``,
``HyperGenerator.input_roles``), and each buffer's size is checked against its record.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hyper_tinypw_tf import synthesis
from hyper_tinypw_tf.export import _flatbuffer as fb
from hyper_tinypw_tf.export import format as fmt
from hyper_tinypw_tf.export.convert import GeneratedLayer
from hyper_tinypw_tf.export.slim import restore_zero_points, seal, sealed, slim_zero_points, strip_file_crc  # noqa: F401 (restore: public here too)  # noqa: F401 (seal: public here too)
from hyper_tinypw_tf.storage import StoredTensor

schema = fb.schema


def strategy_of(gen: GeneratedLayer) -> str:
    """The format's strategy name (the op variant) of an encoded generator, as its strategy declares it."""
    return gen.generator.format_name


def tensor_type(bits: int) -> int:
    """TFLite tensor type of an input of ``bits`` stored bits: INT4 (packed), INT8, INT32, UINT8 for sign bits."""
    types = {1: schema.TensorType.UINT8, 4: schema.TensorType.INT4, 8: schema.TensorType.INT8,
             32: schema.TensorType.INT32}
    return types[bits]


def file_shape(record: StoredTensor) -> list[int]:
    """The shape an input has in the file: its own, or for bits (1 per element) the byte count."""
    return [record.nbytes] if record.bits == 1 else list(record.shape)


def _payload(values: np.ndarray, bits: int) -> bytes:
    """Stored bytes of one input (int4 packed two per byte; bits already packed into bytes)."""
    values = np.asarray(values)
    if bits == 1:
        return values.astype(np.uint8).tobytes()
    if bits == 4:
        return synthesis.pack_int4(values).tobytes()
    return values.astype(np.int32 if bits == 32 else np.int8).tobytes()


def _add_tensor(model_t: schema.ModelT, record: StoredTensor, values: np.ndarray) -> int:
    raw = _payload(values, record.bits)
    if len(raw) != record.nbytes:
        raise RuntimeError(
            f"hyper: tensor {record.name!r} holds {len(raw)} bytes but its stored-tensor record counts "
            f"{record.nbytes}; accounting and export disagree"
        )
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(raw, np.uint8).copy()
    model_t.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name = record.name.encode()
    tensor.shape = np.array(file_shape(record), np.int32)
    tensor.type = tensor_type(record.bits)
    tensor.buffer = len(model_t.buffers) - 1
    subgraph = model_t.subgraphs[0]
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _custom_opcode(model_t: schema.ModelT) -> int:
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.CUSTOM
    code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = fmt.CUSTOM_OP_NAME.encode()
    code.version = 1
    model_t.operatorCodes.append(code)
    return len(model_t.operatorCodes) - 1


def options_for(gen: GeneratedLayer, mode: str, crc32: int) -> fmt.HyperOptions:
    """The custom options of one layer's op; ``crc32`` is ``format.inputs_crc32`` of its input buffers."""
    return fmt.HyperOptions(
        version=fmt.FORMAT_VERSION, mode=mode, strategy=strategy_of(gen), c_out=gen.layer.c_out,
        c_in=gen.layer.c_in, crc32=crc32, **gen.generator.options,
    )


def inputs_crc32(model_t: schema.ModelT, inputs: list[int]) -> int:
    """The ``crc32`` option of an op with these input tensor indices (their buffers, in input order)."""
    tensors = model_t.subgraphs[0].tensors
    return fmt.inputs_crc32(fb.buffer_bytes(model_t, tensors[i]) for i in inputs)


BUDGET = "budget"  # exporter-only mode: per layer boot (cached) or stream, chosen by budget_modes
EXPORT_MODES = (*fmt.MODES, BUDGET)


def budget_modes(costs: Mapping[str, tuple[int, int]], sram_budget: int) -> dict[str, str]:
    """Per layer "boot" (kernel cached in SRAM) or "stream" (synthesized at every inference).

    ``costs`` maps each layer to (kernel bytes, synthesis MACs). The cached kernels fit in
    ``sram_budget`` bytes and, among the sets that fit, save the most per-inference synthesis
    MACs (ties: fewer cached bytes, then the earlier layers): an exact 0/1 knapsack, kept as a
    Pareto front of (bytes, MACs saved), which stays small for the few layers a model has.
    """
    if isinstance(sram_budget, bool) or not isinstance(sram_budget, int) or sram_budget < 0:
        raise ValueError(f"sram_budget must be a non-negative integer of bytes, received sram_budget={sram_budget!r}")
    front: dict[int, tuple[int, tuple[str, ...]]] = {0: (0, ())}  # cached bytes → (MACs saved, layers)
    for name, (kernel_bytes, macs) in costs.items():
        grown = dict(front)
        for used, (saved, chosen) in front.items():
            total = used + kernel_bytes
            if total <= sram_budget and (total not in grown or grown[total][0] < saved + macs):
                grown[total] = (saved + macs, (*chosen, name))
        front, best = {}, -1
        for used in sorted(grown):  # drop dominated entries: more bytes for no more MACs saved
            if grown[used][0] > best:
                front[used], best = grown[used], grown[used][0]
    cached = set(max(front.items(), key=lambda item: (item[1][0], -item[0]))[1][1])
    return {name: fmt.MODE_BOOT if name in cached else fmt.MODE_STREAM for name in costs}


def budget_table(layers: list[GeneratedLayer], modes: Mapping[str, str], costs: Mapping[str, tuple[int, int]],
                 sram_budget: int) -> str:
    """The budget choice per layer, for the export report."""
    rows = [f"{'layer':<24}{'kernel bytes':>14}{'synthesis MACs':>16}  mode"]
    for gen in layers:
        kernel_bytes, macs = costs[gen.name]
        rows.append(f"{gen.name:<24}{kernel_bytes:>14,}{macs:>16,}  {modes[gen.name]}")
    cached = sum(costs[g.name][0] for g in layers if modes[g.name] == fmt.MODE_BOOT)
    streamed = sum(costs[g.name][1] for g in layers if modes[g.name] == fmt.MODE_STREAM)
    rows.append(f"cached kernels {cached:,} of {sram_budget:,} budget bytes; synthesis per inference {streamed:,} MACs")
    return "\n".join(rows)


def layer_modes(layers: list[GeneratedLayer], mode: str, sram_budget: int | None = None,
                synthesis_macs: Mapping[str, int] | None = None) -> dict[str, str]:
    """Each layer's op mode: ``mode`` for all, or with ``mode="budget"`` the :func:`budget_modes` choice."""
    if mode not in EXPORT_MODES:
        raise ValueError(f"to_hyper: mode must be one of {EXPORT_MODES}, received mode={mode!r}")
    if mode != BUDGET:
        if sram_budget is not None:
            raise ValueError(f"sram_budget applies to mode='budget' only, received mode={mode!r}")
        return {gen.name: mode for gen in layers}
    if sram_budget is None or synthesis_macs is None:
        raise ValueError("mode='budget' needs sram_budget (bytes) and the layers' synthesis MACs")
    return budget_modes(budget_costs(layers, synthesis_macs), sram_budget)


def budget_costs(layers: list[GeneratedLayer], synthesis_macs: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """(kernel bytes, synthesis MACs) per layer; the bytes are the int8 kernel the op materializes."""
    missing = [gen.name for gen in layers if gen.name not in synthesis_macs]
    if missing:
        raise ValueError(f"budget: no synthesis MACs given for layer {missing[0]!r}")
    return {gen.name: (int(gen.kernel.size), int(synthesis_macs[gen.name])) for gen in layers}


def to_hyper(folded: bytes, layers: list[GeneratedLayer], *, mode: str = fmt.MODE_BOOT,
             sram_budget: int | None = None, synthesis_macs: Mapping[str, int] | None = None) -> bytes:
    """Replace each generated layer's filter in ``folded`` by a ``HyperTinyPW`` op making it.

    Args:
      folded: bytes from ``convert.convert_model`` of the same model.
      layers: ``convert.generated_layers(model)``.
      mode: one of ``format.MODES``, how the device keeps the kernels (docs/format.md §4), or
        "budget": per layer boot or stream (:func:`budget_modes`), written into each op's options.
      sram_budget: bytes of SRAM for cached kernels (mode="budget" only).
      synthesis_macs: layer name → MACs to synthesize its kernel (mode="budget" only).

    Raises:
      ValueError: a bad mode, no generated layer, or a folded filter that is not the synthesized one.
    """
    modes = layer_modes(layers, mode, sram_budget, synthesis_macs)
    if not layers:
        raise ValueError("to_hyper: the model has no HyperPWConv2D layer; export it with fmt='folded'")
    model_t = fb.read(folded, "folded model")
    subgraph = model_t.subgraphs[0]
    if any(fb.op_name(model_t, op) == fmt.CUSTOM_OP_NAME for op in subgraph.operators):
        raise ValueError(f"to_hyper: the model already has {fmt.CUSTOM_OP_NAME} ops; is it a hyper file?")
    strip_file_crc(model_t)  # the folded file's own; the hyper file gets a new one, written last
    opcode = _custom_opcode(model_t)
    shared: dict[str, int] = {}
    for gen in layers:
        kernel_name = f"{gen.name}/kernel"
        index = fb.find_tensor(subgraph, kernel_name)
        filt = subgraph.tensors[index]
        if fb.buffer_bytes(model_t, filt) != gen.kernel.astype(np.int8).tobytes() or not np.array_equal(
            np.asarray(filt.quantization.scale, np.float32), gen.scales
        ):
            raise ValueError(
                f"to_hyper: tensor {kernel_name!r} of the folded model is not the synthesized kernel of layer "
                f"{gen.name!r}; export the folded model from this model"
            )
        records = {r.role: r for r in (*gen.shared_tensors, *gen.layer_tensors)}
        values = {**gen.generator.tensors, **gen.layer.tensors}
        shared_roles = {r.role for r in gen.shared_tensors}
        inputs = []
        for role in gen.input_roles:
            record = records[role]
            if role in shared_roles:
                if record.name not in shared:
                    shared[record.name] = _add_tensor(model_t, record, values[role])
                inputs.append(shared[record.name])
            else:
                inputs.append(_add_tensor(model_t, record, values[role]))
        fb.set_buffer(model_t, filt, None)
        op = schema.OperatorT()
        op.opcodeIndex = opcode
        op.inputs = np.array(inputs, np.int32)
        op.outputs = np.array([index], np.int32)
        options = options_for(gen, modes[gen.name], inputs_crc32(model_t, inputs))
        op.customOptions = np.frombuffer(fmt.encode_options(options), np.uint8).copy()
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        consumer = next(i for i, o in enumerate(subgraph.operators) if index in list(o.inputs))
        subgraph.operators.insert(consumer, op)
    slim_zero_points(model_t)
    return sealed(model_t)
