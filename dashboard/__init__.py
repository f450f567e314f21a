"""The live dashboard: a read-only web app over an archive, a front end beside the CLI
(``atlas dashboard``, ``python -m dashboard``). It reads only through the archive's
queries (:mod:`archive.queries`) and statistics (:mod:`archive.stats`).

    from dashboard import create_app, serve
    serve("sqlite:///atlas.db")                      # serves http://127.0.0.1:8787 until Ctrl+C
    app = create_app("sqlite:///atlas.db")           # the FastAPI app, to mount or test

Pages: campaigns with status and progress; per campaign its elite map (heatmap, or
Voronoi plot for CVT), QD-score / coverage / best against evaluations, objective against
each measure with its Pareto front, proposers, failures; two campaigns side by side. The
JSON API under ``/api/`` is described at ``/api/openapi.json``. See docs/dashboard.md.
"""

from dashboard.app import create_app
from dashboard.cli import DashboardError, make_server, serve

__all__ = ["DashboardError", "create_app", "make_server", "serve"]
