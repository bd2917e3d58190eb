"""The few lines of plain PyTorch a user would otherwise write: poolbench's yardstick for speed
(benchmark row a) and for accuracy (`scripts/benchmark.py --accuracy`)."""

from __future__ import annotations

import time

import torch
from torch import Tensor
from torch.nn import functional as F

from poolbench.config import option_node
from poolbench.models.convnet import ConvNet


def make_net(head: str, seed: int = 0) -> ConvNet:
    torch.manual_seed(seed)
    return ConvNet(pool=option_node("pool", "max"), head=option_node("head", head))


def train_step(net: ConvNet, opt: torch.optim.Optimizer, x: Tensor, y: Tensor) -> None:
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def images_per_second(
    head: str, x: Tensor, y: Tensor, batch: int, steps: int, warmup: int
) -> float:
    """Training speed with poolbench's default optimizer (AdamW, lr 2e-3, wd 0.05), on the
    device that holds `x`."""
    net = make_net(head).to(x.device)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.05)
    perm = torch.randperm(len(x), device=x.device)
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(x.device)
            start = time.perf_counter()
        idx = perm[(step * batch) % (len(x) - batch) :][:batch]
        train_step(net, opt, x[idx], y[idx])
    synchronize(x.device)
    return steps * batch / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    # GPU work is queued: a clock read without waiting for it would time the queueing only.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def accuracy(net: ConvNet, x: Tensor, y: Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = sum(
        int((net(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
        for i in range(0, len(x), batch)
    )
    net.train()
    return correct / len(x)


def test_accuracy_per_epoch(
    head: str,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    epochs: int,
    batch: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """The textbook recipe: Adam at lr 1e-3, shuffled batches, no augmentation, no schedule."""
    net = make_net(head, seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = train
    g = torch.Generator().manual_seed(seed)
    accs = []
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch):
            train_step(net, opt, x[idx], y[idx])
        accs.append(accuracy(net, *test))
    return accs
