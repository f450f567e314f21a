"""Two tiny classifiers whose every hidden nonlinearity is a candidate activation.

Both take images ``(B, C, H, W)`` and a zero-argument ``activation`` factory called once
per layer (so CRReLU's ε is one scalar *per layer*). ``model.activations`` lists the
activation modules in order, for hooks that read post-activation values.

- :class:`MLP`: flatten → [Linear → act] × L → Linear.
- :class:`TinyViT`: a pre-norm Vision Transformer (Dosovitskiy et al. 2021) at toy
  scale: non-overlapping p×p patches, a linear patch embedding, a learned class token
  and position embedding, ``depth`` blocks of ``x + MHSA(LN(x))`` then
  ``x + W₂·act(W₁·LN(x))``, and a linear head on the final LN of the class token. The
  candidate activation replaces GELU in each block's MLP, as in the EAFO paper's ViT
  experiments. Attention is written out (softmax(QKᵀ/√d)·V) so that its weights can be
  recorded for the attention-entropy measure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ActivationFactory = Callable[[], nn.Module]


class MLP(nn.Module):
    """A multilayer perceptron ``in → hidden[0] → … → hidden[-1] → classes``."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (128, 128),
        activation: ActivationFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty list of positive widths, got {list(hidden)}")
        widths = [in_features, *(int(h) for h in hidden)]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.acts = nn.ModuleList(activation() for _ in hidden)
        self.head = nn.Linear(widths[-1], num_classes)

    @property
    def activations(self) -> list[nn.Module]:
        return list(self.acts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for linear, act in zip(self.linears, self.acts, strict=True):
            x = act(linear(x))
        return self.head(x)


class Attention(nn.Module):
    """Multi-head self-attention; ``record = True`` keeps the last attention weights."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.record = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)  # (B, heads, N, N)
        if self.record:
            self.last_attention = attention.detach()
        out = (attention @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Block(nn.Module):
    """``x + MHSA(LN(x))``, then ``x + W₂·act(W₁·LN(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, activation: ActivationFactory) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = activation()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """A Vision Transformer small enough to train on 8×8 digits on a CPU in seconds."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int,
        patch_size: int = 4,
        dim: int = 48,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        activation: ActivationFactory = nn.GELU,
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height % patch_size or width % patch_size:
            raise ValueError(f"patch_size {patch_size} does not divide the image size {height}x{width}")
        self.patch_size = patch_size
        self.num_patches = (height // patch_size) * (width // patch_size)
        self.embed = nn.Linear(channels * patch_size * patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, activation) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @property
    def activations(self) -> list[nn.Module]:
        return [block.act for block in self.blocks]

    @property
    def attentions(self) -> list[Attention]:
        return [block.attn for block in self.blocks]

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, N, C·p·p)``, patches in row-major order."""
        b, c, h, w = images.shape
        p = self.patch_size
        x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.patchify(images))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))
