"""HTML pages: a shared frame around each page's body, with its scripts and boot data.

Pages are shells: the server fills in only the title, the page's body (static markup
from ``templates/``), versioned links to its scripts, and a JSON *boot* object (the
campaign's name, the polling interval) that the scripts read. Every value put into the
HTML is escaped; the boot JSON is escaped for a ``<script type="application/json">``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

#: The scripts of each page, in load order (plotly.js first where a page draws figures).
SCRIPTS: dict[str, list[str]] = {
    "index": ["common.js", "index.js"],
    "campaign": ["prefetch.js", "plotly.min.js", "common.js", "elitemap.js", "campaign.js"],
    "evaluation": ["common.js", "evaluation.js"],
    "compare": ["prefetch.js", "plotly.min.js", "common.js", "elitemap.js", "compare.js"],
    "docs": ["common.js", "docs.js"],
    "error": [],
}


def substitute(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``{{key}}`` replaced by ``values[key]``, in one pass (so a value
    that happens to contain ``{{…}}`` is never expanded)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def boot_json(value: dict[str, Any]) -> str:
    """JSON that cannot close the ``<script>`` element it sits in."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


class Pages:
    """Renders the dashboard's pages (templates are read once)."""

    def __init__(self, digests: dict[str, str], storage: str, poll_s: float) -> None:
        self.digests = digests
        self.storage = storage
        self.poll_s = poll_s
        self.frame = (TEMPLATES / "frame.html").read_text(encoding="utf-8")
        self.bodies = {name: (TEMPLATES / f"{name}.html").read_text(encoding="utf-8") for name in SCRIPTS}

    def asset(self, name: str) -> str:
        return f"/static/{name}?v={self.digests[name]}"

    def _fill(self, page: str, title: str, body: str, boot: dict[str, Any]) -> str:
        scripts = "\n".join(f'<script src="{html.escape(self.asset(s))}" defer></script>' for s in SCRIPTS[page])
        values = {
            "title": html.escape(title),
            "storage": html.escape(self.storage),
            "css": html.escape(self.asset("dashboard.css")),
            "favicon": html.escape(self.asset("favicon.svg")),
            "scripts": scripts,
            "page": html.escape(page),
            "boot": boot_json({"page": page, "poll_s": self.poll_s, "storage": self.storage, **boot}),
            "body": body,
        }
        return substitute(self.frame, values)

    def render(self, page: str, title: str, boot: dict[str, Any]) -> HTMLResponse:
        """The page ``page`` (a key of :data:`SCRIPTS`)."""
        text = self._fill(page, title, self.bodies[page], boot)
        return HTMLResponse(text, headers={"Cache-Control": "no-cache"})

    def error(self, status: int, title: str, message: str, hint: str | None = None,
              headers: dict[str, str] | None = None) -> HTMLResponse:
        """An error page that says what is wrong, with a way back."""
        body = substitute(self.bodies["error"], {
            "status": str(int(status)), "heading": html.escape(title),
            "message": html.escape(message), "hint": html.escape(hint or ""),
        })
        text = self._fill("error", f"{status} {title}", body, {"status": status})
        return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-cache", **(headers or {})})
