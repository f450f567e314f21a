"""MAP-Elites, CMA-ME and CMA-MAE on pyribs archives and emitters, in the unit cube.

- ``map-elites``: ``ribs`` GaussianEmitter (x' = x + σ N(0, I)) or IsoLineEmitter
  (x' = x_i + σ_iso N(0, I) + σ_line N(0, 1)(x_j − x_i)), parents drawn uniformly from
  the archive; children clipped to [0, 1]. ``variation``:

  - ``adaptive`` (the default, unless ``iso_sigma``, ``line_sigma``, ``sigma`` or
    ``emitters`` is given: below): one IsoLineEmitter per entry of ``sigmas``, a σ_iso with
    σ_line ``line_sigma`` (0.5) or a [σ_iso, σ_line] pair. The default arms are seven
    *filling* arms, σ_iso 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2 with σ_line 0.5 (long
    steps along the elites, which reach new cells), and three *refining* arms,
    [0.002, 0.2], [0.01, 0.05], [0.02, 0.2] (short line steps, which improve elites of a
    nearly full map). ``guided`` (true): a filling arm (a σ_iso alone) draws parents
    beside empty cells more often, a refining arm (a pair) steps toward the elite of a
    better neighbouring cell (:mod:`search.proposers.guided_lines`); false: pyribs'
    IsoLineEmitter for every arm. A bandit shares each ask out over the arms: 5 % evenly, 95 % in
    proportion to the *square* of each arm's mean gain to the QD-score per child,
    μ_i = (g_i + ḡ)/(n_i + 1) (gain: a new cell's objective − ``qd_offset``, an improved
    elite's improvement, else 0; g_i, n_i the arm's gains and children told, faded by
    ``discount`` (0.8) per batch_size children; ḡ the pooled mean). Squaring sharpens
    plain probability matching, which gives an arm twice as good only twice the
    children, so that once the map is full and every arm's gain is small the batch
    still moves to the arms that refine best. Children go one at a time to the arm with
    the most credit (credit grows by n × share per ask), so asks of any size keep the
    shares. ``random_init`` (batch_size) uniform samples first, and uniform samples for
  as long as the archive holds no elite (unless ``x0`` is given): with several batches
  in flight before the first result, ribs' emitters would draw every later child of an
  empty archive around ``x0``, the centre (the quickstart's 300 children after its 100
  random ones fell in 4 cells).
  - ``iso_line`` (``iso_sigma`` 0.01, ``line_sigma`` 0.2: the Iso+LineDD paper's and
    pyribs' IsoLineEmitter defaults, ../shared/REFERENCE.md §7; a campaign stored before
    checkpoint version 4 keeps the ``iso_sigma`` default it ran under, 0.02) or ``gaussian``
    (``sigma`` 0.1): ``emitters`` (1) emitters of that one step, round robin, as before.

  Where ``variation`` is not named, the step options choose it (:func:`default_variation`):
  ``iso_sigma`` or ``line_sigma`` gives ``iso_line``; else ``sigma`` (gaussian's step)
  gives ``gaussian``; else ``emitters`` gives ``iso_line``; else ``adaptive``. Each of
  these options, and ``sigmas`` and ``discount``, that the variation does not use
  (:data:`USED_BY`: ``sigma`` beside ``iso_sigma``, ``iso_sigma`` under ``gaussian`` or
  ``adaptive``, ``emitters`` under ``adaptive``, ...) is taken and ignored with a warning
  (:meth:`MapElitesProposer.option_warnings`), never read. ``sigma`` alone once selected
  ``iso_line`` and was dropped: a campaign stored then resumes as ``iso_line``, with a
  warning, where its checkpoint says ``iso_line`` or is of version 1 or a legacy pickle
  (whose default that was); with no checkpoint yet it goes on as ``gaussian``.
- ``cma-me``: EvolutionStrategyEmitter (CMA-ES) with the two-stage improvement ranker
  ("2imp"), ``filter`` selection and ``no_improvement`` restarts, as in pyribs.
- ``cma-mae``: the same emitters with the "imp" ranker on an archive with a threshold
  learning rate α (``learning_rate``, default 0.01) and ``threshold_min``.

Each emitter is asked and told on its own, so results may arrive in any order and
several MAP-Elites generations can be in flight; a CMA-ES emitter proposes its next
generation only after the previous one is fully told (failed members rank last).

**Restarts on an empty archive.** pyribs restarts a CMA-ES (when it converges, or by
``restart_rule``) from an elite sampled from the archive, and raises ``IndexError`` when
the archive is empty. The archive can stay empty for good: CMA-MAE's admits a solution
only when its objective (the fitness: the objective, negated when minimised) beats its
cell's threshold, which starts at ``threshold_min``, by default ``archive.qd_offset``
(0 unless set), above every fitness of a minimised positive loss; and CMA-ME's stays
empty while every member fails. Such a restart starts from ``x0``, where the emitter
first started, instead of an elite (:func:`_tell_es`), and a warning says so once.

The ribs archive is a cache: for ``map-elites`` and ``cma-me`` it equals the elite table
and is rebuilt from SQL on resume; only emitter state is checkpointed. CMA-MAE's
threshold archive is proposer state and is checkpointed whole.

**Checkpoints** (:mod:`search.proposers.checkpoint`, fields and arrays, no pickle). The
proposer's own counters (``random_left``, ``next_emitter``, ``gen_counter``; ``map-elites``
version 2 adds ``variation`` and, adaptive, the arrays ``bandit.gain``, ``bandit.count``,
``bandit.credit``; version 3 is version 2 with the ten default arms: a version-2
checkpoint of the seven-arm default resumes its seven arms exactly and starts the three
refining arms fresh, with a warning; version 4 adds, under ``iso_line``,
``iso_sigma_default``: the σ_iso the campaign takes where its options give no
``iso_sigma``, 0.01 for a campaign begun under version 4; a checkpoint of version 3 or
older (or a legacy pickle), written when that default was 0.02, resumes at 0.02
(:data:`ISO_SIGMA_BEFORE_V4`), and says so in the field of every checkpoint after;
version 5 adds, under ``adaptive``, ``guided``: a checkpoint of version 4 or older (or a
legacy pickle) ran unguided arms and resumes unguided, and says so (``guided`` false) in
every checkpoint after; a
version-1 checkpoint is read as before, or, under ``adaptive``, its archive, order,
generators and counters with the arms on fresh streams and a warning), the
generations in flight (``gens``: each one's solutions and the results told so far) and
the base generator (``rng``, for the ``random_init`` draws) are plain values. ribs'
public API gives the rest where it can:

- ``archive.data()``: the elites and CMA-MAE's thresholds, and, in its ``index`` column,
  the order in which cells were first filled (``sample_elites`` draws parents by
  position in that order); the archive is rebuilt with ``archive.add``, one batch per
  increasing run of that order, so the order comes back exactly;
- ``emitter.restarts``, ``emitter.itrs`` (read), ``ranker.target_measure_dir`` (read and
  set, for rankers that have one).

ribs has no accessor for the following, which an exact resume needs, so they are read
and written as private attributes, as arrays or bit-generator states:

- ``archive._rng``: the generator of ``sample_elites`` (parent selection);
- ``archive._store.add``: CMA-MAE only, to put back the exact thresholds (``add``
  computes a threshold, it cannot be given one);
- ``GaussianEmitter._rng`` / ``IsoLineEmitter._rng``: the mutation noise;
- ``EvolutionStrategyEmitter._restarts``, ``._itrs`` (written; ``_restarts``, ``_opt.reset`` and
  ``_ranker.reset`` also to restart from ``x0`` on an empty archive), ``._ranker._rng``, and
  its ``_opt``, a ``CMAEvolutionStrategy``: ``mean``, ``sigma``, ``pc``, ``ps`` (the
  evolution paths), ``current_eval``, ``_rng``, ``_solutions`` (the generation being
  evaluated, which ``tell`` indexes) and ``cov``, its ``DecompMatrix``: ``cov``,
  ``eigenbasis``, ``eigenvalues``, ``invsqrt``, ``condition_number``, ``updated_eval``.

Because these are internals, the header pins the installed ribs version
(``requires``): a checkpoint is read only under the ribs that wrote it, and any other
version is a clear error, not state silently misread. A legacy pickle is never read:
``map-elites`` rebuilds from the archive with fresh random streams (its emitters keep
nothing else), ``cma-me`` and ``cma-mae`` refuse, since CMA-ES state is not in the archive.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from ribs.emitters import EvolutionStrategyEmitter, GaussianEmitter, IsoLineEmitter
from ribs.emitters.opt import CMAEvolutionStrategy

from search.proposers import checkpoint
from search.proposers.base import (
    History,
    Observation,
    OptionError,
    Proposal,
    Proposer,
    ProposerContext,
    formerly_shared,
    is_int,
    is_number,
    rows_so_far,
)
from search.proposers.checkpoint import Checkpoint, CheckpointError, rng_state, set_rng_state
from search.proposers.guided_lines import ArchiveCells, BetterNeighbourLineEmitter, FrontierLineEmitter

log = logging.getLogger("entropy_atlas.ribs")

FAILED_VALUE = -1e30  # rank of a failed CMA-ES member: below any real improvement value
VARIATIONS = ("adaptive", "iso_line", "gaussian")  # map-elites' variation (error messages list them in this order)
# map-elites' variation options and the variations that use them; every other variation ignores it, with a warning
USED_BY: dict[str, tuple[str, ...]] = {
    "sigma": ("gaussian",), "iso_sigma": ("iso_line",), "line_sigma": ("iso_line", "adaptive"),
    "emitters": ("iso_line", "gaussian"), "sigmas": ("adaptive",), "discount": ("adaptive",),
    "guided": ("adaptive",)}
FILLING_SIGMAS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)  # σ_iso of the filling arms (unit cube)
ADAPTIVE_LINE_SIGMA = 0.5  # and their σ_line
REFINING_ARMS = ((0.002, 0.2), (0.01, 0.05), (0.02, 0.2))  # (σ_iso, σ_line): short steps that improve elites
ADAPTIVE_SIGMAS: tuple[float | tuple[float, float], ...] = (*FILLING_SIGMAS, *REFINING_ARMS)  # the default arms
ADAPTIVE_DISCOUNT = 0.8  # the bandit's memory fades by this per batch_size children
ISO_LINE_STEPS = (0.01, 0.2)  # single-step iso_line's (σ_iso, σ_line): REFERENCE §7, pymap_elites' and pyribs' defaults
# single-step iso_line's σ_iso default before checkpoint version 4: a campaign stored then (checkpoint version <= 3, or
# a legacy pickle) with no iso_sigma option ran at it, and resumes at it (RibsProposer._keep_iso_sigma_default)
ISO_SIGMA_BEFORE_V4 = 0.02
GUIDED_SINCE = 5  # map-elites' checkpoint version from which the adaptive arms are guided; before: unguided
EXPLORE = 0.05  # the share of each adaptive ask spread evenly over the arms
SHARPNESS = 2.0  # shares (beyond EXPLORE) ∝ mean gain ** SHARPNESS
RANKERS = ("imp", "2imp", "rd", "2rd", "obj", "2obj")  # pyribs' rankers that need nothing more than the archive
# the options one class took for all three algorithms: each now takes its own, and its siblings' with a warning
ONCE_SHARED = ("emitters", "variation", "sigma", "iso_sigma", "line_sigma", "sigma0", "ranker", "selection_rule",
               "restart_rule", "learning_rate", "threshold_min", "random_init", "x0")


def default_variation(options: Mapping[str, Any]) -> str:
    """map-elites' ``variation`` where none is named, from the step options named: ``iso_line``
    when ``iso_sigma`` or ``line_sigma`` is (``sigma`` with them is ignored, with a warning),
    else ``gaussian`` when ``sigma`` is (its step), else ``iso_line`` when ``emitters`` is,
    else ``adaptive``."""
    if "iso_sigma" in options or "line_sigma" in options:
        return "iso_line"
    if "sigma" in options:
        return "gaussian"
    return "iso_line" if "emitters" in options else "adaptive"


def selected_by_sigma(options: Mapping[str, Any]) -> bool:
    """Whether ``sigma`` alone chose ``gaussian`` (no ``variation`` named): such a campaign
    once ran ``iso_line`` at its default steps, ``sigma`` ignored (:meth:`RibsProposer._as_iso_line`)."""
    return "variation" not in options and default_variation(options) == "gaussian"


def unused_by(variation: str, options: Mapping[str, Any]) -> list[str]:
    """The options of :data:`USED_BY` named in ``options`` that ``variation`` does not use."""
    return [key for key, users in USED_BY.items() if key in options and variation not in users]


MAX_RESAMPLES = 1000  # the expected draws per in-bounds solution past which sigma0 is refused


def in_cube_probability(sigma: float, x0: np.ndarray) -> float:
    """P(x ∈ [0, 1]^d) for x ~ N(x0, σ² I): Π_i [Φ((1 − x0_i)/σ) − Φ(−x0_i/σ)] (Φ: SciPy's ``ndtr``)."""
    from scipy.special import ndtr

    x0 = np.asarray(x0, dtype=float)
    return float(np.prod(ndtr((1.0 - x0) / sigma) - ndtr(-x0 / sigma)))


def _largest_sigma(x0: np.ndarray) -> float:
    """The largest σ whose draws land in the cube at least one time in :data:`MAX_RESAMPLES` (bisection)."""
    low, high = 1e-9, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if in_cube_probability(mid, x0) >= 1 / MAX_RESAMPLES else (low, mid)
    return low


class RibsProposer(Proposer):
    """Emitters of pyribs over a pyribs archive of the campaign's cells."""

    option_names = ("emitters", "random_init", "x0")  # and each algorithm's own, below
    name = "map-elites"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        dim = ctx.space.dim
        n_emitters = self.int_option("emitters", 1)
        emitter_batch = max(1, ctx.batch_size // n_emitters)
        x0 = np.asarray(self.option("x0", [0.5] * dim, lambda v: isinstance(v, list) and len(v) == dim and all(
            is_number(c) and 0 <= c <= 1 for c in v), f"must be {dim} numbers in [0, 1] (a point of the unit cube)"),
            dtype=float)
        is_mae = self.name == "cma-mae"
        self.adaptive, self.discount = False, 1.0
        self.guided, self.arms = False, []
        self.cells: ArchiveCells | None = None  # the guided arms' shared view of the archive
        archive_kwargs: dict[str, Any] = {"seed": ctx.seed}
        if is_mae:
            archive_kwargs["learning_rate"] = self.number_option("learning_rate", 0.01, above=0, maximum=1)
            archive_kwargs["threshold_min"] = self.number_option("threshold_min", ctx.qd_offset)
        self.archive = ctx.layout.make_archive(solution_dim=dim, **archive_kwargs)
        self.keep_archive = is_mae
        seeds = np.random.SeedSequence(ctx.seed).spawn(n_emitters)
        bounds = [(0.0, 1.0)] * dim
        self.emitters: list[Any] = []
        if self.name == "map-elites":
            variation = self.choice_option("variation", default_variation(ctx.options), VARIATIONS)
            self.variation = variation
            self.iso_sigma_default = ISO_LINE_STEPS[0]  # σ_iso without an iso_sigma option; older campaigns keep theirs
            self.adaptive = variation == "adaptive"
            if self.adaptive:
                sigmas = self.option("sigmas", [list(a) if isinstance(a, tuple) else a for a in ADAPTIVE_SIGMAS],
                                     _arms_ok,
                                     "must be a list of σ_iso > 0, or of [σ_iso, σ_line] pairs of numbers > 0")
                line_sigma = self.number_option("line_sigma", ADAPTIVE_LINE_SIGMA, above=0)
                self.discount = self.number_option("discount", ADAPTIVE_DISCOUNT, above=0, maximum=1)
                self.arms = [(float(a), line_sigma, FrontierLineEmitter) if isinstance(a, int | float)
                             else (float(a[0]), float(a[1]), BetterNeighbourLineEmitter) for a in sigmas]
                self.guided = self.flag_option("guided", True)
                self._build_arms(x0)
            else:
                self.emitters = self._single_step_emitters(variation, x0, n_emitters)
            self.x0, self.n_emitters = x0, n_emitters
            self.random_left = self.int_option("random_init", ctx.batch_size, minimum=0)
            self.uniform_while_empty = "x0" not in ctx.options
        else:
            ranker = self.choice_option("ranker", "imp" if is_mae else "2imp", RANKERS)
            selection = self.choice_option("selection_rule", "mu" if is_mae else "filter", ("mu", "filter"))
            restart = self.option("restart_rule", "basic" if is_mae else "no_improvement",
                                  lambda v: v in ("no_improvement", "basic") or (is_int(v) and v >= 1),
                                  "must be no_improvement, basic or a number of generations >= 1")
            sigma0 = self.number_option("sigma0", 0.15, above=0)
            self._check_generation(n_emitters, emitter_batch)
            self._check_sigma0(sigma0, x0)
            for s in seeds:
                self.emitters.append(EvolutionStrategyEmitter(
                    self.archive, x0=x0, sigma0=sigma0, ranker=ranker, selection_rule=selection,
                    restart_rule=restart, bounds=bounds, batch_size=emitter_batch, seed=_int_seed(s)))
            self.random_left = self.int_option("random_init", 0, minimum=0)
            self.uniform_while_empty = False  # CMA-ES starts from x0 by design
        self.is_es = self.name != "map-elites"
        k = len(self.emitters)
        # the bandit (adaptive only): discounted gain and count per arm, and each arm's credit
        self.gain, self.count, self.credit = np.zeros(k), np.zeros(k), np.zeros(k)
        self.next_emitter = 0
        self.gen_counter = 0
        # emitter index -> the generation it waits on (CMA-ES emitters only)
        self.gens: dict[int, dict[str, Any]] = {}
        self.warned_empty = False  # whether a restart from x0 (empty archive) was warned about

    def _build_arms(self, x0: np.ndarray) -> None:
        """The adaptive arms, one emitter each on its own stream of the seed: guided (the
        default), a σ_iso given alone is a filling arm (:class:`FrontierLineEmitter`) and a
        [σ_iso, σ_line] pair a refining arm (:class:`BetterNeighbourLineEmitter`); unguided,
        each is pyribs' IsoLineEmitter."""
        seeds = np.random.SeedSequence(self.ctx.seed).spawn(len(self.arms))
        common = {"x0": x0, "bounds": [(0.0, 1.0)] * self.ctx.space.dim, "batch_size": self.ctx.batch_size}
        self.cells = ArchiveCells(self.archive, self.ctx.layout) if self.guided else None
        self.emitters = [
            kind(self.archive, layout=self.ctx.layout, cells=self.cells, iso_sigma=iso, line_sigma=line,
                 seed=_int_seed(s), **common)
            if self.guided else IsoLineEmitter(self.archive, iso_sigma=iso, line_sigma=line, seed=_int_seed(s),
                                               **common)
            for s, (iso, line, kind) in zip(seeds, self.arms, strict=True)]

    def _single_step_emitters(self, variation: str, x0: np.ndarray, n_emitters: int) -> list[Any]:
        """``n_emitters`` emitters of one step, each of batch_size // n_emitters children:
        ``gaussian``, σ ``sigma`` (0.1); ``iso_line``, ``iso_sigma`` (``iso_sigma_default``: 0.01,
        or 0.02 for a campaign stored before checkpoint version 4) and ``line_sigma`` (0.2),
        :data:`ISO_LINE_STEPS`. Only the chosen variation's options are read."""
        batch = max(1, self.ctx.batch_size // n_emitters)
        bounds = [(0.0, 1.0)] * self.ctx.space.dim
        if variation == "gaussian":
            sigma = self.number_option("sigma", 0.1, above=0)
            return [GaussianEmitter(self.archive, sigma=sigma, x0=x0, bounds=bounds, batch_size=batch,
                                    seed=_int_seed(s)) for s in np.random.SeedSequence(self.ctx.seed).spawn(n_emitters)]
        iso = self.number_option("iso_sigma", self.iso_sigma_default, above=0)
        line = self.number_option("line_sigma", ISO_LINE_STEPS[1], above=0)
        return [IsoLineEmitter(self.archive, iso_sigma=iso, line_sigma=line, x0=x0, bounds=bounds, batch_size=batch,
                               seed=_int_seed(s)) for s in np.random.SeedSequence(self.ctx.seed).spawn(n_emitters)]

    def _check_generation(self, n_emitters: int, emitter_batch: int) -> None:
        """CMA-ES ranks a generation to update its mean and shape: one of a single member
        has no parents (pyribs' weights divide by zero)."""
        if emitter_batch < 2:
            raise OptionError(f"search.batch_size: {self.name} needs generations of at least 2 per emitter; "
                              f"batch_size {self.ctx.batch_size} over {n_emitters} emitter(s) gives {emitter_batch}")

    def _check_sigma0(self, sigma0: float, x0: np.ndarray) -> None:
        """pyribs resamples each solution of CMA-ES until it lies within the bounds (the
        unit cube), without limit: where a draw of N(x0, sigma0² I) lands in the cube less
        than one time in :data:`MAX_RESAMPLES`, the first ask would run on for hours."""
        inside = in_cube_probability(sigma0, x0)
        if inside < 1 / MAX_RESAMPLES:
            largest = _largest_sigma(x0)
            odds = f"one time in {1 / inside:.3g}" if inside > 0 else "never, to double precision"
            raise self.option_error("sigma0", f"a first-generation solution of N(x0, {sigma0:g}²) lands in the unit "
                                              f"cube of {len(x0)} dimensions {odds}, and pyribs resamples until "
                                              f"each does: take sigma0 <= {largest:.3g}")

    # -- ask/tell ------------------------------------------------------------
    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        if self.random_left > 0:
            k = min(n, self.random_left)
            out += self.uniform(k)
            self.random_left -= k
        if self.uniform_while_empty and self.archive.empty:  # ribs' emitters would all draw around x0
            return out + self.uniform(n - len(out))
        if self.adaptive:
            return out + self._ask_adaptive(n - len(out))
        busy_in_a_row = 0
        while len(out) < n and busy_in_a_row < len(self.emitters):
            i = self.next_emitter
            self.next_emitter = (i + 1) % len(self.emitters)
            if i in self.gens:
                busy_in_a_row += 1
                continue
            busy_in_a_row = 0
            solutions = np.asarray(self.emitters[i].ask())
            take = solutions[: n - len(out)]
            gen = self.gen_counter
            self.gen_counter += 1
            if self.is_es:
                self.gens[i] = {"gen": gen, "solutions": take, "results": {},
                                "truncated": len(take) < len(solutions)}
                busy_in_a_row = 0
            out += [Proposal(x, meta={"emitter": i, "gen": gen, "index": j})
                    for j, x in enumerate(np.clip(take, 0, 1))]
        return out

    def _ask_adaptive(self, n: int) -> list[Proposal]:
        """``n`` children shared out over the arms by :meth:`shares`: each arm's credit
        grows by n × its share and a child goes, one at a time, to the arm of most credit
        (ties: the lowest index), which pays 1 for it; so any sequence of asks, however
        small, gives each arm its share over time. An arm's children are the first k of
        one ``ask`` of its emitter. The bandit's memory then fades by
        ``discount`` ** (n / batch_size)."""
        if n <= 0:
            return []
        if self.cells is not None:
            self.cells.expire()  # the archive may have changed since the last ask: the guided arms read it again
        self.credit += n * self.shares()
        take = np.zeros(len(self.emitters), dtype=int)
        for _ in range(n):
            i = int(np.argmax(self.credit))
            take[i] += 1
            self.credit[i] -= 1.0
        fade = self.discount ** (n / self.ctx.batch_size)
        self.gain *= fade
        self.count *= fade
        out: list[Proposal] = []
        for i in np.flatnonzero(take):
            solutions = np.clip(np.asarray(self.emitters[i].ask())[: take[i]], 0, 1)
            gen = self.gen_counter
            self.gen_counter += 1
            out += [Proposal(x, meta={"emitter": int(i), "gen": gen, "index": j}) for j, x in enumerate(solutions)]
        return out

    def shares(self) -> np.ndarray:
        """The adaptive arms' shares of the next children: ``EXPLORE`` (0.05) of them spread
        evenly, the rest in proportion to μ_i ** ``SHARPNESS`` (2), μ_i = (g_i + ḡ) /
        (n_i + 1) each arm's mean gain per child, with g_i its discounted gain, n_i its
        discounted count of children told and ḡ = Σg / Σn the pooled mean (a prior of one
        average child); all even while nothing has gained. The power sharpens probability
        matching: an arm of twice the mean gain gets four times the children, not twice."""
        k = len(self.emitters)
        total = float(self.count.sum())
        pooled = float(self.gain.sum()) / total if total > 0 else 0.0
        mean = (self.gain + pooled) / (self.count + 1.0)
        if not np.isfinite(mean).all() or mean.sum() <= 0:
            return np.full(k, 1.0 / k)
        weight = (mean / mean.max()) ** SHARPNESS  # scaled first: no overflow for large gains
        return EXPLORE / k + (1.0 - EXPLORE) * weight / weight.sum()

    def tell(self, observations: list[Observation]) -> None:
        ok = [o for o in observations if o.ok]
        infos: dict[int, tuple[int, float]] = {}
        if ok:
            add_info = self.archive.add(
                solution=np.stack([o.x for o in ok]),
                objective=np.array([o.fitness for o in ok], dtype=float),
                measures=np.stack([o.measures for o in ok]),
            )
            for k, o in enumerate(ok):
                infos[o.evaluation_id] = (int(add_info["status"][k]), float(add_info["value"][k]))
        if self.adaptive:
            self._credit(observations, infos)
        if not self.is_es:
            return
        low = np.array([lo for lo, _ in self.ctx.layout.ranges])
        for o in observations:
            i, gen = o.meta.get("emitter"), o.meta.get("gen")
            state = self.gens.get(i) if i is not None else None
            if state is None or state["gen"] != gen:
                continue
            status, value = infos.get(o.evaluation_id, (0, FAILED_VALUE))
            fitness = o.fitness if o.ok else FAILED_VALUE
            measures = o.measures if o.ok else low
            state["results"][int(o.meta["index"])] = (fitness, measures, status, value)
            if len(state["results"]) == len(state["solutions"]):
                self._finish_generation(i, state)

    def _credit(self, observations: list[Observation], infos: dict[int, tuple[int, float]]) -> None:
        """Each child told counts for its arm, with its gain to the QD-score: a new cell's
        objective − ``qd_offset``, an improved elite's improvement, else (not added,
        failed) 0 (gains are floored at 0), as pyribs' batch ``add`` reports each child:
        children of one batch in the same empty cell are each a new cell there. (Crediting
        each cell's best child alone was measured worse: docs/benchmarks.md, "The bandit's
        credit, per child or per cell".)"""
        for o in observations:
            i = o.meta.get("emitter")
            if not isinstance(i, int) or "gen" not in o.meta or not 0 <= i < len(self.emitters):
                continue
            status, value = infos.get(o.evaluation_id, (0, 0.0))
            gain = value - self.ctx.qd_offset if status == 2 else value if status == 1 else 0.0
            self.count[i] += 1.0
            self.gain[i] += max(0.0, gain) if np.isfinite(gain) else 0.0

    def _finish_generation(self, i: int, state: dict[str, Any]) -> None:
        del self.gens[i]
        if state["truncated"]:
            return  # a partial generation (end of budget) does not update CMA-ES
        order = range(len(state["solutions"]))
        res = [state["results"][j] for j in order]
        restarted_at_x0 = _tell_es(
            self.emitters[i],
            solution=state["solutions"],
            objective=np.array([r[0] for r in res], dtype=float),
            measures=np.stack([r[1] for r in res]),
            add_info={"status": np.array([r[2] for r in res], dtype=np.int32),
                      "value": np.array([r[3] for r in res], dtype=float)},
        )
        if restarted_at_x0 and not self.warned_empty:
            self.warned_empty = True
            why = (f"no fitness has beaten threshold_min ({self.archive.threshold_min:g}); set "
                   f"search.options.threshold_min below the fitness reached" if self.name == "cma-mae"
                   else "every member so far failed")
            log.warning("proposer %s: CMA-ES restarted from x0, the archive having no elite (%s)", self.name, why)

    # -- checkpoints -------------------------------------------------------------
    def restore(self, state: bytes | None, history: History) -> None:
        """:meth:`Proposer.restore`, then :func:`warm_up_archive_add` for this archive's kind
        (and :func:`warm_up_cma_es` for CMA-ES emitters): the run restores before it
        dispatches anything, so the first ``tell`` of every run is as quick as the next (a
        scheduler stopped inside a slow one loses that turn's results)."""
        super().restore(state, history)
        warm_up_archive_add(self.archive)
        if self.is_es:
            warm_up_cma_es(_cma_es(self.emitters[0]))

    def to_checkpoint(self) -> Checkpoint:
        """Counters, generations in flight, every generator and emitter's state, and the
        archive's order (CMA-MAE: the whole threshold archive); see the module docstring."""
        fields: dict[str, Any] = {
            "rng": rng_state(self.rng), "random_left": self.random_left, "next_emitter": self.next_emitter,
            "gen_counter": self.gen_counter, "archive_rng": rng_state(_private(self.archive, "_rng")),
            "gens": {str(i): {"gen": g["gen"], "truncated": g["truncated"]} for i, g in self.gens.items()},
            "emitters": [],
        }
        arrays: dict[str, np.ndarray] = {"archive.index": np.asarray(self.archive.data("index"), dtype=np.int64)}
        if self.keep_archive:
            data = self.archive.data()
            arrays |= {f"archive.{k}": np.asarray(data[k]) for k in ARCHIVE_FIELDS}
        for i, emitter in enumerate(self.emitters):
            emitter_fields, emitter_arrays = _emitter_checkpoint(emitter, f"emitter.{i}")
            fields["emitters"].append(emitter_fields)
            arrays |= emitter_arrays
        for i, g in self.gens.items():
            arrays |= _generation_arrays(g, f"gen.{i}", self.archive.measure_dim)
        if self.name == "map-elites":
            fields["variation"] = self.variation
            if self.variation == "iso_line":
                fields["iso_sigma_default"] = self.iso_sigma_default
            if self.adaptive:
                fields["guided"] = self.guided
                arrays |= {"bandit.gain": self.gain, "bandit.count": self.count, "bandit.credit": self.credit}
        return Checkpoint(fields=fields, arrays=arrays, requires={"ribs": _ribs_version()})

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        if saved is None:
            self._rebuild_archive(history.elites(), order=None)
            return
        fields, arrays = saved.fields, saved.arrays
        if saved.version < GUIDED_SINCE or fields.get("guided") is False:
            self._keep_unguided()
        if self.name == "map-elites" and saved.version < 2 and self.adaptive:
            self._from_single_step(fields, arrays, history)
            return
        if self.name == "map-elites":
            self._keep_iso_sigma_default(_iso_sigma_default_of(saved, self.name))
        saved_variation = fields.get("variation", self.ctx.options.get("variation", "iso_line"))  # v1: no field
        if self.name == "map-elites" and saved_variation == "iso_line" and selected_by_sigma(self.ctx.options):
            self._as_iso_line(f"its checkpoint (version {saved.version}) is of variation iso_line")
        if self.name == "map-elites" and fields.get("variation", self.variation) != self.variation:
            raise CheckpointError(f"the checkpoint of proposer {self.name!r} is of variation "
                                  f"{fields.get('variation')!r}, the campaign's options give {self.variation!r}")
        if self.keep_archive:
            self._load_archive(arrays)
        else:
            self._rebuild_archive(history.elites(), order=arrays["archive.index"])
        set_rng_state(_private(self.archive, "_rng"), fields["archive_rng"], "the archive's generator")
        set_rng_state(self.rng, fields["rng"], f"{self.name}'s generator")
        self.random_left = int(fields["random_left"])
        self.next_emitter = int(fields["next_emitter"])
        self.gen_counter = int(fields["gen_counter"])
        saved_arms = len(fields["emitters"])
        seven_arm_default = (self.adaptive and saved.version == 2 and "sigmas" not in self.ctx.options
                             and saved_arms == len(FILLING_SIGMAS))
        if saved_arms != len(self.emitters) and not seven_arm_default:
            raise CheckpointError(f"the checkpoint of proposer {self.name!r} has {saved_arms} "
                                  f"emitters, the campaign's options {len(self.emitters)}")
        for i, (emitter, emitter_fields) in enumerate(zip(self.emitters[:saved_arms], fields["emitters"],
                                                          strict=True)):
            _load_emitter(emitter, emitter_fields, arrays, f"emitter.{i}", self.name)
        self.gens = {int(i): _load_generation(g, arrays, f"gen.{i}") for i, g in fields["gens"].items()}
        if self.adaptive:
            new = len(self.emitters) - saved_arms  # the refining arms a seven-arm checkpoint lacks: start fresh
            self.gain, self.count, self.credit = (
                np.concatenate([_arm_array(arrays, f"bandit.{k}", saved_arms, self.name), np.zeros(new)])
                for k in ("gain", "count", "credit"))
            if new:
                checkpoint.log.warning(
                    "proposer %s: the checkpoint is of the seven-arm adaptive default (version 2); its arms resume "
                    "exactly and the %d refining arms start with no gain told", self.name, new)

    def _keep_unguided(self) -> None:
        """A campaign stored before checkpoint version :data:`GUIDED_SINCE` (5), or as a
        legacy pickle, ran its adaptive arms unguided (pyribs' IsoLineEmitter) and goes on
        so, as its later checkpoints say (``guided`` false): the arms are rebuilt unguided
        before their generators are loaded. No warning: the campaign goes on as it ran."""
        if self.adaptive and self.guided:
            self.guided = False
            self._build_arms(self.x0)

    def _keep_iso_sigma_default(self, default: float) -> None:
        """A stored campaign keeps the σ_iso default it ran under (:func:`_iso_sigma_default_of`;
        a legacy pickle: :data:`ISO_SIGMA_BEFORE_V4`), which single-step ``iso_line`` takes
        where the options give no ``iso_sigma``: its emitters, built from the options at
        0.01, are rebuilt with it before their generators are loaded. No warning: the
        campaign goes on as it ran."""
        if default == self.iso_sigma_default:
            return
        self.iso_sigma_default = default
        if self.variation == "iso_line":
            self.emitters = self._single_step_emitters("iso_line", self.x0, self.n_emitters)

    def _as_iso_line(self, why: str) -> None:
        """A campaign stored when ``sigma`` alone still selected ``iso_line`` (its default
        steps; ``sigma`` ignored) goes on as it ran: its emitters are rebuilt as iso_line,
        as a warning says. New campaigns with the same options run ``gaussian``."""
        self.variation = "iso_line"
        self.emitters = self._single_step_emitters("iso_line", self.x0, self.n_emitters)
        checkpoint.log.warning(
            "proposer %s: %s, which search.options.sigma alone selected before (sigma ignored); resumed as "
            "iso_line at its default steps (iso_sigma %g, line_sigma %g); a new campaign with these options runs "
            "variation gaussian", self.name, why, self.iso_sigma_default, ISO_LINE_STEPS[1])

    def _from_single_step(self, fields: dict[str, Any], arrays: dict[str, np.ndarray], history: History) -> None:
        """A version-1 ``map-elites`` checkpoint (one σ: the default before ``adaptive``)
        resumed under ``adaptive``: the archive in its saved order, the base and archive
        generators and the counters come back; the arms start on fresh streams seeded from
        (seed, rows so far) and the bandit starts even, as a warning says."""
        rows = rows_so_far(history)
        self._rebuild_archive(history.elites(), order=arrays["archive.index"])
        set_rng_state(_private(self.archive, "_rng"), fields["archive_rng"], "the archive's generator")
        set_rng_state(self.rng, fields["rng"], f"{self.name}'s generator")
        self.random_left = int(fields["random_left"])
        self.gen_counter = int(fields["gen_counter"])
        streams = np.random.SeedSequence([self.ctx.seed, rows]).spawn(len(self.emitters))
        for emitter, stream in zip(self.emitters, streams, strict=True):
            _private(emitter, "_rng").bit_generator.state = np.random.default_rng(stream).bit_generator.state
        checkpoint.log.warning(
            "proposer %s: the checkpoint is of a single-step map-elites (version 1) and the campaign's options now "
            "give variation adaptive; resumed with the archive, its order and the counters, and the %d arms on fresh "
            "streams seeded from (seed, %d rows)", self.name, len(self.emitters), rows)

    def from_legacy(self, history: History) -> None:
        """``map-elites``: the archive from SQL, every generator on a fresh stream seeded
        from (seed, rows so far), the counters advanced past the rows. CMA-ES: refused."""
        if self.is_es:
            raise checkpoint.legacy_error(
                self.name, "its CMA-ES state (mean, covariance, step size, evolution paths) is not in the archive")
        self._keep_iso_sigma_default(ISO_SIGMA_BEFORE_V4)
        self._keep_unguided()
        if selected_by_sigma(self.ctx.options):
            self._as_iso_line("its checkpoint is a legacy pickle, written when the default was iso_line")
        rows = rows_so_far(history)
        self._rebuild_archive(history.elites(), order=None)
        streams = np.random.SeedSequence([self.ctx.seed, rows]).spawn(len(self.emitters) + 2)
        self.rng = np.random.default_rng(streams[0])
        _private(self.archive, "_rng").bit_generator.state = np.random.default_rng(streams[1]).bit_generator.state
        for emitter, stream in zip(self.emitters, streams[2:], strict=True):
            _private(emitter, "_rng").bit_generator.state = np.random.default_rng(stream).bit_generator.state
        self.random_left = max(0, self.random_left - rows)
        self.gen_counter = rows
        checkpoint.warn_legacy(self.name, f"the elites from SQL, fresh random streams seeded from (seed, {rows} rows)")

    def _rebuild_archive(self, elites: list[Observation], order: np.ndarray | None) -> None:
        """The archive of ``elites``, its cells first filled in ``order`` (None: as ``add``
        files one batch). An order that does not match the elites is warned about and
        dropped: the archive is still right, only parent draws differ from an
        uninterrupted run."""
        self.archive.clear()
        if not elites:
            return
        solution = np.stack([e.x for e in elites])
        objective = np.array([e.fitness for e in elites], dtype=float)
        measures = np.stack([e.measures for e in elites])
        index = np.asarray(self.archive.index_of(measures), dtype=np.int64)
        runs = [np.arange(len(elites))]
        if order is not None:
            where = {int(c): k for k, c in enumerate(index)}
            if len(where) == len(index) == len(order) and set(where) == set(order.tolist()):
                rows = np.array([where[int(c)] for c in order], dtype=np.int64)
                runs = [rows[run] for run in _increasing_runs(index[rows])]
            else:
                checkpoint.log.warning("proposer %s: the checkpoint's archive order does not match the %d elites "
                                       "in SQL; the archive is rebuilt without it", self.name, len(elites))
        for run in runs:
            self.archive.add(solution=solution[run], objective=objective[run], measures=measures[run])

    def _load_archive(self, arrays: dict[str, np.ndarray]) -> None:
        """CMA-MAE: the saved threshold archive, cells in their saved order, thresholds exact."""
        index, saved = arrays["archive.index"], {k: arrays[f"archive.{k}"] for k in ARCHIVE_FIELDS}
        self.archive.clear()
        for run in _increasing_runs(index):
            self.archive.add(solution=saved["solution"][run], objective=saved["objective"][run],
                             measures=saved["measures"][run])
        data = self.archive.data()
        if not np.array_equal(np.asarray(data["index"]), index):
            raise CheckpointError(f"the checkpoint of proposer {self.name!r} holds an archive that does not "
                                  f"fit the campaign's cells")
        if len(index):
            store = _private(self.archive, "_store")
            store.add(index, {**{k: v for k, v in data.items() if k != "index"}, "threshold": saved["threshold"]})


class MapElitesProposer(RibsProposer):
    """MAP-Elites; version 2 of its checkpoint adds ``variation`` and the adaptive bandit
    (``bandit.gain``, ``bandit.count``, ``bandit.credit``); version 3 has the same fields
    for the ten-arm default (a version-2 checkpoint of the seven-arm default gets the
    three refining arms added fresh); version 4 adds ``iso_sigma_default`` under
    ``iso_line`` (0.01 from version 4; versions 1 to 3 ran at 0.02 and resume at it);
    version 5 adds ``guided`` under ``adaptive`` (versions 1 to 4 ran unguided and resume
    so); versions 1 to 4 are still read."""

    name = "map-elites"
    option_names = (*RibsProposer.option_names, "variation", "sigma", "iso_sigma", "line_sigma", "sigmas", "discount",
                    "guided")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)
    checkpoint_version = GUIDED_SINCE
    migrates_versions = (1, 2, 3, 4)

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any], path: str = "search.options") -> list[str]:
        """Also each variation option (:data:`USED_BY`) that the variation (named, or
        implied: :func:`default_variation`) does not use: ignored, one line each naming
        the variations that do (``sigma`` beside ``variation: iso_line``, ``iso_sigma``
        beside ``gaussian`` or ``adaptive``, ``emitters`` beside ``adaptive``, ...)."""
        out = super().option_warnings(options, path)
        variation = options.get("variation", default_variation(options))
        if variation not in VARIATIONS:
            return out  # refused when the proposer is built
        for key in unused_by(variation, options):
            users = USED_BY[key]
            who = f"only {users[0]} does" if len(users) == 1 else f"only {' and '.join(users)} do"
            out.append(f"{path}.{key}: the {variation} variation does not use it ({who}); it is ignored")
        return out


class CmaMeProposer(RibsProposer):
    name = "cma-me"
    option_names = (*RibsProposer.option_names, "sigma0", "ranker", "selection_rule", "restart_rule")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)


class CmaMaeProposer(RibsProposer):
    name = "cma-mae"
    option_names = (*CmaMeProposer.option_names, "learning_rate", "threshold_min")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)


def _iso_sigma_default_of(saved: Checkpoint, proposer: str) -> float:
    """The σ_iso default a stored ``map-elites`` campaign ran under: :data:`ISO_SIGMA_BEFORE_V4`
    (0.02) for a checkpoint of version 3 or older; from version 4 its ``iso_sigma_default``
    field (written under ``iso_line``; absent, the current default, ``ISO_LINE_STEPS[0]``)."""
    if saved.version <= 3:
        return ISO_SIGMA_BEFORE_V4
    value = saved.fields.get("iso_sigma_default", ISO_LINE_STEPS[0])
    if not is_number(value) or not value > 0:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has iso_sigma_default {value!r}, "
                              f"not a number > 0")
    return float(value)


def _arm_array(arrays: dict[str, np.ndarray], name: str, k: int, proposer: str) -> np.ndarray:
    """A saved per-arm array of the adaptive bandit, checked to hold one number per arm."""
    value = arrays.get(name)
    if value is None or np.shape(value) != (k,):
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has no {name} for {k} arms")
    return np.array(value, dtype=float)


def _arms_ok(v: Any) -> bool:
    """``sigmas``: a non-empty list of σ_iso > 0, or of [σ_iso, σ_line] pairs > 0."""
    def number(x: Any) -> bool:
        return is_number(x) and x > 0
    return isinstance(v, list | tuple) and len(v) >= 1 and all(
        number(a) or (isinstance(a, list | tuple) and len(a) == 2 and all(number(x) for x in a)) for a in v)


def warm_up_archive_add(archive: Any) -> None:
    """Run ``add`` once on a throw-away two-cell archive of ``archive``'s class and threshold
    settings (never on ``archive``: its cells, thresholds and generator stay as they are). A
    process's first ``add`` loads numba's compiled code for pyribs' batch insertion
    (``numpy_groupies``): 0.5–3 s, which had fallen in the first ``tell`` of each run, after
    the turn's evaluations had finished and before their results were written; a kill or a
    Ctrl-C landing there lost the results (a kill charged an attempt each: three such kills
    had failed good evaluations as "gave up after 3 attempts")."""
    from ribs.archives import GridArchive

    measure_dim = int(archive.measure_dim)
    kwargs: dict[str, Any] = {"solution_dim": int(archive.solution_dim), "dims": [2] * measure_dim,
                              "ranges": [(0.0, 1.0)] * measure_dim, "seed": 0}
    learning_rate = getattr(archive, "learning_rate", 1.0)
    if learning_rate != 1.0:  # CMA-MAE: the threshold update is its own compiled path
        kwargs |= {"learning_rate": float(learning_rate), "threshold_min": float(archive.threshold_min)}
    scratch = GridArchive(**kwargs)
    above = float(kwargs.get("threshold_min", 0.0)) + 1.0
    scratch.add(solution=np.zeros((2, kwargs["solution_dim"])), objective=np.array([above, above + 1.0]),
                measures=np.full((2, measure_dim), 0.25))


def warm_up_cma_es(opt: CMAEvolutionStrategy) -> None:
    """One ``ask`` and ``tell`` on a copy of ``opt`` (``opt`` itself, its generator included,
    untouched). pyribs' CMA-ES compiles its numba helpers (no cache) on a process's first
    ``ask`` and ``tell``: 2–16 s, which had fallen in the ``tell`` that completes each run's
    first generation, its results not yet written (see :func:`warm_up_archive_add`)."""
    scratch = copy.deepcopy(opt)
    solutions = scratch.ask()
    scratch.tell(np.arange(len(solutions)), np.zeros(len(solutions)), num_parents=max(1, len(solutions) // 2))


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1)[0])


# -- checkpoint helpers ----------------------------------------------------------
ARCHIVE_FIELDS = ("solution", "objective", "measures", "threshold")
CMA_ARRAYS = ("mean", "sigma", "pc", "ps")
COV_ARRAYS = ("cov", "eigenbasis", "eigenvalues", "invsqrt", "condition_number")


def _ribs_version() -> str:
    return checkpoint.installed_version("ribs") or "unknown"


def _private(obj: Any, name: str) -> Any:
    """``obj.<name>``, a ribs internal a checkpoint needs (the module docstring lists them)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise CheckpointError(
            f"ribs {_ribs_version()} has no {type(obj).__name__}.{name}, which checkpoints of the ribs proposers "
            f"read; install the ribs this Entropy Atlas supports (pyproject.toml)") from None


def _cma_es(emitter: EvolutionStrategyEmitter) -> CMAEvolutionStrategy:
    """The emitter's CMA-ES, the only evolution strategy these proposers build."""
    opt = _private(emitter, "_opt")
    if not isinstance(opt, CMAEvolutionStrategy):
        raise CheckpointError(f"a checkpoint saves CMA-ES only, not {type(opt).__name__}")
    return opt


def _tell_es(emitter: EvolutionStrategyEmitter, **generation: Any) -> bool:
    """Tell a CMA-ES emitter one generation; returns whether it restarted from ``x0``.

    pyribs ends ``tell`` with the restart check, and restarts from an elite sampled from
    the archive: on an empty archive that raises ``IndexError`` after CMA-ES was updated.
    The restart is then completed as pyribs completes it (CMA-ES reset, ranker reset,
    ``restarts`` + 1), from ``x0`` instead of an elite. Any other error propagates."""
    try:
        emitter.tell(**generation)
    except IndexError as error:
        if not (emitter.archive.empty and _raised_in(error, "sample_elites")):
            raise
        _cma_es(emitter).reset(emitter.x0)
        _private(emitter, "_ranker").reset(emitter, emitter.archive)
        emitter._restarts += 1
        return True
    return False


def _raised_in(error: BaseException, function: str) -> bool:
    """Whether ``error`` was raised in (its innermost frame is) a function named ``function``."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == function


def _increasing_runs(index: np.ndarray) -> list[np.ndarray]:
    """Positions of ``index`` cut into maximal strictly increasing runs: ``archive.add``
    appends a batch's new cells in increasing order, so adding run by run fills cells in
    exactly the order of ``index``."""
    if len(index) == 0:
        return []
    cuts = np.flatnonzero(np.diff(index) <= 0) + 1
    return np.split(np.arange(len(index)), cuts)


def _emitter_checkpoint(emitter: Any, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An emitter's fields (its kind, counters, generator states) and arrays."""
    fields: dict[str, Any] = {"kind": type(emitter).__name__}
    if not isinstance(emitter, EvolutionStrategyEmitter):
        fields["rng"] = rng_state(_private(emitter, "_rng"))
        return fields, {}
    opt, ranker = _cma_es(emitter), _private(emitter, "_ranker")
    fields |= {"restarts": int(emitter.restarts), "itrs": int(emitter.itrs), "rng": rng_state(_private(opt, "_rng")),
               "ranker_rng": rng_state(_private(ranker, "_rng")), "current_eval": int(opt.current_eval),
               "updated_eval": int(opt.cov.updated_eval)}
    arrays = {f"{prefix}.{k}": np.asarray(getattr(opt, k)) for k in CMA_ARRAYS}
    arrays |= {f"{prefix}.cov.{k}": np.asarray(getattr(opt.cov, k)) for k in COV_ARRAYS}
    solutions = _private(opt, "_solutions")
    if solutions is not None:
        arrays[f"{prefix}.solutions"] = np.asarray(solutions)
    target = getattr(ranker, "target_measure_dir", None)
    if target is not None:
        arrays[f"{prefix}.target_measure_dir"] = np.asarray(target)
    return fields, arrays


def _load_emitter(emitter: Any, fields: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str,
                  proposer: str) -> None:
    """Put back what :func:`_emitter_checkpoint` saved into an emitter of the same kind."""
    if fields.get("kind") != type(emitter).__name__:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} holds a {fields.get('kind')} where the "
                              f"campaign's options build a {type(emitter).__name__}")
    if not isinstance(emitter, EvolutionStrategyEmitter):
        set_rng_state(_private(emitter, "_rng"), fields["rng"], "an emitter's generator")
        return
    opt, ranker = _cma_es(emitter), _private(emitter, "_ranker")
    emitter._restarts, emitter._itrs = int(fields["restarts"]), int(fields["itrs"])
    set_rng_state(_private(opt, "_rng"), fields["rng"], "a CMA-ES generator")
    set_rng_state(_private(ranker, "_rng"), fields["ranker_rng"], "a ranker's generator")
    opt.current_eval, opt.cov.updated_eval = int(fields["current_eval"]), int(fields["updated_eval"])
    for k in CMA_ARRAYS:
        setattr(opt, k, arrays[f"{prefix}.{k}"][()] if k == "sigma" else arrays[f"{prefix}.{k}"])
    for k in COV_ARRAYS:
        value = arrays[f"{prefix}.cov.{k}"]
        setattr(opt.cov, k, value[()] if k == "condition_number" else value)
    opt._solutions = arrays.get(f"{prefix}.solutions")
    if f"{prefix}.target_measure_dir" in arrays:
        ranker.target_measure_dir = arrays[f"{prefix}.target_measure_dir"]


def _generation_arrays(gen: dict[str, Any], prefix: str, measure_dim: int) -> dict[str, np.ndarray]:
    """A CMA-ES generation in flight: its solutions and the results told so far."""
    told = sorted(gen["results"].items())
    return {
        f"{prefix}.solutions": np.asarray(gen["solutions"]),
        f"{prefix}.told": np.array([j for j, _ in told], dtype=np.int64),
        f"{prefix}.objective": np.array([r[0] for _, r in told], dtype=float),
        f"{prefix}.measures": np.stack([r[1] for _, r in told]) if told else np.zeros((0, measure_dim)),
        f"{prefix}.status": np.array([r[2] for _, r in told], dtype=np.int32),
        f"{prefix}.value": np.array([r[3] for _, r in told], dtype=float),
    }


def _load_generation(fields: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """The generation :func:`_generation_arrays` saved, as ``RibsProposer.gens`` holds it."""
    a = {k: arrays[f"{prefix}.{k}"] for k in ("told", "objective", "measures", "status", "value")}
    results = {int(j): (float(f), m, int(s), float(v))
               for j, f, m, s, v in zip(a["told"], a["objective"], a["measures"], a["status"], a["value"], strict=True)}
    return {"gen": int(fields["gen"]), "solutions": arrays[f"{prefix}.solutions"], "results": results,
            "truncated": bool(fields["truncated"])}
