import pytest
import torch

from poolbench.training import devices


@pytest.mark.parametrize(
    ("accelerator", "cuda", "cpu_bf16", "expected"),
    [
        ("auto", True, True, "32-true"),  # GPU: launch-bound nets, float32 measured faster
        ("gpu", True, False, "32-true"),
        ("auto", False, True, "bf16-mixed"),  # CPU with AVX512-BF16 / AMX
        ("cpu", True, True, "bf16-mixed"),  # CPU forced on a GPU machine
        ("auto", False, False, "32-true"),  # CPU without native bf16: it would be slower
        ("cpu", False, False, "32-true"),
        ("mps", False, True, "32-true"),
    ],
)
def test_auto_precision_per_device(
    monkeypatch: pytest.MonkeyPatch,
    accelerator: str,
    cuda: bool,
    cpu_bf16: bool,
    expected: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: cpu_bf16)
    assert devices.auto_precision(accelerator) == expected
