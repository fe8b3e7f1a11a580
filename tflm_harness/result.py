"""What a TFLM runner gives back, whatever the target: outputs, statistics, kernels, or a refusal.

Shared by the host runner (``run.py``) and the Cortex-M4 runner under QEMU (``qemu.py``), so both
targets return the same record and fail with the same error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RunResult:
    """What one run of a model gave: int8 outputs (one row per example) and the runner's statistics."""

    outputs: np.ndarray
    stats: dict[str, object]
    kernels: dict[int, bytes] = field(default_factory=dict)  # output tensor index → synthesized kernel


class ModelError(ValueError):
    """The runner refused the model: ``status`` is the htpw_status name (e.g. ``HTPW_ERR_CRC``) or its own."""

    def __init__(self, model: str, status: str, phase: str, tensor: int) -> None:
        where = f" (HyperTinyPW op writing tensor {tensor})" if tensor >= 0 else ""
        super().__init__(f"{model}: the TFLM runner failed in {phase}{where}: {status}")
        self.status, self.phase, self.tensor = status, phase, tensor


def read_kernels(raw: bytes) -> dict[int, bytes]:
    """Records [int32 tensor index][int32 byte count][bytes] (the runners' --kernels dump) → the last
    kernel made for each tensor."""
    kernels, offset = {}, 0
    while offset < len(raw):
        tensor, size = struct.unpack_from("<ii", raw, offset)
        offset += 8
        kernels[tensor] = raw[offset:offset + size]
        offset += size
    return kernels
