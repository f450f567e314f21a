"""The tiny models, the data sets (digits, CIFAR on disk) and the entropy measures."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workers.activations import MLP, CRReLU, TinyViT, activation_factory
from workers.activations.data import load_dataset
from workers.activations.measures import attention_entropy, histogram_entropy, predictive_entropy


def test_mlp_shapes_and_one_activation_module_per_layer() -> None:
    model = MLP(64, 10, hidden=(32, 16, 8), activation=activation_factory({"activation": "crrelu"}))
    out = model(torch.randn(5, 1, 8, 8))
    assert out.shape == (5, 10)
    acts = model.activations
    assert len(acts) == 3 and all(isinstance(a, CRReLU) for a in acts)
    assert len({id(a.eps) for a in acts}) == 3  # one eps per layer
    assert [m.out_features for m in model.linears] == [32, 16, 8]
    with pytest.raises(ValueError, match="hidden"):
        MLP(64, 10, hidden=())


def test_vit_shapes_patches_and_attention_recording() -> None:
    torch.manual_seed(0)
    model = TinyViT(
        (1, 8, 8), 10, patch_size=2, dim=16, depth=3, heads=2, activation=activation_factory({"activation": "gelu"})
    )
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    patches = model.patchify(images)
    assert patches.shape == (2, 16, 4)
    # The first patch is the top-left 2x2 block, row-major.
    assert patches[0, 0].tolist() == [0.0, 1.0, 8.0, 9.0]
    assert patches[0, 1].tolist() == [2.0, 3.0, 10.0, 11.0]
    assert model(images).shape == (2, 10)
    assert len(model.activations) == 3 and all(isinstance(a, nn.GELU) for a in model.activations)
    assert all(a.last_attention is None for a in model.attentions)
    for a in model.attentions:
        a.record = True
    model(images)
    weights = model.attentions[0].last_attention
    assert weights is not None and weights.shape == (2, 2, 17, 17)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 17))
    with pytest.raises(ValueError, match="does not divide"):
        TinyViT((1, 8, 8), 10, patch_size=3)
    with pytest.raises(ValueError, match="divisible"):
        TinyViT((1, 8, 8), 10, dim=10, heads=4)


def test_vit_cifar_shape() -> None:
    model = TinyViT((3, 32, 32), 100, patch_size=4, dim=16, depth=1, heads=2)
    assert model.num_patches == 64
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_digits_split_is_stratified_standardised_and_seeded() -> None:
    data = load_dataset("digits")
    assert data.image_shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.x_train) + len(data.x_test) == 1797
    assert len(data.x_test) == 450
    assert abs(float(data.x_train.mean())) < 1e-5 and float(data.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    counts = torch.bincount(data.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # stratified: ~45 per class
    again = load_dataset("digits")
    assert torch.equal(again.x_test, data.x_test)
    other = load_dataset("digits", split_seed=1)
    assert not torch.equal(other.y_test, data.y_test)
    small = load_dataset("digits", max_train=100, max_test=20)
    assert len(small.x_train) == 100 and len(small.x_test) == 20


def _write_batch(path: Path, n: int, rng: np.random.Generator, label_key: str, str_keys: bool) -> None:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    batch = {"data": data, label_key: labels, "batch_label": "synthetic"}
    if not str_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    with path.open("wb") as fh:
        pickle.dump(batch, fh, protocol=2)  # the protocol of the real (Python 2) files


@pytest.mark.parametrize("str_keys", [False, True])
def test_cifar10_from_torchvision_layout(tmp_path: Path, str_keys: bool) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", 4, rng, "labels", str_keys)
    _write_batch(folder / "test_batch", 6, rng, "labels", str_keys)
    for root in (tmp_path, folder):  # torchvision's root, or the batch folder itself
        data = load_dataset("cifar10", root)
        assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
        assert data.num_classes == 10 and data.x_train.dtype == torch.float32
        per_channel = data.x_train.mean(dim=(0, 2, 3))
        torch.testing.assert_close(per_channel, torch.zeros(3), atol=1e-5, rtol=0)
    # Pixel layout: the first 1024 bytes are the red plane, row-major.
    with (folder / "data_batch_1").open("rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    first = np.asarray(raw["data" if str_keys else b"data"])[0]
    data = load_dataset("cifar10", tmp_path)
    red = data.x_train[0, 0]
    order = np.argsort(first[:1024])
    assert torch.all(red.reshape(-1)[order[1:]] >= red.reshape(-1)[order[:-1]])


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_batch(folder / "train", 8, rng, "fine_labels", False)
    _write_batch(folder / "test", 3, rng, "fine_labels", False)
    data = load_dataset("cifar100", tmp_path, max_train=5)
    assert data.num_classes == 100 and len(data.x_train) == 5 and len(data.x_test) == 3


def test_missing_cifar_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing / "cifar-10-batches-py")):
        load_dataset("cifar10", missing)
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset("cifar100")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


class _Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_reader_refuses_pickled_code(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _write_batch(folder / name, 2, rng, "labels", True)
    with (folder / "test_batch").open("wb") as fh:
        pickle.dump({"data": _Exploit(), "labels": [0]}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle posix\.system"):
        load_dataset("cifar10", tmp_path)


def test_histogram_entropy() -> None:
    uniform = torch.linspace(0, 1, 64_000)
    assert histogram_entropy(uniform, bins=64, quantile=0.0) == pytest.approx(math.log(64), abs=1e-3)
    assert histogram_entropy(torch.full((100,), 3.0)) == 0.0
    # Half exact zeros (a ReLU layer), half spread: one bin holds half the mass.
    relu_like = torch.cat([torch.zeros(32_000), torch.linspace(0.01, 1, 32_000)])
    h = histogram_entropy(relu_like, bins=64, quantile=0.0)
    assert h == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 * 63), abs=0.02)
    # An outlier is clipped into the edge bin instead of squashing the rest.
    spread = torch.cat([torch.linspace(-1, 1, 10_000), torch.tensor([1e6])])
    assert histogram_entropy(spread, bins=16) > 0.9 * math.log(16)
    with pytest.raises(ValueError, match="finite"):
        histogram_entropy(torch.tensor([0.0, float("nan")]))


def test_values_outside_the_quantile_range_count_in_the_edge_bins() -> None:
    """workers/activations/measures.py: values outside [q, 1−q] "are counted in the edge bins",
    not dropped: 8 zeros, 8 ones and 4 outliers at 1000 (quantiles 0.25 / 0.75 are 0 and 1)
    fill two bins with 8 and 8 + 4, not 8 and 8."""
    values = torch.tensor([0.0] * 8 + [1.0] * 8 + [1000.0] * 4)
    expected = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
    assert histogram_entropy(values, bins=2, quantile=0.25) == pytest.approx(expected, rel=1e-12)


def test_predictive_and_attention_entropy() -> None:
    assert predictive_entropy(torch.zeros(7, 10)) == pytest.approx(math.log(10))
    assert predictive_entropy(torch.tensor([[100.0, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-30)
    logits = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.25)]])
    assert predictive_entropy(logits) == pytest.approx(1.5 * math.log(2))
    uniform = torch.full((2, 3, 5, 5), 0.2)
    assert attention_entropy(uniform) == pytest.approx(math.log(5))
    one_hot = torch.eye(4).expand(1, 1, 4, 4)
    assert attention_entropy(one_hot) == 0.0


def test_attention_entropy_is_taken_over_each_rows_keys() -> None:
    """workers/activations/measures.py: the entropy of each attention row, −Σ_j a_ij log a_ij over
    the keys j, averaged: rows [1, 0, 0] and [1/3, 1/3, 1/3] give ln 3 / 2."""
    attention = torch.tensor([[[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]], dtype=torch.float64)  # heads, queries, keys
    assert attention_entropy(attention) == pytest.approx(math.log(3) / 2, rel=1e-12)
