"""The JSON API's response shapes, for the app's OpenAPI schema (``/openapi.json``).

Large views (elites, history, scatter) are *columnar*: one list per field, index ``i``
of every list describing the same item, which keeps payloads small and quick to parse.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["maximize", "minimize"]


class ApiError(BaseModel):
    detail: str = Field(description="what went wrong")


class Health(BaseModel):
    ok: bool
    storage: str = Field(description="the storage URL, password hidden")
    campaigns: int
    read_only: bool = True


class Objective(BaseModel):
    name: str
    direction: Direction


class Axis(BaseModel):
    name: str
    low: float
    high: float
    bins: int


class Counts(BaseModel):
    pending: int
    running: int
    done: int
    failed: int


class Stats(BaseModel):
    counts: Counts
    created: int = Field(description="evaluations written (any status)")
    finished: int = Field(description="done + failed")
    elites: int = Field(description="filled cells")
    cells: int
    coverage: float = Field(description="elites / cells")
    qd_score: float | None = Field(description="Σ over elites of (fitness - qd_offset)")
    best_objective: float | None
    best_evaluation_id: int | None


class CampaignListItem(BaseModel):
    name: str
    status: str = Field(description="as stored: created, running, stopped, failed, finished")
    state: str = Field(description="status, except `interrupted` for a running row whose scheduler's lease lapsed")
    algorithm: str
    budget: int
    objective: Objective
    measures: list[str]
    archive: Literal["grid", "cvt"]
    progress: float = Field(description="finished / budget, at most 1")
    stats: Stats
    created_at: float
    updated_at: float


class CampaignList(BaseModel):
    storage: str
    campaigns: list[CampaignListItem]


class Geometry(BaseModel):
    kind: Literal["grid", "cvt"]
    cells: int
    axes: list[Axis]


class CampaignSummary(BaseModel):
    name: str
    status: str
    state: str
    algorithm: str
    budget: int
    objective: Objective
    archive: Geometry
    units: dict[str, str] = Field(
        description="the objective's and measures' units by name (labels only: the spec's `unit`, else the one the "
                    "evaluator declares); a name without one is absent. Keys are the bare names; an axis or header "
                    "shows `name (unit)` (archive.units)")
    progress: float
    stats: Stats
    lease_holder: str | None
    lease_expires: float | None
    created_at: float
    updated_at: float
    version: str = Field(description="changes whenever anything shown of the campaign changes; also the ETag seed")
    spec: dict[str, Any] = Field(description="the campaign file as stored, with the values of secret keys "
                                             "(api_key, password, token, ...) and URL passwords shown as ***")


class Voronoi(BaseModel):
    x: list[float] = Field(description="pixel centres along the first measure")
    y: list[float] = Field(description="pixel centres along the second measure")
    cell: list[list[int]] = Field(description="cell[row][column]: the CVT cell (nearest centroid) of each pixel")


class Layout(BaseModel):
    kind: Literal["grid", "cvt"]
    cells: int
    axes: list[Axis]
    centroids: list[list[float]] | None = Field(description="CVT centroids, one per cell")
    voronoi: Voronoi | None = Field(description="2-D CVT maps only")


class Elites(BaseModel):
    count: int = Field(description="elites in the archive (the lists hold fewer when `since` > 0)")
    cells: int
    kind: Literal["grid", "cvt"]
    measure_names: list[str]
    param_names: list[str]
    since: int = Field(description="only elites made by results recorded after this `finished_seq` (0: all)")
    through: int = Field(description="the last result these elites account for: send it as `since` next time")
    complete: bool = Field(description="every elite is listed (else merge these into what you have, by cell)")
    cell: list[int]
    evaluation_id: list[int]
    objective: list[float | None]
    measures: dict[str, list[float | None]]
    params: dict[str, list[Any]] = Field(description="parameter -> value per elite (null where not set)")
    proposer: list[str]
    seq: list[int]


class History(BaseModel):
    total: int = Field(description="finished evaluations")
    cells: int
    objective_direction: Direction
    evaluations: list[int] = Field(description="x axis: evaluations finished")
    qd_score: list[float | None]
    coverage: list[float | None]
    filled: list[int]
    best: list[float | None]
    failed: list[int] = Field(description="failed evaluations so far")


class Front(BaseModel):
    evaluation_id: list[int]
    measure: list[float | None]
    objective: list[float | None]


class Points(BaseModel):
    evaluation_id: list[int]
    objective: list[float | None]
    measures: dict[str, list[float | None]]
    proposer: list[int] = Field(description="index into `proposers`")
    elite: list[bool] = Field(description="whether the evaluation is its cell's elite now")


class Scatter(BaseModel):
    total: int = Field(description="done evaluations; the fronts are over all of them")
    shown: int = Field(description="points sent: all, or an even sample of `limit`")
    measure_names: list[str]
    objective_direction: Direction
    proposers: list[str]
    points: Points
    fronts: dict[str, dict[Literal["higher", "lower"], Front]] = Field(
        description="measure -> whether the measure is better higher or lower -> its Pareto front")


class ExplorationRuns(BaseModel):
    mean: float | None = Field(description="mean over the runs of each run's entropy; null without a complete run")
    std: float | None = Field(description="sample standard deviation over the runs; null with fewer than two")
    runs: int = Field(description="complete runs of run_length consecutive evaluations (a short last run is dropped)")
    run_length: int = Field(description="evaluations per run (Iron Mind's T = 20)")
    runs_total: int | None = Field(
        default=None, description="complete runs the proposer has; more than runs when only its latest runs were "
                                  "read (archive.exploration: 100 at most)")


class ProposerRow(BaseModel):
    name: str
    counts: Counts
    evaluations: int
    elites: int = Field(description="cells whose elite this proposer made")
    improvements: int = Field(description="results that filled or improved a cell")
    qd_contribution: float = Field(description="QD-score gained by this proposer's results")
    best_objective: float | None
    exploration_entropy: float | None = Field(
        description="Iron Mind's normalised sampling entropy, in [0, 1]: the mean over its runs of "
                    "exploration_run_length evaluations (archive.stats); null before a complete run")
    exploration: ExplorationRuns | None = Field(
        description="the exploration entropy's mean and spread over the proposer's runs (archive.stats.Exploration)")


class OverTime(BaseModel):
    evaluations: list[int]
    cumulative: dict[str, list[int]]
    qd_contribution: dict[str, list[float | None]]


class Proposers(BaseModel):
    proposers: list[ProposerRow]
    over_time: OverTime
    exploration_bins: int = Field(description="bins per continuous coordinate of the exploration entropy")
    exploration_run_length: int = Field(description="evaluations per run of the exploration entropy")


class ModelCallRow(BaseModel):
    proposer: str = Field(description="the proposer that called a model (its name in proposer_calls)")
    calls: int = Field(description="calls it made (requests sent)")
    answered: int = Field(description="calls the model answered")
    failed: int = Field(description="calls that got no reply (the error is stored)")
    unusable: int = Field(description="answered calls whose reply gave no usable candidate (prose, not JSON, "
                                      "empty, every candidate discarded), from the call's stored outcome")
    accepted: int | None = Field(description="candidates of its replies it used (the sum of the answered calls' "
                                             "outcome.valid); null where no call says (a custom proposer's)")
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens: int | None = Field(description="prompt + completion tokens its replies counted; null where none did")
    latest_error: str | None = Field(description="the latest failed call's error, its first line")
    latest_error_at: float | None
    latest_unusable: str | None = Field(description="why the latest unusable reply gave no usable candidate")
    latest_unusable_at: float | None
    median_latency_s: float | None = Field(description="the median latency of its answered calls")


class ModelCalls(BaseModel):
    model_config = ConfigDict(protected_namespaces=())  # the field is named as atlas status --json names it

    model_calls: list[ModelCallRow] = Field(
        description="per proposer that called a model, by name, the figures of `atlas status NAME`'s model calls "
                    "(archive.calls.summary); empty where none did. Without `not_asked`: that is read from the "
                    "proposer's checkpoint, by the search package")


class ErrorGroup(BaseModel):
    error: str = Field(description="the error's first line, up to a \" (got …)\" that says the value: the group's key")
    count: int
    latest_evaluation_id: int | None
    latest_at: float | None
    example: str | None = Field(description="the latest full error text")


class FailedEvaluation(BaseModel):
    id: int
    seq: int
    proposer: str
    attempts: int
    error: str | None
    worker: str | None
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    finished_at: float | None
    finished_seq: int | None


class Failures(BaseModel):
    total: int
    limit: int
    offset: int
    groups: list[ErrorGroup]
    evaluations: list[FailedEvaluation]


class EvaluationRow(BaseModel):
    id: int
    seq: int
    status: Literal["pending", "running", "done", "failed"]
    objective: float | None
    measures: dict[str, Any] | None
    params: dict[str, Any]
    cell: int | None
    proposer: str
    attempts: int
    error: str | None
    worker: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    finished_seq: int | None


class EvaluationPage(BaseModel):
    total: int
    limit: int
    offset: int
    status: str | None
    order: str
    evaluations: list[EvaluationRow]


class EvaluationFull(EvaluationRow):
    x: list[Any] = Field(description="the point in the unit cube the proposer worked in")
    proposal: dict[str, Any] | None = Field(description="what the proposer said about it (emitter, source…)")
    metrics: dict[str, Any] | None


class CellInfo(BaseModel):
    cell: int
    elite_evaluation_id: int | None
    elite_objective: float | None
    is_elite: bool
    bounds: list[list[float]] | None = Field(description="grid: [low, high] per measure")
    centroid: list[float] | None = Field(description="CVT: the cell's centroid")


class EvaluationDetail(BaseModel):
    campaign: str
    objective_name: str
    objective_direction: Direction
    measure_names: list[str]
    evaluation: EvaluationFull
    cell: CellInfo | None
