"""EAFO beyond CRReLU: the entropy correction of each base and the worst activation (WAFBC).

The references are the rules written from their definitions, computed independently of
the module: PyTorch's own activations, autograd for the derivatives, quadrature for
the entropies.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from workers.activations import CRReLU, make_activation
from workers.activations.eafo import (
    BASES,
    EAFOActivation,
    WorstActivation,
    base_and_derivatives,
    eafo_correction,
    worst_activation,
)
from workers.evaluators.activation import ActivationEvaluator

# an even count keeps 0 (ReLU's and ELU's kink) off the grid
X = torch.linspace(-5.0, 5.0, 2000, dtype=torch.float64)

TORCH_BASES = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "elu": F.elu,
    "identity": lambda x: x,
}


def reference_correction(base: str, x: torch.Tensor, sigma: float, tau: float) -> torch.Tensor:
    """``−√(2π)σ³ · d/dx [p_σ(x) / max(f'(x), τ)]``, f' and the outer d/dx by autograd."""
    x = x.clone().requires_grad_(True)
    (f_prime,) = torch.autograd.grad(TORCH_BASES[base](x).sum(), x, create_graph=True)
    density = torch.exp(-0.5 * (x / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    ratio = density / torch.clamp(f_prime, min=tau)
    (d_ratio,) = torch.autograd.grad(ratio.sum(), x)
    return -math.sqrt(2 * math.pi) * sigma**3 * d_ratio


def test_every_base_is_tested_against_torch() -> None:
    assert set(TORCH_BASES) == set(BASES)


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize(("sigma", "tau"), [(1.0, 1.0), (0.7, 0.5), (2.0, 0.2)])
def test_correction_is_the_entropy_gradient_rule(base: str, sigma: float, tau: float) -> None:
    ours = eafo_correction(base, X, sigma, tau)
    torch.testing.assert_close(ours, reference_correction(base, X, sigma, tau), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("base", sorted(BASES))
def test_base_values_are_torchs(base: str) -> None:
    module = EAFOActivation(base, eps=0.0, learnable=False).double()
    torch.testing.assert_close(module(X), TORCH_BASES[base](X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eps", [0.01, -0.4, 1.3])
def test_relu_at_unit_sigma_and_tau_is_crrelu(eps: float) -> None:
    eafo = EAFOActivation("relu", eps=eps).double()
    crrelu = CRReLU(eps).double()
    torch.testing.assert_close(eafo(X), crrelu(X), rtol=0, atol=1e-15)


@pytest.mark.parametrize("base", ["softplus", "tanh", "identity"])
def test_a_positive_step_raises_the_output_entropy_at_the_predicted_rate(base: str) -> None:
    """d/dε E[log(f' + εκ')] at 0 = ∫ p κ'/f' = [p κ/f'] − ∫ κ (p/f')': κ is the entropy's ascent direction.

    The bases whose f' is smooth and positive, on a grid where it stays above the floor (g = f').
    """
    x = torch.linspace(-4.0, 4.0, 40001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    density = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    xg = x.clone().requires_grad_(True)
    (f_prime,) = torch.autograd.grad(TORCH_BASES[base](xg).sum(), xg)
    tau = 1e-4
    assert float(f_prime.min()) > tau

    def entropy_gain(eps: float) -> float:
        xs = x.clone().requires_grad_(True)
        module = EAFOActivation(base, eps=eps, tau=tau, learnable=False).double()
        (d,) = torch.autograd.grad(module(xs).sum(), xs)
        return float(torch.trapezoid(density * torch.log(d), dx=dx))

    h = 1e-5
    rate = (entropy_gain(h) - entropy_gain(-h)) / (2 * h)
    kappa = eafo_correction(base, x, 1.0, tau)
    ratio = density / f_prime
    boundary = float(ratio[-1] * kappa[-1] - ratio[0] * kappa[0])
    predicted = boundary - float(torch.trapezoid(kappa * torch.gradient(ratio, spacing=dx)[0], dx=dx))
    assert rate == pytest.approx(predicted, rel=1e-3)
    assert float(torch.trapezoid(kappa * -torch.gradient(ratio, spacing=dx)[0], dx=dx)) > 0
    assert rate > 0 and entropy_gain(1e-3) > entropy_gain(0.0) > entropy_gain(-1e-3)


def test_worst_activation_meets_relus_boundary_values_and_is_a_scaled_cdf() -> None:
    bound = 3.0
    w = worst_activation(torch.tensor([-10.0, -bound, 0.0, bound, 10.0], dtype=torch.float64), bound)
    assert w.tolist() == pytest.approx([0.0, 0.0, bound / 2, bound, bound], abs=1e-12)
    ys = worst_activation(X, bound)
    assert bool((ys[1:] >= ys[:-1]).all())  # increasing
    inside = X.abs() < bound
    cdf = 0.5 * (1 + torch.erf(X[inside] / math.sqrt(2)))
    edge = 0.5 * (1 + math.erf(-bound / math.sqrt(2)))
    torch.testing.assert_close(ys[inside], bound * (cdf - edge) / (1 - 2 * edge), rtol=1e-12, atol=1e-12)


def test_worst_activation_makes_gaussian_inputs_uniform() -> None:
    """The outputs of X ~ N(0, 1) restricted to [−B, B] are uniform on [0, B]: the entropy is maximal."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400_000, generator=generator, dtype=torch.float64)
    x = x[x.abs() < 2.5]
    y = worst_activation(x, bound=2.5)
    counts = torch.histc(y, bins=20, min=0.0, max=2.5)
    p = counts / counts.sum()
    entropy = float(-(p * torch.log(p)).sum())
    assert entropy == pytest.approx(math.log(20), abs=1e-3)
    relu_counts = torch.histc(F.relu(x), bins=20, min=0.0, max=2.5)
    q = relu_counts / relu_counts.sum()
    q = q[q > 0]
    assert float(-(q * torch.log(q)).sum()) < entropy - 0.5  # ReLU's outputs are far from uniform


def test_worst_activation_has_the_highest_output_entropy_among_rivals_with_its_boundary_values() -> None:
    """H[f] − H(X) = E[log f'] over X ~ N(0, 1) on [−B, B]; every increasing rival from 0 to B scores lower."""
    bound = 3.0
    x = torch.linspace(-bound, bound, 60001, dtype=torch.float64)[1:-1]
    density = torch.exp(-0.5 * x * x)
    weights = density / density.sum()

    def gain(fn) -> float:
        xs = x.clone().requires_grad_(True)
        (d,) = torch.autograd.grad(fn(xs).sum(), xs)
        return float((weights * torch.log(d)).sum())

    def scaled(fn):
        lo, hi = fn(torch.tensor(-bound, dtype=torch.float64)), fn(torch.tensor(bound, dtype=torch.float64))
        return lambda t: bound * (fn(t) - lo) / (hi - lo)

    worst = gain(lambda t: worst_activation(t, bound))
    rivals = {
        "linear": scaled(lambda t: t),
        "softplus": scaled(F.softplus),
        "tanh": scaled(torch.tanh),
        "sigmoid(2x)": scaled(lambda t: torch.sigmoid(2 * t)),
        "smooth leaky relu": scaled(lambda t: F.softplus(4 * t) / 4 + 0.05 * t),
        "wider cdf": scaled(lambda t: torch.erf(t / (1.5 * math.sqrt(2)))),
        "narrower cdf": scaled(lambda t: torch.erf(t / (0.8 * math.sqrt(2)))),
    }
    for name, fn in rivals.items():
        assert gain(fn) < worst - 1e-4, name


def test_factory_builds_eafo_and_wafbc_from_search_parameters() -> None:
    module = make_activation({"activation": "eafo", "eafo_base": "gelu", "eafo_eps": 0.2, "eafo_sigma": 1.5,
                              "eafo_tau": 0.5}).double()
    assert isinstance(module, EAFOActivation) and module.learnable
    expected = F.gelu(X) + 0.2 * eafo_correction("gelu", X, 1.5, 0.5)
    torch.testing.assert_close(module(X), expected, rtol=1e-6, atol=1e-7)  # ε is stored in float32
    assert sum(p.numel() for p in module.parameters()) == 1
    fixed = make_activation({"activation": "eafo", "learnable": False})
    assert sum(p.numel() for p in fixed.parameters()) == 0
    wafbc = make_activation({"activation": "wafbc", "wafbc_bound": 2.0, "eafo_sigma": 0.5})
    assert isinstance(wafbc, WorstActivation)
    torch.testing.assert_close(wafbc(X.float()), worst_activation(X.float(), 2.0, 0.5))


@pytest.mark.parametrize("tau", [1e-25, 1e-40, 1e-300])
@pytest.mark.parametrize("base", sorted(BASES))
def test_a_tiny_floor_gives_a_finite_correction_and_eps_zero_the_base_exactly(base: str, tau: float) -> None:
    """τ² underflowed to 0 in float32 (τ = 1e-25 and smaller): g'/g² read 0/0 and the module
    NaN, even at ε = 0. The stable form is finite everywhere, so ε = 0 is the base itself."""
    x = torch.linspace(-30.0, 30.0, 60001)  # float32, 0 and the kinks on the grid
    base_values, _, _ = base_and_derivatives(base, x)
    plain = make_activation({"activation": "eafo", "eafo_base": base, "eafo_tau": tau, "eafo_eps": 0.0})
    assert torch.equal(plain(x), base_values)
    kappa = eafo_correction(base, x, 1.0, tau)
    assert torch.isfinite(kappa).all()
    x.requires_grad_(True)
    module = make_activation({"activation": "eafo", "eafo_base": base, "eafo_tau": tau, "eafo_eps": 0.01})
    out = module(x)
    assert torch.isfinite(out).all()
    if tau >= 1e-25:  # below, the true ∂κ/∂x ~ 1/τ near 0 (and Σ κ) pass float32's range themselves
        out.sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(module.eps.grad).all()


def test_a_tiny_floor_keeps_the_rule_where_the_value_fits() -> None:
    """ReLU's branch x < 0 at τ = 1e-25: κ = x e^{−x²/2} / τ, up to 6e24 (finite in float32),
    and CRReLU's x e^{−x²/2} for x > 0, where g = f' = 1."""
    x = torch.linspace(-30.0, 30.0, 13)
    kappa = eafo_correction("relu", x, 1.0, 1e-25)
    expected = x.double() * torch.exp(-0.5 * x.double() ** 2) / torch.where(x > 0, 1.0, 1e-25).double()
    torch.testing.assert_close(kappa.double(), expected, rtol=1e-5, atol=1e-30)
    assert kappa[12 // 2 - 1] < -1e-25  # x = -5: e^{-12.5}·5e25, not 0


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"activation": "eafo", "eafo_base": "softmax"}, "unknown eafo_base 'softmax'"),
        ({"activation": "eafo", "eafo_tau": 0.0}, r"eafo_tau must be in \(0, 1\]"),
        ({"activation": "eafo", "eafo_tau": 1.5}, "eafo_tau"),
        ({"activation": "eafo", "eafo_sigma": -1.0}, "eafo_sigma"),
        ({"activation": "eafo", "eafo_eps": float("inf")}, "eafo_eps must be finite"),
        ({"activation": "wafbc", "wafbc_bound": 0}, "wafbc_bound"),
    ],
)
def test_bad_eafo_parameters_are_refused_before_training(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_activation(params)


def test_space_with_an_unknown_eafo_base_is_refused() -> None:
    space = {"activation": {"type": "categorical", "choices": ["eafo"]},
             "eafo_base": {"type": "categorical", "choices": ["relu", "swishy"]}}
    problems = ActivationEvaluator.check_space({}, space)
    assert problems == [f"space.eafo_base.choices: 'swishy' is not a known EAFO base (known: {', '.join(BASES)})"]


def test_worst_activation_trains_worse_than_relu_and_eafo_on_digits() -> None:
    """The 'worst' activation is worse in practice: it saturates outside ±B and is nearly linear inside."""
    evaluator = ActivationEvaluator()
    from workers.contract import EvalContext

    evaluator.setup({"hidden": [32], "epochs": 4}, EvalContext())
    scores = {name: evaluator.evaluate(params, EvalContext(seed=0))["objective"] for name, params in {
        "relu": {"activation": "relu"},
        "eafo-gelu": {"activation": "eafo", "eafo_base": "gelu", "eafo_eps": -0.05},
        "wafbc": {"activation": "wafbc", "wafbc_bound": 1.0},
    }.items()}
    assert scores["wafbc"] < min(scores["relu"], scores["eafo-gelu"]) - 0.02, scores
