"""Activation functions for the ``activation`` evaluator: CRReLU, a searchable family,
symbolic expressions, the usual baselines, and the tiny models that use them.

Public API:

- :class:`CRReLU` — ``ReLU(x) + ε·x·exp(−x²/2)``, ε a learnable scalar (EAFO, arXiv 2405.12954).
- :class:`EAFOActivation` — ``f(x) + ε·κ_f(x)``, EAFO's entropy correction of a base f
  (ReLU at σ = τ = 1 is CRReLU); :class:`WorstActivation` — WAFBC, the scaled input CDF.
- :class:`GaussianPolyActivation` — ``ReLU(x) + exp(−x²/2)·Σ_k c_k x^k``, c fixed or learnable.
- :class:`Swish` — ``x·σ(βx)``; the other baselines are PyTorch's own modules.
- :func:`parse_activation` / :func:`validate_expression` — an expression in ``x``,
  checked by a whitelist walk of :mod:`ast` (never evaluated as Python), as a module.
- :func:`activation_factory` / :func:`make_activation` — modules from search parameters.
- :class:`MLP`, :class:`TinyViT` — the models the evaluator trains.
"""

from workers.activations.baselines import Swish
from workers.activations.crrelu import CRReLU, crrelu
from workers.activations.eafo import EAFOActivation, WorstActivation
from workers.activations.factory import ACTIVATION_KEYS, ACTIVATIONS, activation_factory, make_activation
from workers.activations.family import GaussianPolyActivation
from workers.activations.models import MLP, TinyViT
from workers.activations.symbolic import GRAMMAR_HELP, SymbolicActivation, parse_activation, validate_expression

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_KEYS",
    "GRAMMAR_HELP",
    "MLP",
    "CRReLU",
    "EAFOActivation",
    "GaussianPolyActivation",
    "Swish",
    "SymbolicActivation",
    "TinyViT",
    "WorstActivation",
    "activation_factory",
    "crrelu",
    "make_activation",
    "parse_activation",
    "validate_expression",
]
