"""Per-device defaults, chosen from the benchmark's figures (docs/performance.md)."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import torch


def on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def cpu_has_native_bf16() -> bool:
    # AVX512-BF16 or AMX: without them bf16 matmuls are emulated and slower than float32.
    mkldnn = torch.backends.mkldnn.is_available()
    return bool(mkldnn and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def auto_precision(accelerator: str) -> str:
    """`trainer.precision=auto`: bf16 autocast only where it measured faster. On CPUs with native
    bf16 it is (x1.3-1.4); on a GPU these small nets are bound by kernel launches, not arithmetic,
    and float32 ran 4-6% faster than bf16-mixed (H200, batch 128; docs/performance.md)."""
    if not on_gpu(accelerator) and accelerator in ("cpu", "auto") and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def where_it_runs(accelerator: str, root_device: torch.device, devices: int) -> dict[str, Any]:
    """Where a job ran, for results.json and the W&B config: a sweep spread over GPUs and
    machines can then be traced job by job."""
    gpu = root_device.type == "cuda"
    return {
        "host": socket.gethostname(),
        "accelerator": accelerator,
        "name": torch.cuda.get_device_name(root_device) if gpu else cpu_name(),
        "count": devices,  # processes x nodes: one device each
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def precision_plugin(precision: str, device_type: str = "cpu") -> Any:
    """Lightning's own precision plugin for a `trainer.precision` value, for forward passes
    outside a Trainer (embed, pictures): the weights' dtype (convert_module), the inputs'
    (convert_input) and the autocast (forward_context) are the Trainer's for that precision."""
    from lightning.fabric.plugins import DoublePrecision, HalfPrecision, MixedPrecision, Precision

    precision = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}.get(
        str(precision), str(precision)
    )
    if precision == "auto":
        precision = auto_precision(device_type)
    if precision.endswith("-mixed"):
        return MixedPrecision(precision, device_type)
    if precision in ("bf16-true", "16-true"):
        return HalfPrecision(precision)
    if precision == "64-true":
        return DoublePrecision()
    return Precision()  # 32-true
