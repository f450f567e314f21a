"""The vLLM logits processor of the vLLM backend (imports vLLM: load it only where vLLM is).

:class:`AtlasRulesLogitsProcessor` implements ``vllm.v1.sample.logits_processor.LogitsProcessor``
(the V1 model runner's interface; :func:`workers.decoding.vllm_backend.require_vllm` sets
``VLLM_USE_V2_MODEL_RUNNER=0`` for it) by delegating to
:class:`workers.decoding.vllm_backend.RowRules`, which applies this project's own sampler
chain to the rows whose ``SamplingParams.extra_args`` carry a configuration. It is not
argmax-invariant (in the ``llama.cpp`` order, typical sampling may remove the most
probable token before greedy picks), so vLLM runs it on the raw logits, before its
temperature; see the module docstring of :mod:`workers.decoding.vllm_backend` for why
that gives the HF backend's distribution.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor

from workers.decoding.vllm_backend import RowRules, config_of


class AtlasRulesLogitsProcessor(LogitsProcessor):
    """Typical, ε, η, Top-H (and any combination vLLM's native order would change), per row."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        """Refuse a request whose configuration is invalid or refused (one-line ValueError)."""
        config_of(getattr(sampling_params, "extra_args", None))

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.rules = RowRules()

    def is_argmax_invariant(self) -> bool:
        """False: the rules may change the greedy token (see the module docstring)."""
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        """Follow the persistent batch: removed, then added, then moved (vLLM's order)."""
        if batch_update is None:
            return
        self.rules.update(removed=batch_update.removed)
        self.rules.update(added=batch_update.added)
        self.rules.update(moved=batch_update.moved)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask each configured row to the tokens its rule keeps."""
        return self.rules.apply(logits) if self.rules.rows else logits
