"""MAP-Elites, CMA-ME and CMA-MAE on pyribs archives and emitters, in the unit cube.

- ``map-elites``: ``ribs`` GaussianEmitter (x' = x + σ N(0, I)) or IsoLineEmitter
  (x' = x_i + σ_iso N(0, I) + σ_line N(0, 1)(x_j − x_i)), parents drawn uniformly from
  the archive; children clipped to [0, 1].
- ``cma-me``: EvolutionStrategyEmitter (CMA-ES) with the two-stage improvement ranker
  ("2imp"), ``filter`` selection and ``no_improvement`` restarts, as in pyribs.
- ``cma-mae``: the same emitters with the "imp" ranker on an archive with a threshold
  learning rate α (``learning_rate``, default 0.01) and ``threshold_min``.

Each emitter is asked and told on its own, so results may arrive in any order and
several MAP-Elites generations can be in flight; a CMA-ES emitter proposes its next
generation only after the previous one is fully told (failed members rank last).

The ribs archive is a cache: for ``map-elites`` and ``cma-me`` it equals the elite table
and is rebuilt from SQL on resume; only emitter state is checkpointed. CMA-MAE's
threshold archive is proposer state and is checkpointed whole.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from ribs.emitters import EvolutionStrategyEmitter, GaussianEmitter, IsoLineEmitter

from search.proposers.base import History, Observation, Proposal, Proposer, ProposerContext

FAILED_VALUE = -1e30  # rank of a failed CMA-ES member: below any real improvement value


class _Pickler(pickle.Pickler):
    """Pickles everything but one object (the archive), stored as a reference."""

    def __init__(self, file: io.BytesIO, skip: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.skip = skip

    def persistent_id(self, obj: Any) -> str | None:
        return "archive" if self.skip is not None and obj is self.skip else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, archive: Any) -> None:
        super().__init__(file)
        self.archive = archive

    def persistent_load(self, pid: Any) -> Any:
        if pid != "archive":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self.archive


class RibsProposer(Proposer):
    """Emitters of pyribs over a pyribs archive of the campaign's cells."""

    option_names = (
        "emitters", "variation", "sigma", "iso_sigma", "line_sigma", "sigma0", "ranker",
        "selection_rule", "restart_rule", "learning_rate", "threshold_min", "random_init", "x0",
    )
    algorithm = "map-elites"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.name = self.algorithm
        dim = ctx.space.dim
        positive = (lambda v: isinstance(v, int | float) and v > 0, "must be > 0")
        n_emitters = self.option("emitters", 1, lambda v: isinstance(v, int) and v >= 1, "must be an int >= 1")
        emitter_batch = max(1, ctx.batch_size // n_emitters)
        x0 = np.asarray(self.option("x0", [0.5] * dim), dtype=float)
        if x0.shape != (dim,) or np.any((x0 < 0) | (x0 > 1)):
            raise ValueError(f"search.options.x0: must be {dim} numbers in [0, 1] (a point of the unit cube)")
        is_mae = self.algorithm == "cma-mae"
        archive_kwargs: dict[str, Any] = {"seed": ctx.seed}
        if is_mae:
            archive_kwargs["learning_rate"] = self.option(
                "learning_rate", 0.01, lambda v: 0 < v <= 1, "must be in (0, 1]")
            archive_kwargs["threshold_min"] = float(self.option("threshold_min", ctx.qd_offset))
        self.archive = ctx.layout.make_archive(solution_dim=dim, **archive_kwargs)
        self.keep_archive = is_mae
        seeds = np.random.SeedSequence(ctx.seed).spawn(n_emitters)
        bounds = [(0.0, 1.0)] * dim
        self.emitters: list[Any] = []
        if self.algorithm == "map-elites":
            variation = self.option("variation", "iso_line", lambda v: v in ("iso_line", "gaussian"),
                                    "must be iso_line or gaussian")
            for s in seeds:
                if variation == "gaussian":
                    sigma = self.option("sigma", 0.1, *positive)
                    self.emitters.append(GaussianEmitter(self.archive, sigma=sigma, x0=x0, bounds=bounds,
                                                         batch_size=emitter_batch, seed=_int_seed(s)))
                else:
                    self.emitters.append(IsoLineEmitter(
                        self.archive, iso_sigma=self.option("iso_sigma", 0.02, *positive),
                        line_sigma=self.option("line_sigma", 0.2, *positive), x0=x0,
                        bounds=bounds, batch_size=emitter_batch, seed=_int_seed(s)))
            self.random_left = int(self.option("random_init", ctx.batch_size))
        else:
            ranker = self.option("ranker", "imp" if is_mae else "2imp")
            selection = self.option("selection_rule", "mu" if is_mae else "filter")
            restart = self.option("restart_rule", "basic" if is_mae else "no_improvement")
            sigma0 = self.option("sigma0", 0.15, *positive)
            for s in seeds:
                self.emitters.append(EvolutionStrategyEmitter(
                    self.archive, x0=x0, sigma0=sigma0, ranker=ranker, selection_rule=selection,
                    restart_rule=restart, bounds=bounds, batch_size=emitter_batch, seed=_int_seed(s)))
            self.random_left = int(self.option("random_init", 0))
        self.is_es = self.algorithm != "map-elites"
        self.next_emitter = 0
        self.gen_counter = 0
        # emitter index -> the generation it waits on (CMA-ES emitters only)
        self.gens: dict[int, dict[str, Any]] = {}

    # -- ask/tell ------------------------------------------------------------
    def ask(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        if self.random_left > 0:
            k = min(n, self.random_left)
            out += self.uniform(k)
            self.random_left -= k
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
            out += [Proposal(np.clip(x, 0, 1), meta={"emitter": i, "gen": gen, "index": j})
                    for j, x in enumerate(take)]
        return out

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

    def _finish_generation(self, i: int, state: dict[str, Any]) -> None:
        del self.gens[i]
        if state["truncated"]:
            return  # a partial generation (end of budget) does not update CMA-ES
        order = range(len(state["solutions"]))
        res = [state["results"][j] for j in order]
        self.emitters[i].tell(
            solution=state["solutions"],
            objective=np.array([r[0] for r in res], dtype=float),
            measures=np.stack([r[1] for r in res]),
            add_info={"status": np.array([r[2] for r in res], dtype=np.int32),
                      "value": np.array([r[3] for r in res], dtype=float)},
        )

    # -- persistence ---------------------------------------------------------
    def state(self) -> bytes:
        buf = io.BytesIO()
        data = {k: v for k, v in self.__dict__.items() if k not in ("ctx",)}
        if not self.keep_archive:
            # The archive itself is rebuilt from SQL; what SQL cannot give back is the
            # archive's sampling RNG and the order in which cells were first filled
            # (parents are drawn by position in that order).
            data["_archive_rng"] = self.archive._rng.bit_generator.state
            data["_archive_order"] = np.asarray(self.archive._store.occupied_list, dtype=np.int64).copy()
        _Pickler(buf, None if self.keep_archive else self.archive).dump(data)
        return buf.getvalue()

    def restore(self, state: bytes | None, history: History) -> None:
        if not self.keep_archive or state is None:
            self.archive.clear()
            elites = history.elites()
            if elites:
                self.archive.add(
                    solution=np.stack([e.x for e in elites]),
                    objective=np.array([e.fitness for e in elites], dtype=float),
                    measures=np.stack([e.measures for e in elites]),
                )
        if state is None:
            return
        data = _Unpickler(io.BytesIO(state), self.archive).load()
        rng_state = data.pop("_archive_rng", None)
        order = data.pop("_archive_order", None)
        self.__dict__.update(data)
        if rng_state is not None:
            self.archive._rng.bit_generator.state = rng_state
        if order is not None:
            self._reorder_archive(order)

    def _reorder_archive(self, order: np.ndarray) -> None:
        """Put the rebuilt archive's cells back in the order they were first filled."""
        props = self.archive._store._props
        n = props["n_occupied"]
        if len(order) == n and set(order.tolist()) == set(props["occupied_list"][:n].tolist()):
            props["occupied_list"][:n] = order


class MapElitesProposer(RibsProposer):
    algorithm = "map-elites"


class CmaMeProposer(RibsProposer):
    algorithm = "cma-me"


class CmaMaeProposer(RibsProposer):
    algorithm = "cma-mae"


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1)[0])
