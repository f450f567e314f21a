"""CRReLU, the Gaussian-polynomial family, the baselines and the factory."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from workers.activations import (
    ACTIVATIONS,
    CRReLU,
    GaussianPolyActivation,
    Swish,
    SymbolicActivation,
    activation_factory,
    crrelu,
    make_activation,
)
from workers.activations.factory import family_coefficients

X = torch.linspace(-6.0, 6.0, 241, dtype=torch.float64)


def reference_crrelu(x: torch.Tensor, eps: float) -> torch.Tensor:
    """The formula written out element by element, in plain Python floats."""
    return torch.tensor([max(0.0, v) + eps * v * math.exp(-v * v / 2) for v in x.tolist()], dtype=x.dtype)


@pytest.mark.parametrize("eps", [0.01, -0.3, 0.0, 1.7])
def test_crrelu_matches_the_formula(eps: float) -> None:
    module = CRReLU(eps).double()
    stored = module.eps.item()  # eps as the module holds it (float32-rounded at construction)
    assert stored == pytest.approx(eps, rel=1e-6)
    torch.testing.assert_close(module(X), reference_crrelu(X, stored), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(crrelu(X, eps), reference_crrelu(X, eps), rtol=1e-12, atol=1e-12)


def test_crrelu_correction_is_local() -> None:
    module = CRReLU(0.5).double()
    far = torch.tensor([-20.0, -10.0, 10.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(module(far), F.relu(far), rtol=0, atol=1e-20)
    # Near 0 the correction is visible: CRReLU(1) = 1 + 0.5 * exp(-1/2).
    assert module(torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(1 + 0.5 * math.exp(-0.5))


def test_crrelu_gradcheck_in_x_and_eps() -> None:
    module = CRReLU(0.2).double()
    x = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    x = torch.where(x.abs() < 1e-3, x + 1e-2, x).requires_grad_()  # keep away from ReLU's kink at 0
    eps = module.eps
    assert torch.autograd.gradcheck(lambda a, e: crrelu(a, e), (x, eps), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(lambda a, e: crrelu(a, e), (x, eps))
    assert torch.autograd.gradcheck(module, (x,))


def test_crrelu_analytic_gradients() -> None:
    eps = 0.3
    module = CRReLU(eps).double()
    x = torch.tensor([-2.0, -0.5, 0.7, 2.5], dtype=torch.float64, requires_grad=True)
    module(x).sum().backward()
    expected_dx = (x > 0).double() + eps * (1 - x.detach() ** 2) * torch.exp(-(x.detach() ** 2) / 2)
    torch.testing.assert_close(x.grad, expected_dx)
    expected_deps = (x.detach() * torch.exp(-(x.detach() ** 2) / 2)).sum()
    torch.testing.assert_close(module.eps.grad, expected_deps)


def test_crrelu_eps_is_one_learnable_scalar_per_module() -> None:
    module = CRReLU()
    params = dict(module.named_parameters())
    assert list(params) == ["eps"]
    assert params["eps"].shape == () and params["eps"].item() == pytest.approx(0.01)
    fixed = CRReLU(0.05, learnable=False)
    assert list(fixed.parameters()) == []
    assert fixed.eps.item() == pytest.approx(0.05)
    assert "eps" in dict(fixed.named_buffers())
    # Training moves a learnable eps.
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    module(torch.linspace(-2, 2, 50)).pow(2).sum().backward()
    opt.step()
    assert module.eps.item() != pytest.approx(0.01)


def test_family_reduces_to_crrelu_and_relu() -> None:
    torch.testing.assert_close(GaussianPolyActivation([0.37, 0.0, 0.0]).double()(X), CRReLU(0.37).double()(X))
    torch.testing.assert_close(GaussianPolyActivation([0.0, 0.0, 0.0]).double()(X), F.relu(X))


@pytest.mark.parametrize("coeffs", [[0.1], [0.1, -0.2], [0.01, 0.3, -0.05], [0.2, -0.1, 0.05, 0.02, -0.01]])
def test_family_matches_the_formula(coeffs: list[float]) -> None:
    module = GaussianPolyActivation(coeffs).double()
    stored = module.coeffs.tolist()
    assert stored == pytest.approx(coeffs, rel=1e-6)
    expected = F.relu(X) + torch.exp(-(X**2) / 2) * sum(c * X ** (k + 1) for k, c in enumerate(stored))
    torch.testing.assert_close(module(X), expected, rtol=1e-12, atol=1e-12)
    assert module.order == len(coeffs)
    assert module(torch.zeros(3, dtype=torch.float64)).abs().max().item() == 0.0


def test_family_gradcheck_and_learnable_coefficients() -> None:
    module = GaussianPolyActivation([0.1, -0.2, 0.3], learnable=True).double()
    x = torch.tensor([-1.7, -0.4, 0.3, 1.1, 2.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))
    module(x).sum().backward()
    assert module.coeffs.grad is not None
    expected = torch.stack([(x.detach() ** k * torch.exp(-(x.detach() ** 2) / 2)).sum() for k in (1, 2, 3)])
    torch.testing.assert_close(module.coeffs.grad, expected)
    fixed = GaussianPolyActivation([0.1, 0.2])
    assert list(fixed.parameters()) == []


@pytest.mark.parametrize("coeffs", [[], [0.0] * 9, [float("nan")], [0.1, float("inf")]])
def test_family_refuses_bad_coefficients(coeffs: list[float]) -> None:
    with pytest.raises(ValueError, match="coefficient"):
        GaussianPolyActivation(coeffs)


def test_swish() -> None:
    torch.testing.assert_close(Swish(1.0).double()(X), F.silu(X))
    torch.testing.assert_close(Swish(1.7).double()(X), X * torch.sigmoid(1.7 * X))
    assert list(Swish(2.0).parameters()) == []
    assert [n for n, _ in Swish(2.0, learnable=True).named_parameters()] == ["beta"]


BASELINE_REFERENCES = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "prelu": lambda x: torch.where(x > 0, x, 0.25 * x),
    "elu": F.elu,
    "gelu": lambda x: x * 0.5 * (1 + torch.erf(x / math.sqrt(2))),
    "silu": lambda x: x * torch.sigmoid(x),
    "swish": lambda x: x * torch.sigmoid(x),
    "mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "crrelu": lambda x: F.relu(x) + 0.01 * x * torch.exp(-x * x / 2),
    "family": lambda x: F.relu(x) + 0.01 * x * torch.exp(-x * x / 2),
}


@pytest.mark.parametrize("name", sorted(BASELINE_REFERENCES))
def test_factory_defaults_match_their_definitions(name: str) -> None:
    module = make_activation({"activation": name}).double()
    torch.testing.assert_close(module(X), BASELINE_REFERENCES[name](X), rtol=1e-7, atol=1e-9)


def test_factory_parameters() -> None:
    x = X
    torch.testing.assert_close(
        make_activation({"activation": "crrelu", "crrelu_eps": 0.5}).double()(x), reference_crrelu(x, 0.5)
    )
    torch.testing.assert_close(
        make_activation({"activation": "leaky_relu", "leaky_relu_slope": 0.2})(x), torch.where(x > 0, x, 0.2 * x)
    )
    torch.testing.assert_close(make_activation({"activation": "elu", "elu_alpha": 0.5})(x), F.elu(x, 0.5))
    torch.testing.assert_close(
        make_activation({"activation": "swish", "swish_beta": 3.0}).double()(x), x * torch.sigmoid(3 * x)
    )
    torch.testing.assert_close(
        make_activation({"activation": "gelu", "gelu_approximate": "tanh"})(x), F.gelu(x, approximate="tanh")
    )
    family = make_activation({"activation": "family", "family_c1": 0.1, "family_c2": -0.2, "family_c3": 0.3})
    assert family.coeffs.tolist() == pytest.approx([0.1, -0.2, 0.3])
    sym = make_activation({"activation": "symbolic", "expression": "x*tanh(x)"})
    assert isinstance(sym, SymbolicActivation)
    torch.testing.assert_close(sym(x), x * torch.tanh(x))


def test_family_coefficients_defaults_and_order() -> None:
    assert family_coefficients({}) == [0.01, 0.0, 0.0]
    assert family_coefficients({"family_c2": 0.5}) == [0.01, 0.5, 0.0]
    assert family_coefficients({"family_c5": 1.0}) == [0.01, 0.0, 0.0, 0.0, 1.0]


def test_factory_learnable_defaults_and_override() -> None:
    def n_params(params: dict) -> int:
        return sum(p.numel() for p in make_activation(params).parameters() if p.requires_grad)

    assert n_params({"activation": "crrelu"}) == 1
    assert n_params({"activation": "crrelu", "learnable": False}) == 0
    assert n_params({"activation": "crrelu", "learnable": "false"}) == 0
    assert n_params({"activation": "prelu"}) == 1
    assert n_params({"activation": "prelu", "learnable": False}) == 0
    assert n_params({"activation": "family"}) == 0
    assert n_params({"activation": "family", "learnable": True}) == 3
    assert n_params({"activation": "swish", "learnable": True}) == 1


def test_factory_makes_a_fresh_module_per_call() -> None:
    factory = activation_factory({"activation": "crrelu", "crrelu_eps": 0.2})
    a, b = factory(), factory()
    assert a is not b and a.eps is not b.eps
    with torch.no_grad():
        a.eps.fill_(5.0)
    assert b.eps.item() == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"activation": "softmax"}, "unknown activation 'softmax'"),
        ({"activation": "crrelu", "crrelu_eps": "big"}, "crrelu_eps must be a number"),
        ({"activation": "crrelu", "crrelu_eps": float("nan")}, "crrelu_eps must be finite"),
        ({"activation": "crrelu", "learnable": "maybe"}, "learnable must be a boolean"),
        ({"activation": "family", "family_c2": True}, "family_c2 must be a number"),
        ({"activation": "symbolic"}, "needs an 'expression'"),
        ({"activation": "symbolic", "expression": "x.__class__"}, "attribute access"),
        ({"activation": "gelu", "gelu_approximate": "fast"}, "gelu_approximate"),
    ],
)
def test_factory_refuses_bad_params(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        activation_factory(params)


def test_every_named_activation_builds_and_runs() -> None:
    for name in ACTIVATIONS:
        params = {"activation": name, "expression": "x*sigmoid(x)"}
        module = make_activation(params)
        assert isinstance(module, nn.Module)
        out = module(torch.randn(4, 5))
        assert out.shape == (4, 5) and torch.isfinite(out).all()
