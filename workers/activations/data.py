"""The data sets of the activation evaluator; nothing is ever downloaded.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes),
  split into train and test with a stratified, seeded split (``test_size`` = 0.25).
- ``cifar10`` / ``cifar100``: read from ``data_dir`` in torchvision's on-disk format,
  i.e. the extracted ``cifar-10-python.tar.gz`` (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``) or ``cifar-100-python.tar.gz`` (``cifar-100-python/train``, ``test``;
  fine labels). ``data_dir`` may be the folder holding that directory (torchvision's
  ``root``) or the directory itself. The pickled batches are read with NumPy through an
  unpickler that only rebuilds NumPy arrays, lists, dicts and strings; torchvision is not
  needed.

Images are returned as float32 tensors ``(N, C, H, W)`` standardised per channel with
the *training* split's mean and standard deviation.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

DATASETS: tuple[str, ...] = ("digits", "cifar10", "cifar100")


@dataclasses.dataclass(frozen=True)
class _CifarLayout:
    """Where torchvision's extracted archive keeps a CIFAR data set's batches."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    labels: str
    classes: int


_CIFAR: dict[str, _CifarLayout] = {
    "cifar10": _CifarLayout(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels", 10
    ),
    "cifar100": _CifarLayout("cifar-100-python", ("train",), ("test",), "fine_labels", 100),
}


@dataclasses.dataclass
class Dataset:
    """A train/test split of images ``(N, C, H, W)`` (float32) and labels ``(N,)`` (int64)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def to(self, device: str | torch.device) -> Dataset:
        """The same split on ``device``."""
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches hold: NumPy arrays inside dicts and lists."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from a data file")
        return super().find_class(module, name)


def _read_batch(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        raw = _ArrayUnpickler(fh, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a CIFAR batch (expected a dict, got {type(raw).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _cifar_dir(name: str, data_dir: str | Path | None) -> Path:
    layout = _CIFAR[name]
    if data_dir is None:
        raise ValueError(f"dataset {name!r} needs config 'data_dir': a local folder in torchvision's format")
    root = Path(data_dir).expanduser()
    files = [*layout.train, *layout.test]
    for candidate in (root / layout.folder, root):
        if all((candidate / f).is_file() for f in files):
            return candidate
    raise FileNotFoundError(
        f"{name} not found at {root / layout.folder} (nor at {root}): expected the files "
        f"{', '.join(files)} of torchvision's on-disk format (the extracted python-version "
        "archive); nothing is downloaded"
    )


def _load_cifar_split(folder: Path, files: tuple[str, ...], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for f in files:
        batch = _read_batch(folder / f)
        if "data" not in batch or label_key not in batch:
            raise ValueError(f"{folder / f} has no 'data' or {label_key!r} entry")
        data = np.asarray(batch["data"], dtype=np.uint8)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(x − mean) / std`` with the training split's statistics."""
    x_train = x_train.astype(np.float32)
    x_test = x_test.astype(np.float32)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 1e-6, std, 1.0)
    return torch.from_numpy((x_train - mean) / std), torch.from_numpy((x_test - mean) / std)


def load_dataset(
    name: str = "digits",
    data_dir: str | Path | None = None,
    *,
    test_size: float = 0.25,
    split_seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Load ``digits`` (bundled), or ``cifar10``/``cifar100`` from ``data_dir``.

    ``max_train``/``max_test`` keep the first examples of each split (CIFAR's batches
    are already shuffled; digits' split is stratified and shuffled) for quick runs.
    """
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = bunch.images.astype(np.float32)[:, None, :, :]  # (1797, 1, 8, 8), values 0..16
        labels = bunch.target.astype(np.int64)
        x_tr, x_te, y_tr, y_te = train_test_split(
            images, labels, test_size=test_size, random_state=split_seed, stratify=labels
        )
        num_classes = 10
    elif name in _CIFAR:
        layout = _CIFAR[name]
        folder = _cifar_dir(name, data_dir)
        x_tr, y_tr = _load_cifar_split(folder, layout.train, layout.labels)
        x_te, y_te = _load_cifar_split(folder, layout.test, layout.labels)
        num_classes = layout.classes
    else:
        raise ValueError(f"unknown dataset {name!r}; one of {', '.join(DATASETS)}")
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    if max_test is not None:
        x_te, y_te = x_te[:max_test], y_te[:max_test]
    if len(x_tr) == 0 or len(x_te) == 0:
        raise ValueError(f"dataset {name!r}: an empty split (train {len(x_tr)}, test {len(x_te)})")
    x_train, x_test = _standardise(x_tr, x_te)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=x_test,
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes=num_classes,
    )
