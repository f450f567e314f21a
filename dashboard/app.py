"""The dashboard's web app: HTML pages, their scripts, and the JSON API under ``/api/``.

    from dashboard import create_app
    app = create_app("sqlite:///atlas.db")     # then: uvicorn.run(app, host="127.0.0.1")

Every route answers ``GET`` (and ``HEAD``) only; nothing writes. The pages are shells
that draw themselves from the API with plotly.js, which the app serves from the
``plotly`` package's bundled copy: nothing is fetched from elsewhere, so the dashboard
works on a machine with no internet (the Content-Security-Policy says so too).

API responses carry an ``ETag`` derived from the campaign's *version* (status, rows
written, last result recorded, rows running): a page that polls a campaign which has
not moved gets ``304 Not Modified`` without the archive being read again.

With ``allowed_hosts`` (``atlas dashboard`` always passes it, see
:func:`dashboard.cli.default_allowed_hosts`) a request whose ``Host`` header names
another host is answered ``400`` before any route runs: a page on another site that
rebinds its DNS name to this machine's address cannot read the archive. The campaign's
spec is shown with its secrets masked (:func:`archive.redact.redact`).

Ids, sequence numbers and offsets are checked against what the archive's columns can
hold (32-bit ids on PostgreSQL), so a number beyond them is a ``422``, and a well-formed
id that does not exist a ``404``: never a ``500`` or a ``503``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import inspect
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from archive import queries
from archive.engine import shown_url
from archive.errors import CampaignNotFound, StorageError
from archive.queries import QueryValueError
from archive.store import CLOSE_CAMPAIGNS, Store
from dashboard import schemas
from dashboard.data import CampaignInfo, EvaluationNotFound, json_safe
from dashboard.options import check_host_patterns, check_poll
from dashboard.pages import Pages
from dashboard.storage import FollowedData
from entropy_atlas.names import close_names

HERE = Path(__file__).parent
STATIC = HERE / "static"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
API_DESCRIPTION = """Read-only JSON views of an Entropy Atlas archive: campaigns, their elite maps,
trajectories, proposers, model calls and failures. Every endpoint answers `GET`; nothing writes.

Responses carry an `ETag`; send it back as `If-None-Match` to get `304` while the campaign has
not changed (the dashboard's pages poll this way). Large views are columnar."""

#: The largest id, sequence number or cell the archive holds (PostgreSQL's ``integer``).
MAX_ID = 2**31 - 1
#: The largest row offset SQL takes (a 64-bit ``OFFSET``).
MAX_OFFSET = 2**63 - 1
NAME_LENGTH = 200  # the campaigns.name column
Name = Annotated[str, PathParam(max_length=NAME_LENGTH, pattern=r"^[^\x00]+$", description="the campaign's name")]
EvaluationId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the evaluation's id")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
SINCE = "only elites made by results after this `finished_seq` (a previous answer's `through`)"
URI_SAFE = "!~*'()"  # what JavaScript's encodeURIComponent leaves alone, so prefetched URLs match
NAMES_SHOWN = 50  # campaigns a 404 page lists
NOT_FOUND = {404: {"model": schemas.ApiError, "description": "no such campaign or evaluation"}}


def known_campaigns(names: Sequence[str], shown: int = NAMES_SHOWN, asked: str | None = None) -> str:
    """The 404 page's hint: ``Did you mean “A” or “B”?`` where campaigns are close to the
    name ``asked`` (the CLI's rule, :func:`archive.store.known_campaigns_text`), then the
    storage's campaigns, the first ``shown`` of them by name and how many more (a storage of
    thousands would otherwise make every 404 a long page)."""
    if not names:
        return "This storage has no campaigns."
    close = close_names(asked, names, CLOSE_CAMPAIGNS) if asked else []
    meant = f"Did you mean {' or '.join(f'“{n}”' for n in close)}? " if close else ""
    listed = ", ".join(names[:shown])
    more = f", and {len(names) - shown:,} more" if len(names) > shown else ""
    return f"{meant}Campaigns in this storage: {listed}{more}."


class HeadAsGet:
    """ASGI middleware: answer ``HEAD`` as ``GET`` without the body (routes declare only GET)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class FastJSON(Response):
    """JSON without FastAPI's per-item encoder (the views are plain lists and dicts)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode_json(content)


def encode_json(content: Any) -> bytes:
    """Compact JSON; NaN and infinities become ``null`` (JSON has neither)."""
    try:
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(json_safe(content), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


class _Asset:
    """A static file held in memory, with its hash (for cache busting) and a gzipped copy."""

    def __init__(self, body: bytes, content_type: str, compress: bool, level: int = 6) -> None:
        self.body = body
        self.level = level  # gzip's; API views, rebuilt as a campaign moves, use 1 (below)
        self.content_type = content_type
        self.digest = hashlib.sha256(body).hexdigest()[:16]
        self._compress = compress
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def gzipped(self) -> bytes | None:
        """The gzipped body (compressed once), or ``None`` where not worth it."""
        if not self._compress or len(self.body) < 1024:
            return None
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip.compress(self.body, compresslevel=self.level, mtime=0)
        return self._gzipped


def plotly_js_path() -> Path:
    """The minified plotly.js that the ``plotly`` Python package bundles."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise FileNotFoundError(f"plotly.js is not where the plotly package keeps it ({path})")
    return path


@functools.lru_cache(maxsize=1)
def _load_assets() -> dict[str, _Asset]:
    """The static files and plotly.js, read once per process (apps share them)."""
    assets = {}
    for path in sorted(STATIC.iterdir()):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            assets[path.name] = _Asset(path.read_bytes(), CONTENT_TYPES[path.suffix], path.suffix in (".js", ".css"))
    assets["plotly.min.js"] = _Asset(plotly_js_path().read_bytes(), CONTENT_TYPES[".js"], True)
    return assets


def _no_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry hooks, off: the dashboard sends nothing anywhere, even when
    ``FASTAPI_OTEL_AUTO_CONFIGURE`` is set (older FastAPI versions have no such hooks)."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False,
                          "auto_configure": False}}


def create_app(storage: str | Store, *, poll_s: float = 2.0, allowed_hosts: Sequence[str] | None = None) -> FastAPI:
    """The dashboard over ``storage`` (a URL, or an open :class:`Store`).

    A URL is opened here read-only (``Store(url, readonly=True)``), before any server
    starts: a storage that cannot be reached, or holds no up-to-date archive, raises
    :class:`~archive.errors.StorageError`. Pages
    poll a running campaign every ``poll_s`` seconds (slower once it has stopped).

    ``allowed_hosts``: the host names (without port; ``[::1]`` for an IPv6 address,
    ``*.example.org`` for a domain's hosts, ``*`` for any) a request's ``Host`` header may
    name; any other is answered ``400``. ``None`` checks nothing, for an app mounted
    inside another that checks hosts itself; the server of ``atlas dashboard`` passes
    the names of the address it binds.

    A ``poll_s`` that is not a finite number from 0.1 s to a day, or a malformed wildcard
    among ``allowed_hosts``, is a :class:`~dashboard.options.DashboardError` here, before
    the storage is opened.
    """
    poll_s = check_poll(poll_s)
    if allowed_hosts is not None:
        allowed_hosts = check_host_patterns(allowed_hosts)
    owned = isinstance(storage, str)
    store = Store(storage, readonly=True) if isinstance(storage, str) else storage
    data = FollowedData(store, owned)  # the SQLite file as it is now: a removed or replaced one is noticed
    assets = _load_assets()
    # compress plotly.js (4.8 MB) now, off the request path, so the first page load does not wait for it
    threading.Thread(target=assets["plotly.min.js"].gzipped, name="atlas-gzip-plotly", daemon=True).start()
    pages = Pages({name: a.digest for name, a in assets.items()}, storage=shown_url(store.url), poll_s=poll_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        data.close()

    app = FastAPI(
        **_no_telemetry(),
        title="Entropy Atlas dashboard", version="1", description=API_DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
        openapi_tags=[{"name": "campaigns", "description": "campaigns and their progress"},
                      {"name": "maps", "description": "elite maps and what led to them"},
                      {"name": "evaluations", "description": "the evaluation log"},
                      {"name": "pages", "description": "HTML pages and their assets"}],
    )
    app.state.data = data
    app.state.store = store
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(HeadAsGet)
    if allowed_hosts is not None:  # added last: the outermost, checked before anything else runs
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts), www_redirect=False)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    # -- errors ----------------------------------------------------------------
    def _is_api(request: Request) -> bool:
        return request.url.path == "/api" or request.url.path.startswith("/api/")

    def _error(request: Request, status: int, message: str, hint: str | None = None,
               headers: dict[str, str] | None = None) -> Response:
        if _is_api(request):
            return FastJSON({"detail": message}, status_code=status, headers=headers)
        titles = {404: "Not found", 405: "Method not allowed", 422: "Bad request", 503: "Storage unavailable"}
        return pages.error(status, titles.get(status, "Error"), message, hint, headers=headers)

    @app.exception_handler(CampaignNotFound)
    async def _campaign_not_found(request: Request, exc: CampaignNotFound) -> Response:
        """The campaign asked for (in the path, or ``a``/``b`` of ``/compare``) and those there are."""
        known = await run_in_threadpool(data.names)
        asked = [request.path_params.get("name"), request.query_params.get("a"), request.query_params.get("b")]
        name = next((n for n in asked if n and n not in known), None)
        message = f"No campaign named “{name}” in this storage." if name is not None else str(exc)
        return _error(request, 404, message, known_campaigns(known, asked=name))

    @app.exception_handler(EvaluationNotFound)
    async def _evaluation_not_found(request: Request, exc: EvaluationNotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(QueryValueError)
    async def _value_out_of_range(request: Request, exc: QueryValueError) -> Response:
        return _error(request, 422, str(exc))

    @app.exception_handler(OverflowError)
    async def _number_too_large(request: Request, exc: OverflowError) -> Response:
        return _error(request, 422, f"A number in the request is too large for the storage: {exc}")

    @app.exception_handler(StorageError)
    async def _storage_error(request: Request, exc: StorageError) -> Response:
        return _error(request, 503, str(exc), "The page retries by itself.", headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            message = f"{request.method} is not allowed: the dashboard is read-only."
        elif exc.status_code == 404:
            message = f"There is no page at {request.url.path}."
        else:
            message = str(exc.detail)
        return _error(request, exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _error(request, 422, problems)

    # -- helpers ---------------------------------------------------------------
    def _etag(request: Request, version: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
        return '"' + hashlib.sha256(f"{version}|{request.url.path}|{query}".encode()).hexdigest()[:24] + '"'

    def _view(request: Request, info: CampaignInfo, key: tuple[Any, ...], build: Callable[[], Any],
              version: str | None = None) -> Response:
        """A campaign view, cached (encoded, and gzipped once asked) while the campaign's version
        holds; 304 when the client has it already."""
        return _cached(request, (info.id, info.created_at, *key), version or data.version(info), build)

    def _cached(request: Request, key: tuple[Any, ...], version: str, build: Callable[[], Any]) -> Response:
        """``build()``'s JSON, encoded (and gzipped once asked) once per ``version``; 304 when the
        client has it already."""
        etag = _etag(request, version)
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        # gzip level 1: a 100 x 100 map's elites (1.7 MB of JSON) in a fifth of level 6's time, 10 % larger
        body: _Asset = data.memo_storage(key, version,
                                         lambda: _Asset(encode_json(build()), "application/json", True, level=1))
        packed = body.gzipped() if "gzip" in request.headers.get("accept-encoding", "") else None
        if packed is not None:
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=body.content_type, headers=headers)
        return Response(body.body, media_type=body.content_type, headers=headers)

    # -- API: campaigns --------------------------------------------------------
    @app.get("/api", tags=["campaigns"], summary="What the API offers")
    def api_index() -> dict[str, Any]:
        """The endpoints, and where the OpenAPI schema is."""
        return {"openapi": "/api/openapi.json", "read_only": True,
                "endpoints": sorted({r.path for r in app.routes if getattr(r, "path", "").startswith("/api/")})}

    @app.get("/api/health", tags=["campaigns"], response_model=schemas.Health, summary="Is the storage answering")
    def health() -> Response:
        """Answers 200 while the storage answers (503 otherwise)."""
        return FastJSON({"ok": True, "storage": shown_url(store.url), "campaigns": len(data.names()),
                         "read_only": True})

    @app.get("/api/campaigns", tags=["campaigns"], response_model=schemas.CampaignList,
             summary="Every campaign with its status and progress")
    def campaigns(request: Request) -> Response:
        """Carries an `ETag` that moves only when a campaign's row does or a running campaign's
        `version`: the index page's polls are `304`s while nothing changes."""
        infos = data.infos()
        return _cached(request, ("campaign-list",), data.campaigns_version(infos),
                       lambda: {"storage": shown_url(store.url), "campaigns": data.campaign_list(infos)})

    @app.get("/api/campaigns/{name}", tags=["campaigns"], response_model=schemas.CampaignSummary,
             responses=NOT_FOUND, summary="One campaign: status, spec, map geometry, statistics")
    def campaign(request: Request, name: Name) -> Response:
        """Poll this: its `version` changes whenever anything shown of the campaign changes."""
        info = data.info(name)
        summary = data.summary(info)
        etag = _etag(request, summary["version"])
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return FastJSON(summary, headers=headers)

    @app.get("/api/campaigns/{name}/layout", tags=["maps"], response_model=schemas.Layout, responses=NOT_FOUND,
             summary="The map's cells: axes, and for CVT centroids and a Voronoi raster")
    def layout(request: Request, name: Name) -> Response:
        info = data.info(name)
        return _view(request, info, ("layout",), lambda: data.layout_payload(info),
                     version=f"layout-{info.id}-{info.created_at}")

    @app.get("/api/campaigns/{name}/elites", tags=["maps"], response_model=schemas.Elites, responses=NOT_FOUND,
             summary="Every elite (columnar): cell, evaluation, objective, measures, params")
    def elites(request: Request, name: Name,
               since: Annotated[int, Query(ge=0, le=MAX_ID, description=SINCE)] = 0
               ) -> Response:
        """Best first. A page that polls sends the last answer's `through` as `since` and merges
        the few elites that changed, instead of downloading the whole map again."""
        info = data.info(name)
        return _view(request, info, ("elites", since), lambda: data.elites(info, since))

    @app.get("/api/campaigns/{name}/history", tags=["maps"], response_model=schemas.History, responses=NOT_FOUND,
             summary="QD-score, coverage and best objective against evaluations finished")
    def history(request: Request, name: Name,
                points: Annotated[int, Query(ge=2, le=20_000, description="at most this many points")] = 1000
                ) -> Response:
        info = data.info(name)
        return _view(request, info, ("history", points), lambda: data.history(info, points))

    @app.get("/api/campaigns/{name}/scatter", tags=["maps"], response_model=schemas.Scatter, responses=NOT_FOUND,
             summary="Objective against each measure, with Pareto fronts over every done evaluation")
    def scatter(request: Request, name: Name,
                limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many points")] = 3000
                ) -> Response:
        info = data.info(name)
        return _view(request, info, ("scatter", limit), lambda: data.scatter(info, limit))

    @app.get("/api/campaigns/{name}/proposers", tags=["maps"], response_model=schemas.Proposers,
             responses=NOT_FOUND, summary="Which proposer made what, and what it gained")
    def proposers(request: Request, name: Name,
                  points: Annotated[int, Query(ge=2, le=20_000, description="at most this many points")] = 500
                  ) -> Response:
        info = data.info(name)
        return _view(request, info, ("proposers", points), lambda: data.proposers(info, points))

    @app.get("/api/campaigns/{name}/model-calls", tags=["maps"], response_model=schemas.ModelCalls,
             responses=NOT_FOUND, summary="What each model-backed proposer's calls came to")
    def model_calls(request: Request, name: Name) -> Response:
        """Per proposer that called a model (an LLM proposer): calls, answered, failed, unusable
        replies, candidates accepted, tokens, the latest error: what `atlas status NAME` shows.
        An empty list where no proposer called one. Calls are written with the evaluations they
        produced, so the campaign's `version` (the `ETag`) moves with them."""
        info = data.info(name)
        return _view(request, info, ("model-calls",), lambda: data.model_calls(info))

    # -- API: evaluations ------------------------------------------------------
    @app.get("/api/campaigns/{name}/failures", tags=["evaluations"], response_model=schemas.Failures,
             responses=NOT_FOUND, summary="Failed evaluations, latest first, with errors grouped")
    def failures(request: Request, name: Name,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                 offset: Offset = 0) -> Response:
        info = data.info(name)
        return _view(request, info, ("failures", limit, offset), lambda: data.failures(info, limit, offset))

    @app.get("/api/campaigns/{name}/evaluations", tags=["evaluations"], response_model=schemas.EvaluationPage,
             responses=NOT_FOUND, summary="A page of the evaluation log")
    def evaluations(request: Request, name: Name,
                    status: Annotated[Literal["pending", "running", "done", "failed"] | None, Query()] = None,
                    order: Annotated[Literal["seq", "-seq", "finished", "-finished"], Query()] = "seq",
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Offset = 0) -> Response:
        info = data.info(name)
        return _view(request, info, ("evaluations", status, order, limit, offset),
                     lambda: data.evaluations(info, status, limit, offset, order))

    @app.get("/api/campaigns/{name}/evaluations/{evaluation_id}", tags=["evaluations"],
             response_model=schemas.EvaluationDetail, responses=NOT_FOUND,
             summary="One evaluation in full, with its cell's current elite")
    def evaluation(request: Request, name: Name, evaluation_id: EvaluationId) -> Response:
        info = data.info(name)
        return _view(request, info, ("evaluation", evaluation_id), lambda: data.evaluation(info, evaluation_id))

    # -- pages -----------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, tags=["pages"], summary="Campaigns")
    def index_page() -> Response:
        return pages.render("index", "Campaigns", {})

    @app.get("/campaigns/{name}", response_class=HTMLResponse, tags=["pages"], summary="One campaign")
    def campaign_page(name: Name) -> Response:
        info = data.info(name)  # unknown: the 404 page
        base = f"/api/campaigns/{quote(info.name, safe=URI_SAFE)}"
        return pages.render("campaign", info.name, {"campaign": info.name,
                                                    "prefetch": [base, f"{base}/layout", f"{base}/elites"]})

    @app.get("/campaigns/{name}/evaluations/{evaluation_id}", response_class=HTMLResponse, tags=["pages"],
             summary="One evaluation")
    def evaluation_page(name: Name, evaluation_id: EvaluationId) -> Response:
        info = data.info(name)
        if queries.evaluation(data.store, info.id, evaluation_id) is None:
            raise EvaluationNotFound(f"Campaign “{info.name}” has no evaluation {evaluation_id}.")
        return pages.render("evaluation", f"{info.name} · evaluation {evaluation_id}",
                            {"campaign": info.name, "evaluation_id": evaluation_id})

    @app.get("/compare", response_class=HTMLResponse, tags=["pages"], summary="Two campaigns side by side")
    def compare_page(a: Annotated[str | None, Query(max_length=NAME_LENGTH, pattern=r"^[^\x00]*$",
                                                    description="left campaign")] = None,
                     b: Annotated[str | None, Query(max_length=NAME_LENGTH, pattern=r"^[^\x00]*$",
                                                    description="right campaign")] = None) -> Response:
        for name in (a, b):
            if name:
                data.info(name)
        title = f"{a} vs {b}" if a and b else "Compare campaigns"
        prefetch = ["/api/campaigns"] + [f"/api/campaigns/{quote(n, safe=URI_SAFE)}" for n in (a, b) if n]
        return pages.render("compare", title, {"a": a, "b": b, "prefetch": prefetch})

    @app.get("/docs", response_class=HTMLResponse, tags=["pages"], summary="The API, from its OpenAPI schema")
    def docs_page() -> Response:
        return pages.render("docs", "API", {})

    @app.get("/static/{filename}", tags=["pages"], summary="The pages' scripts and styles, and plotly.js")
    def static(request: Request, filename: str) -> Response:
        asset = assets.get(filename)
        if asset is None:
            raise StarletteHTTPException(404)
        etag = f'"{asset.digest}"'
        immutable = request.query_params.get("v") == asset.digest
        headers = {"ETag": etag, "Vary": "Accept-Encoding",
                   "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        packed = asset.gzipped() if "gzip" in request.headers.get("accept-encoding", "") else None
        if packed is not None:
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=asset.content_type, headers=headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        asset = assets["favicon.svg"]
        return Response(asset.body, media_type=asset.content_type, headers={"Cache-Control": "public, max-age=86400"})

    return app
