import pytest
import torch

from poolbench import devices


@pytest.mark.parametrize(
    ("accelerator", "cuda", "cuda_bf16", "cpu_bf16", "expected"),
    [
        ("auto", True, True, False, "bf16-mixed"),  # GPU with bf16 (A100, H100)
        ("gpu", True, False, True, "16-mixed"),  # older GPUs: fp16 autocast + loss scaling
        ("auto", False, False, True, "bf16-mixed"),  # CPU with AVX512-BF16 / AMX
        ("cpu", True, True, True, "bf16-mixed"),  # CPU forced on a GPU machine
        ("auto", False, False, False, "32-true"),  # CPU without native bf16: it would be slower
        ("cpu", False, False, False, "32-true"),
        ("mps", False, False, True, "32-true"),
    ],
)
def test_auto_precision_per_device(
    monkeypatch: pytest.MonkeyPatch,
    accelerator: str,
    cuda: bool,
    cuda_bf16: bool,
    cpu_bf16: bool,
    expected: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: cpu_bf16)
    assert devices.auto_precision(accelerator) == expected
