"""The console's FastAPI application: pages, the live events of a run, and the write actions.

:func:`create_app` takes the state directory, a way to reach Temporal (an address, connected on first
use) and the operator token. Reads need no token when the console listens on loopback only
(``public=False``); every write does, always (401 without a token, 403 with a wrong one or from another
origin). Writes only start or signal Temporal runs: the console changes nothing by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from vmferry.console import auth, views
from vmferry.console import runs as console_runs
from vmferry.errors import VmferryError

EVENT_POLL = 0.2          # seconds between two looks at a followed run (live progress within ~1 s)
EVENT_KEEPALIVE = 15.0


def _templates():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("vmferry.console", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["age"] = views.human_age
    env.filters["bytes"] = _human_bytes
    return env


def _human_bytes(n: int | None) -> str:
    from vmferry.cli.common import human_bytes

    return human_bytes(n or 0)


class ConsoleState:
    """What one console serves: the state directory, the Temporal address and its client, the token."""

    def __init__(self, state_dir, address: str | None, token: str, namespace: str = "default",
                 public: bool = False) -> None:
        self.state_dir = str(state_dir)
        self.address = address
        self.namespace = namespace
        self.token = token
        self.public = public
        self._client = None
        self._lock = asyncio.Lock()
        self._store = None

    async def client(self):
        from vmferry.errors import WorkflowError
        from vmferry.workflows.endpoint import connect

        if self.address is None:
            raise WorkflowError("no Temporal service is configured: runs need 'vmferry serve'")
        async with self._lock:
            if self._client is None:
                self._client = await connect(self.address, self.namespace)
        return self._client

    def warm(self) -> None:
        """Parse every protection record once (at start), so the first overview is as quick as the next."""
        from vmferry.replication.status import status

        status(store=self.store())

    def store(self):
        from vmferry.console.cache import CachedStore

        if self._store is None:
            self._store = CachedStore(self.state_dir)
        return self._store


def create_app(state: ConsoleState):
    app = FastAPI(title="vmferry console", docs_url=None, redoc_url=None, openapi_url=None)
    templates = _templates()
    for name in templates.list_templates():       # compiled at start, not on a page's first request
        templates.get_template(name)
    static = resources.files("vmferry.console") / "static"
    assets = {p.name: p.read_bytes() for p in static.iterdir() if p.is_file()}

    def page(request: Request, template: str, status_code: int = 200, **ctx) -> HTMLResponse:
        authed = auth.token_matches(_token(request), state.token)
        html = templates.get_template(template).render(request=request, authed=authed, path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status_code)

    def _token(request: Request) -> str | None:
        return auth.request_token(request.headers.get("authorization"), request.cookies.get(auth.COOKIE))

    def refuse_write(request: Request) -> Response | None:
        """None when ``request`` may write; else the refusal (nothing has been done)."""
        back = _local(urlsplit(request.headers.get("referer", "")).path or "/")
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return page(request, "refused.html", 403, reason="the request comes from another site", back=back)
        given = _token(request)
        if not given:
            return page(request, "refused.html", 401, reason="this action needs the operator token", back=back)
        if not auth.token_matches(given, state.token):
            return page(request, "refused.html", 403, reason="the operator token is wrong", back=back)
        return None

    @app.middleware("http")
    async def guard_reads(request: Request, call_next):
        if state.public and request.url.path not in ("/login",) and not request.url.path.startswith("/static/"):
            if not auth.token_matches(_token(request), state.token):
                return page(request, "refused.html", 401, reason="this console needs the operator token")
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
        return response

    @app.get("/static/{name}")
    def asset(name: str):
        if name not in assets:
            return Response("not found", status_code=404, media_type="text/plain")
        kind = "text/css" if name.endswith(".css") else "text/javascript" if name.endswith(".js") else \
            "application/octet-stream"
        return Response(assets[name], media_type=kind, headers={"Cache-Control": "max-age=300"})

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        from vmferry.replication.status import status

        started = time.perf_counter()
        doc = status(store=state.store())
        rows = views.overview(doc)
        response = page(request, "overview.html", rows=rows, now=doc["now"])
        response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    @app.get("/api/status")
    def api_status():
        from vmferry.replication.status import status

        return JSONResponse(status(store=state.store()))

    @app.get("/apps/{name}", response_class=HTMLResponse)
    async def application(request: Request, name: str):
        try:
            detail = await asyncio.to_thread(views.app_detail, name, store=state.store())
        except VmferryError as exc:
            return page(request, "refused.html", 404, reason=str(exc))
        return page(request, "app.html", d=detail, name=name, schedule=await _schedule(name))

    async def _schedule(name: str) -> dict:
        """The application's sync schedule as Temporal has it, or why it cannot be shown."""
        from vmferry.workflows.schedules import schedule_state

        async def ask():
            return await schedule_state(await state.client(), name)

        try:
            found = await asyncio.wait_for(ask(), 5)
        except Exception as exc:  # noqa: BLE001 - Temporal down or not configured: the page says so
            return {"error": str(exc) or type(exc).__name__}
        return found or {"none": True}

    @app.get("/runs", response_class=HTMLResponse)
    async def runs_page(request: Request):
        try:
            items = await console_runs.list_runs(await state.client())
            error = ""
        except Exception as exc:  # noqa: BLE001 - Temporal down: the page says so
            items, error = [], str(exc)
        return page(request, "runs.html", runs=items, error=error)

    @app.get("/runs/{workflow_id}", response_class=HTMLResponse)
    async def run_page(request: Request, workflow_id: str):
        try:
            run = await console_runs.run_state(await state.client(), workflow_id)
        except Exception as exc:  # noqa: BLE001 - no such run, or Temporal down
            return page(request, "refused.html", 404, reason=f"no run {workflow_id!r}: {exc}")
        return page(request, "run.html", run=run, report=run.result if run.workflow_type == "TestRecovery"
                    and isinstance(run.result, dict) else None)

    @app.get("/runs/{workflow_id}/events")
    async def run_events(request: Request, workflow_id: str):
        client = await state.client()

        async def stream():
            last_steps, last_status, last_beat = None, None, time.monotonic()
            while True:
                try:
                    run = await console_runs.run_state(client, workflow_id, with_result=False)
                except Exception as exc:  # noqa: BLE001 - the run is gone or Temporal is down
                    yield _sse("failed", {"error": str(exc)})
                    return
                if (run.steps, run.gates) != last_steps:
                    yield _sse("steps", {"steps": run.steps, "gates": run.gates,
                                         "at": datetime.now(UTC).isoformat()})
                    last_steps, last_beat = (run.steps, run.gates), time.monotonic()
                if run.status != last_status:
                    yield _sse("status", {"status": run.status})
                    last_status, last_beat = run.status, time.monotonic()
                if not run.running:
                    yield _sse("done", {"status": run.status})
                    return
                if time.monotonic() - last_beat > EVENT_KEEPALIVE:
                    yield ": keepalive\n\n"
                    last_beat = time.monotonic()
                if await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_POLL)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/apps/{name}/test")
    async def start_test(request: Request, name: str):
        refused = refuse_write(request)
        if refused is not None:
            return refused
        fields = await _form(request)
        confirm = fields.get("confirm", "")
        pause = tuple(p for p in fields.get("pause_before", "").replace(",", " ").split() if p)
        if confirm != "yes":
            return page(request, "refused.html", 400, reason="a test failover must be confirmed")
        try:
            group = state.store().load(name)
            workflow_id = await console_runs.start_test(await state.client(), group.app, group.target_site, pause)
        except VmferryError as exc:
            return page(request, "refused.html", 400, reason=str(exc))
        return RedirectResponse(f"/runs/{workflow_id}", status_code=303)

    @app.post("/apps/{name}/failover")
    async def start_failover(request: Request, name: str):
        refused = refuse_write(request)
        if refused is not None:
            return refused
        confirm_name = (await _form(request)).get("confirm_name", "")
        if confirm_name != name:
            return page(request, "refused.html", 400,
                        reason=f"a failover is confirmed by typing the application's name ({name})")
        mode = (await _form(request)).get("mode", "planned")
        if mode not in ("planned", "disaster"):
            return page(request, "refused.html", 400, reason="a failover is planned or disaster")
        try:
            group = state.store().load(name)
            workflow_id = await console_runs.start_failover(await state.client(), group.app, group.target_site,
                                                            group.source_site, mode)
        except VmferryError as exc:
            return page(request, "refused.html", 400, reason=str(exc))
        return RedirectResponse(f"/runs/{workflow_id}", status_code=303)

    @app.post("/runs/{workflow_id}/resume")
    async def resume(request: Request, workflow_id: str):
        refused = refuse_write(request)
        if refused is not None:
            return refused
        gate = (await _form(request)).get("gate", "")
        if not gate:
            return page(request, "refused.html", 400, reason="which gate to resume is missing")
        try:
            await console_runs.resume(await state.client(), workflow_id, gate)
        except Exception as exc:  # noqa: BLE001 - no such run
            return page(request, "refused.html", 400, reason=f"cannot resume {workflow_id!r}: {exc}")
        return RedirectResponse(f"/runs/{workflow_id}", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, back: str = "/"):
        return page(request, "login.html", back=_local(back), error="")

    @app.post("/login")
    async def login(request: Request):
        fields = await _form(request)
        token, back = fields.get("token", ""), fields.get("back", "/")
        if not auth.token_matches(token.strip(), state.token):
            return page(request, "login.html", 403, back=_local(back), error="that is not the operator token")
        response = RedirectResponse(_local(back), status_code=303)
        response.set_cookie(auth.COOKIE, token.strip(), httponly=True, samesite="strict", path="/")
        return response

    @app.post("/logout")
    def logout():
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    return app


async def _form(request) -> dict[str, str]:
    """The fields of an urlencoded form (the console's forms are small; a body over 64 KiB is ignored)."""
    from urllib.parse import parse_qsl

    body = await request.body()
    if len(body) > 65536:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _local(path: str) -> str:
    """Only a path of this console is a place to go back to (no open redirect)."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
