"""Per-device defaults, chosen from the benchmark's figures (README, Performance)."""

from __future__ import annotations

import torch


def on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def cpu_has_native_bf16() -> bool:
    # AVX512-BF16 or AMX: without them bf16 matmuls are emulated and slower than float32.
    mkldnn = torch.backends.mkldnn.is_available()
    return bool(mkldnn and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def auto_precision(accelerator: str) -> str:
    """`trainer.precision=auto`: bf16 autocast where the hardware runs it natively."""
    if on_gpu(accelerator):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("cpu", "auto") and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"
