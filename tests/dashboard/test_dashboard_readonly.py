"""The dashboard never writes: no route takes a write method, its connections refuse writes,
a crawl of every page leaves the archive as it was; and start-up fails clearly on a storage
it cannot use, before binding any port."""

from __future__ import annotations

import hashlib
import inspect
import re
import socket
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.routing import Route

from archive.store import StorageError, Store
from dashboard import DashboardError, create_app
from dashboard import serve as dashboard
from dashboard.cli import bind, is_loopback, make_server
from dashboard.pages import boot_json

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PATH_VALUES = {"name": "quad", "evaluation_id": "1", "filename": "common.js"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m.group(1)], path)


def app_paths(client: TestClient) -> list[str]:
    paths = [concrete(r.path) for r in client.app.routes if isinstance(r, Route)]  # type: ignore[attr-defined]
    assert len(paths) >= 20
    return paths


def test_no_route_accepts_a_write_method(client: TestClient) -> None:
    for path in app_paths(client):
        assert client.get(path).status_code in (200, 404), path  # the route exists (404: id 1 unknown)
        for method in WRITE_METHODS:
            response = client.request(method, path, json={"x": 1})
            assert response.status_code == 405, (method, path, response.status_code)
            assert "GET" in response.headers.get("allow", ""), (method, path)


def test_write_methods_on_the_api_say_it_is_read_only(client: TestClient) -> None:
    response = client.delete("/api/campaigns/quad")
    assert response.status_code == 405
    assert response.json()["detail"] == "DELETE is not allowed: the dashboard is read-only."
    page = client.post("/campaigns/quad")
    assert page.status_code == 405 and "read-only" in page.text


def test_every_route_is_get_only_in_the_schema(client: TestClient) -> None:
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            assert set(route.methods or ()) <= {"GET", "HEAD"}, route.path


def archive_fingerprint(url: str) -> str:
    """Everything in the archive's tables, hashed."""
    store = Store(url)
    try:
        with store.read() as conn:
            digest = hashlib.sha256()
            for table in ("campaigns", "evaluations", "elites", "checkpoints"):
                for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                    digest.update(repr(tuple(row)).encode())
        return digest.hexdigest()
    finally:
        store.close()


def test_a_crawl_of_every_page_leaves_the_archive_unchanged(client: TestClient, dash_url: str) -> None:
    before = archive_fingerprint(dash_url)
    for name in ("quad", "grid", "cvt", "three", "low", "empty"):
        for path in app_paths(client):
            client.get(path.replace("/quad", f"/{name}"))
    assert archive_fingerprint(dash_url) == before


def test_connections_refuse_writes(client: TestClient) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    with pytest.raises(OperationalError, match=r"readonly|read-only|query_only"):  # noqa: SIM117
        with store.engine.connect() as conn:
            conn.execute(text("UPDATE campaigns SET status = 'hacked'"))


def test_postgres_connections_refuse_writes(postgres_url: str) -> None:
    from tests.dashboard.synthetic import synthetic_campaign

    store, _ = synthetic_campaign(postgres_url, "pg", 50, bins=(5, 5))
    store.close()
    app = create_app(postgres_url)
    with TestClient(app) as c:
        assert c.get("/api/campaigns/pg/history").json()["total"] == 50
        with pytest.raises(Exception, match="read-only transaction"):  # noqa: SIM117
            with app.state.store.engine.connect() as conn:
                conn.execute(text("UPDATE campaigns SET status = 'hacked'"))


def test_missing_sqlite_file_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(StorageError, match=r"does not exist"):
        create_app(f"sqlite:///{path}")
    assert not path.exists()


def test_a_database_without_an_archive_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StorageError, match="holds no Entropy Atlas archive"):
        create_app(f"sqlite:///{path}")


def test_not_a_storage_url_is_refused() -> None:
    with pytest.raises(StorageError, match="not a storage URL"):
        create_app("not a url at all")
    with pytest.raises(StorageError, match="in-memory"):
        create_app("sqlite://")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_storage_fails_clearly_at_start_up() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://atlas:secret@127.0.0.1:{port}/atlas"
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        dashboard(url, port=0)
    message = str(info.value)
    assert re.match(r"cannot (reach|open) storage postgresql\+psycopg://atlas:\*\*\*@127\.0\.0\.1", message), message
    assert "secret" not in message
    assert time.monotonic() - start < 15


def test_storage_is_checked_before_the_port_is_bound(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(StorageError):
        dashboard(f"sqlite:///{tmp_path / 'missing.db'}", port=port)
    bind("127.0.0.1", port).close()  # still free


def test_a_taken_port_is_a_clear_error(dash_url: str) -> None:
    taken = bind("127.0.0.1", 0)
    try:
        with pytest.raises(DashboardError, match="already in use"):
            make_server(dash_url, "127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


@pytest.mark.parametrize("port", [65536, 99999, -1])
def test_a_port_out_of_range_is_refused_not_wrapped_round(port: int) -> None:
    """The resolver takes port 99999 as 99999 − 65536 = 34463: the dashboard would serve on
    a port nobody asked for."""
    with pytest.raises(DashboardError, match=f"on port {port}: a port is 1 to 65535"):
        bind("127.0.0.1", port)


def test_binds_loopback_by_default() -> None:
    for fn in (dashboard, make_server):
        params = inspect.signature(fn).parameters
        assert params["host"].default == "127.0.0.1"
        assert params["port"].default == 8787
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("example.org")


def test_pages_escape_what_they_embed(client: TestClient) -> None:
    assert "</script>" not in boot_json({"campaign": "</script><script>alert(1)</script>"})
    page = client.get("/campaigns/<b>x</b>")
    assert page.status_code == 404
    assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text


def test_pages_load_nothing_from_elsewhere(client: TestClient) -> None:
    """Offline: every script, style and link of the pages is served by the app."""
    from dashboard.app import STATIC
    from dashboard.pages import TEMPLATES

    for path in [*STATIC.iterdir(), *TEMPLATES.iterdir()]:
        source = path.read_text()
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", source), path
        assert not re.search(r"fetch\(\s*[\"'`]https?:", source), path
    for page in ("/", "/campaigns/quad", "/compare?a=quad&b=grid", "/campaigns/quad/evaluations/1", "/docs"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", response.text), page
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp
        for src in re.findall(r'src="([^"]+)"', response.text):
            assert client.get(src).status_code == 200, src


def test_plotly_is_served_from_the_plotly_package(client: TestClient) -> None:
    from dashboard.app import plotly_js_path

    plain = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == plotly_js_path().read_bytes()
    packed = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip" and packed.content == plain.content
    versioned = re.search(r'src="(/static/plotly\.min\.js\?v=\w+)"', client.get("/campaigns/quad").text)
    assert versioned is not None
    cached = client.get(versioned.group(1))
    assert "immutable" in cached.headers["cache-control"]
    again = client.get(versioned.group(1), headers={"If-None-Match": cached.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_an_archive_at_another_schema_revision_is_refused_untouched(tmp_path: Path) -> None:
    """Older: the user upgrades it once with a command that writes; newer: this install is old."""
    from sqlalchemy import create_engine

    from archive.engine import _scripts

    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    Store(url).close()  # an empty archive at the current head
    revisions = [r.revision for r in _scripts().walk_revisions()]  # newest first
    engine = create_engine(url)  # plain SQL: the Store would migrate

    def stamp(revision: str | None = None) -> str:
        with engine.begin() as conn:
            if revision is not None:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())

    try:
        stamp("ffffffffffff")
        with pytest.raises(StorageError, match="written by a newer Entropy Atlas"):
            create_app(url)
        assert stamp() == "ffffffffffff"
        if len(revisions) > 1:
            stamp(revisions[-1])
            with pytest.raises(StorageError, match=r"is at schema revision .*`atlas (status|migrate) --storage URL`"):
                create_app(url)
            assert stamp() == revisions[-1]  # not migrated
    finally:
        engine.dispose()


def test_only_the_bound_hosts_names_are_answered(dash_url: str) -> None:
    """DNS rebinding: a request naming another host in ``Host`` is refused before any route runs."""
    server, sock = make_server(dash_url, "127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        with TestClient(server.config.app, base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/api/health").status_code == 200
            for host in (f"localhost:{port}", f"[::1]:{port}", "127.0.0.1", "LOCALHOST"):
                assert c.get("/api/campaigns", headers={"Host": host}).status_code == 200, host
            for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.evil.example:{port}", "[::2]", ""):
                for path in ("/api/campaigns", "/", "/static/common.js"):
                    response = c.get(path, headers={"Host": host})
                    assert response.status_code == 400, (host, path)
                    assert "quad" not in response.text
    finally:
        sock.close()


def test_allowed_hosts_of_the_app_factory(dash_url: str) -> None:
    with TestClient(create_app(dash_url, allowed_hosts=["atlas.internal"]), base_url="http://atlas.internal") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health", headers={"Host": "127.0.0.1:8787"}).status_code == 400
    with TestClient(create_app(dash_url, allowed_hosts=["*"]), base_url="http://anything.example") as c:
        assert c.get("/api/health").status_code == 200


def test_default_allowed_hosts() -> None:
    from dashboard.cli import default_allowed_hosts

    assert default_allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert default_allowed_hosts("::1") == ["127.0.0.1", "localhost", "[::1]"]
    assert default_allowed_hosts("10.1.2.3") == ["127.0.0.1", "localhost", "[::1]", "10.1.2.3"]
    assert default_allowed_hosts("fe80::1") == ["127.0.0.1", "localhost", "[::1]", "[fe80::1]"]
    wildcard = default_allowed_hosts("0.0.0.0")
    assert wildcard[:3] == ["127.0.0.1", "localhost", "[::1]"]
    assert socket.gethostname().lower() in wildcard and "0.0.0.0" not in wildcard
