"""``mo-bo``: multi-objective BO of the objective and measures (qLogNEHVI, BoTorch).

The outcomes are the fitness and, for each measure in ``measures`` (default: all),
``±measure`` by ``measure_directions`` (default maximize): the performance-vs-entropy
Pareto front. Independent GPs per outcome (``ModelListGP``), each warm-started from that
outcome's fit at the previous ask (:meth:`BoProposer.fit_outcomes`: an outcome modelled
for the first time, or fitted on more than ``gp.WARM_FIT_GROWTH`` times the observations
of its last cold fit, is fitted cold); the reference point is
inferred from the observed outcomes (BoTorch's ``infer_reference_point``). The noisy
hypervolume is integrated over ``mc_samples`` quasi-MC posterior draws (default 32): each
draw needs its own box decomposition of the Pareto front, recomputed whenever the pending
points change (q + 1 times per ask in a mixed space), so the cost of an ask grows linearly
with it — BoTorch's default of 128 made a three-outcome ask about 5× slower on 2 CPU cores.
The outcomes are standardised per column (:func:`search.proposers.gp.standardise`: any
finite magnitude), which maps each by a positive affine function: the same Pareto front,
the reference point inferred from them.

An outcome that has not varied (every evaluation so far gave it the same value:
``OutcomeScale.constant``) is left out of the model and of the hypervolume: it trades off
with nothing, and every point's hypervolume would be the others' times one factor. Kept,
its reference point sat 1e-8 below it while its posterior draws scattered about ±0.005
(standardised) around it: the improvement was that noise's, and each draw's box
decomposition had one more dimension and more non-dominated points (the noise splits
ties). It is modelled again as soon as it varies. With one varying outcome
left, the hypervolume improvement is that outcome's improvement: qLogNEI of it
(:meth:`BoProposer.improve`, fitted cold); with none, qLogNEI of the fitness (constant:
the posterior's spread alone, exploration). Everything else — Sobol design, pending and failed
points, no repeated proposals, the Sobol fallback of a failed fit, resume, the bounded fit
(``max_fit_points``: past it, the observations no other dominates in the outcomes modelled
are kept first, then those dominated by the fewest; the reference point is inferred from
the observations fitted, the same front while it fits the bound) — is :class:`BoProposer`'s.

**No compiled kernel by default.** BoTorch (0.18) JIT-compiles a fused C++ kernel for the
hypervolume's inner loop (``-O3 -march=native``) when the first qLogNEHVI of a process is
built: the first ask of a run took 25–60 s longer (the build; PyTorch's cache under
``~/.cache/torch_extensions`` was rebuilt by alternate processes), a binary built for one
node's CPU may crash on another sharing the home folder, and a machine without a compiler
printed BoTorch's warning on every run. The kernel saved nothing measurable per ask here
(see docs/benchmarks.md), so it is off unless ``fused_kernel: true``
(:func:`fused_kernel`); proposals differ between the two only by rounding (~1e-15).
"""

from __future__ import annotations

import numpy as np
import torch
from botorch.acquisition.multi_objective import logei
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.sampling import SobolQMCNormalSampler
from botorch.utils.multi_objective.hypervolume import infer_reference_point

from search.proposers import acquisition, gp
from search.proposers.base import Observation, ProposerContext
from search.proposers.bo import BoProposer


class _Kernel:
    """What :func:`fused_kernel` changed in BoTorch: the kernel it hid, and whether it stopped a load."""

    hidden: object | None = None
    blocked = False


def fused_kernel(enabled: bool) -> None:
    """Let qLogNEHVI use BoTorch's fused C++ kernel in this process (``enabled``) or not.

    BoTorch has no public switch: ``logei._try_load_fused_kernel`` (called by every
    qLogNEHVI's constructor) compiles or loads the kernel once a process unless the private
    ``logei._load_attempted`` is set, and the kernel is used while the private ``logei._C``
    holds it. Off: the load is marked done (nothing compiled) and a kernel loaded before is
    hidden; on: a hidden kernel is put back, a load this stopped is allowed again (the next
    qLogNEHVI compiles it). Called before each qLogNEHVI is built and used (asks run one at a
    time). If BoTorch renames either attribute this does nothing: its own default holds."""
    if not (hasattr(logei, "_load_attempted") and hasattr(logei, "_C")):
        return
    if enabled:
        if _Kernel.hidden is not None:
            logei._C, _Kernel.hidden = _Kernel.hidden, None
        if _Kernel.blocked and logei._C is None:
            logei._load_attempted, _Kernel.blocked = False, False
    else:
        if not logei._load_attempted:
            logei._load_attempted, _Kernel.blocked = True, True
        if logei._C is not None:
            _Kernel.hidden, logei._C = logei._C, None


class MoBoProposer(BoProposer):
    name = "mo-bo"
    option_names = ("initial_design", "num_restarts", "raw_samples", "max_fit_points", "mc_samples", "measures",
                    "measure_directions", "fused_kernel")

    restarts_default = 4  # hypervolume acquisitions cost more per restart than qLogNEI: lighter defaults
    raw_samples_default = 128

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.mc_samples = self.int_option("mc_samples", 32)
        self.fused_kernel = self.flag_option("fused_kernel", False)  # BoTorch's C++ kernel: see fused_kernel()
        names = ctx.layout.measure_names
        chosen = self.measures_option("measures", list(names))
        directions = self.directions_option("measure_directions")
        self.indices = [names.index(m) for m in chosen]
        self.signs = np.array([1.0 if directions.get(names[i], "maximize") == "maximize" else -1.0
                               for i in self.indices])

    def outcome(self, o: Observation) -> np.ndarray | None:
        if o.fitness is None or o.measures is None:
            return None
        return np.concatenate([[o.fitness], self.signs * np.asarray(o.measures, dtype=float)[self.indices]])

    def suggest(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z, scale = gp.standardise(np.stack(self.book.y))  # a positive affine map per outcome: the same front
        modelled = np.flatnonzero(~scale.constant)  # which outcomes: each GP's warm start is its outcome's
        varying = z[:, modelled]
        if varying.shape[1] < 2:  # no trade-off left: the improvement of the one outcome (or the fitness)
            return self.improve(varying if varying.shape[1] else z[:, :1], n, rng, warm=False)
        dev = gp.device()
        rows = self.fit_rows(varying)  # a bounded fit keeps the non-dominated first (BoProposer.fit_order)
        x = gp.tensor(self.encoder.to_model(np.stack(self.book.x)[rows]), dev)
        y = gp.tensor(varying[rows], dev)
        model = self.fit_outcomes(x, y, modelled.tolist())
        pending = self.pending_inputs(dev)
        ref = infer_reference_point(y)
        fused_kernel(self.fused_kernel)
        acqf = qLogNoisyExpectedHypervolumeImprovement(model, ref_point=ref.tolist(), X_baseline=x,
                                                       X_pending=pending, prune_baseline=True,
                                                       sampler=SobolQMCNormalSampler(torch.Size([self.mc_samples])))
        return acquisition.maximise(acqf, self.encoder, n, rng, dev, self.num_restarts, self.raw_samples,
                                    pending=pending, evaluated=np.stack(self.book.x))
