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
    """`trainer.precision=auto`: bf16 autocast only where it measured faster. On CPUs with native
    bf16 it is (x1.3-1.4); on a GPU these small nets are bound by kernel launches, not arithmetic,
    and float32 ran 4-6% faster than bf16-mixed (H200, batch 128; README, Performance)."""
    if not on_gpu(accelerator) and accelerator in ("cpu", "auto") and cpu_has_native_bf16():
        return "bf16-mixed"
    return "32-true"
