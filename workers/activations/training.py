"""Train a tiny model with a candidate activation and measure it: one seed, one run.

The loop, in full: AdamW (weight decay on the weight matrices only: biases, norms,
embeddings and the activations' own parameters such as CRReLU's ε are not decayed, a
choice the paper leaves open), minibatches drawn by a seeded permutation each epoch,
cross-entropy, gradient-norm clipping, and a cosine learning-rate decay to 0 over all
steps (or a constant rate). Then, in eval mode:

- test accuracy and predictive entropy on the whole test split;
- post-activation histogram entropy (and the fraction of exact zeros) of every
  activation layer on a held-out batch, the first ``heldout_size`` test examples;
- for the ViT, the entropy of every layer's attention rows on that batch.

Deterministic on CPU: the caller sets the seed, the thread count and deterministic
algorithms (see :func:`deterministic`); given those, the same inputs give the same
numbers bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from workers.activations.data import Dataset
from workers.activations.measures import attention_entropy, histogram_entropy, predictive_entropy
from workers.activations.models import MLP, ActivationFactory, TinyViT

#: The largest learning rate AdamW takes in float32: its first step is lr / (1 − β₁) ≈ 10·lr
#: (β₁ = 0.9), which must not pass float32's 3.4028e38 (above it, torch raised "value cannot
#: be converted to type float without overflow"); 3.4e37 is that bound rounded down. The
#: config models repeat it.
ADAMW_MAX_LR = 3.4e37


def adamw_lr_problem(lr: float) -> str | None:
    """Why AdamW cannot take ``lr`` in float32 (None: it can)."""
    if lr > ADAMW_MAX_LR:
        return f"must be <= {ADAMW_MAX_LR:.4g} (AdamW's first step is 10·lr, which float32 must hold), got {lr!r}"
    return None


@dataclasses.dataclass
class TrainConfig:
    """Model and optimisation settings of one run."""

    model: str = "mlp"  # mlp | vit
    hidden: Sequence[int] = (128, 128)  # MLP widths
    patch_size: int = 4  # ViT: 8x8 digits -> 2x2 patches, 32x32 CIFAR -> 8x8 patches
    dim: int = 48
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    epochs: int = 20
    batch_size: int = 64
    lr: float | None = None  # None: 2e-3 for the MLP, 5e-3 for the ViT
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # cosine | constant
    grad_clip: float | None = 1.0
    heldout_size: int = 256
    hist_bins: int = 64

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "vit"):
            raise ValueError(f"model must be 'mlp' or 'vit', got {self.model!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.lr is None:
            self.lr = 2e-3 if self.model == "mlp" else 5e-3
        for key in ("epochs", "batch_size", "patch_size", "dim", "depth", "heads", "heldout_size", "hist_bins"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        self.lr = float(self.lr)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if adamw_lr_problem(self.lr):
            raise ValueError(f"lr {adamw_lr_problem(self.lr)}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


@dataclasses.dataclass
class RunResult:
    """What one training run measured."""

    accuracy: float
    predictive_entropy: float
    post_activation_entropy: list[float]  # per activation layer, nats
    post_activation_zero_fraction: list[float]  # per activation layer
    attention_entropy: list[float] | None  # per block (ViT), nats
    loss_curve: list[float]  # mean training loss per epoch
    activation_params: dict[str, float | list[float]]  # learned ε, c_k, β, slopes after training
    num_params: int
    train_seconds: float


@contextlib.contextmanager
def deterministic(num_threads: int | None = 1, device: str = "cpu") -> Iterator[None]:
    """Deterministic algorithms and a fixed thread count for the block; restored after."""
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    if num_threads:
        torch.set_num_threads(int(num_threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.set_num_threads(threads)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def build_model(cfg: TrainConfig, data: Dataset, activation: ActivationFactory) -> nn.Module:
    """The MLP or the tiny ViT for ``data``'s image shape and classes."""
    if cfg.model == "mlp":
        c, h, w = data.image_shape
        return MLP(c * h * w, data.num_classes, cfg.hidden, activation)
    return TinyViT(
        data.image_shape, data.num_classes, cfg.patch_size, cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio, activation
    )


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on the weight matrices of Linear layers only."""
    decay = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _activation_params(model: nn.Module) -> dict[str, float | list[float]]:
    out: dict[str, float | list[float]] = {}
    for i, act in enumerate(getattr(model, "activations", [])):
        for name, tensor in [*act.named_parameters(), *act.named_buffers()]:
            values = tensor.detach().cpu().reshape(-1).tolist()
            out[f"layer{i}.{name}"] = values[0] if len(values) == 1 else values
    return out


def _check_trained(model: nn.Module) -> None:
    """After the last optimizer step: every weight finite (each epoch's loss was, but it
    is computed before its steps, so the last update is checked here)."""
    bad = next((name for name, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())), None)
    if bad is not None:
        raise FloatingPointError(f"training diverged: parameter {bad!r} is not finite after the last step")


@torch.no_grad()
def _evaluate(model: nn.Module, data: Dataset, cfg: TrainConfig, chunk: int = 1024) -> dict[str, Any]:
    model.eval()
    logits = torch.cat([model(data.x_test[i : i + chunk]) for i in range(0, len(data.x_test), chunk)])
    if not bool(torch.isfinite(logits).all()):  # finite weights whose forward pass overflows (lr = 1e30)
        raise FloatingPointError("training diverged: the trained network's test logits are not finite")
    accuracy = float((logits.argmax(dim=1) == data.y_test).double().mean())
    captured: list[torch.Tensor] = []
    hooks = [
        act.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
        for act in getattr(model, "activations", [])
    ]
    attentions = list(getattr(model, "attentions", []))
    for attn in attentions:
        attn.record = True
    try:
        model(data.x_test[: cfg.heldout_size])
    finally:
        for hook in hooks:
            hook.remove()
        for attn in attentions:
            attn.record = False
    result: dict[str, Any] = {
        "accuracy": accuracy,
        "predictive_entropy": predictive_entropy(logits),
        "post_activation_entropy": [histogram_entropy(v, cfg.hist_bins) for v in captured],
        "post_activation_zero_fraction": [float((v == 0).double().mean()) for v in captured],
        "attention_entropy": None,
    }
    if attentions:
        weights = [a.last_attention for a in attentions]
        result["attention_entropy"] = [attention_entropy(w) for w in weights if w is not None]
        for a in attentions:
            a.last_attention = None
    return result


def train_and_measure(
    activation: ActivationFactory, data: Dataset, cfg: TrainConfig, seed: int, device: str = "cpu"
) -> RunResult:
    """Train ``cfg.model`` with ``activation`` on ``data`` (already on ``device``) and measure it.

    Raises :class:`FloatingPointError` ("training diverged: …") when the training loss stops
    being finite, or when the last optimizer step (whose loss was finite: it was computed
    before the step) left a weight or the test logits non-finite, which the measures had
    reported as a NaN predictive entropy.
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(cfg, data, activation).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=float(cfg.lr))  # type: ignore[arg-type]
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = None
    if cfg.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
    loss_curve: list[float] = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(data.x_train.device)
        total = torch.zeros((), dtype=torch.float64, device=data.x_train.device)
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach().double() * len(idx)
        epoch_loss = float(total) / n
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(f"training diverged: the mean training loss of epoch {epoch + 1} is {epoch_loss}")
        loss_curve.append(epoch_loss)
    _check_trained(model)
    train_seconds = time.perf_counter() - start
    measured = _evaluate(model, data, cfg)
    return RunResult(
        loss_curve=loss_curve,
        activation_params=_activation_params(model),
        num_params=sum(p.numel() for p in model.parameters()),
        train_seconds=train_seconds,
        **measured,
    )
