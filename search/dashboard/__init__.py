"""The live dashboard: a read-only web app over an archive (``atlas dashboard``).

    from search.dashboard import create_app, dashboard
    dashboard("sqlite:///atlas.db")                  # serves http://127.0.0.1:8787 until Ctrl+C
    app = create_app("sqlite:///atlas.db")           # the FastAPI app, to mount or test

Pages: campaigns with status and progress; per campaign its elite map (heatmap, or
Voronoi plot for CVT), QD-score / coverage / best against evaluations, objective against
each measure with its Pareto front, proposers, failures; two campaigns side by side. The
JSON API under ``/api/`` is described at ``/api/openapi.json``. See docs/dashboard.md.
"""

from search.dashboard.app import create_app
from search.dashboard.cli import DashboardError, dashboard, make_server

__all__ = ["DashboardError", "create_app", "dashboard", "make_server"]
