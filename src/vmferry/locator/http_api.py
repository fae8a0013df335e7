"""The HTTP API of the locator service (FastAPI): a thin layer over :class:`LocatorService`.

==========================  =====================================================================
``POST /v1/register``       register or move an EID (signed)
``POST /v1/refresh``        extend a registration (signed)
``POST /v1/deregister``     remove a registration (signed)
``GET  /v1/resolve``        longest-prefix / name lookup; ``found: false`` is a negative answer
``GET  /v1/mappings``       the whole table (per instance id)
``GET  /v1/watch``          JSON lines: every change after ``from_version`` to the followed EIDs
``GET  /v1/status``         store kind, current version, number of mappings
``GET  /openapi.json``      the OpenAPI document
==========================  =====================================================================

Refusals: 401 (missing/forged signature, unknown key id, replayed nonce, stale timestamp; the body
says which in ``reason``), 403 (EID outside the site's prefixes), 404 (not registered), 413 (body
larger than ``max_body``), 422 (malformed request), 503 (the store is unreachable). Every refusal
of a write is logged on the ``vmferry.locator.audit`` logger.
"""


import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from vmferry.errors import AuthError, LocatorError, NotAllowed
from vmferry.locator.auth import RequestRefused, Verifier, audit_refusal
from vmferry.locator.model import MAX_INSTANCE_ID, MAX_TTL, Eid, InvalidRequest, Locator, Site
from vmferry.locator.service import DEFAULT_EXPIRY, MAX_EXPIRY, LocatorService, NotFound
from vmferry.locator.store import HistoryCompacted

DEFAULT_MAX_BODY = 64 * 1024


class LocatorIn(BaseModel):
    address: str = Field(max_length=64, description="IPv4 or IPv6 address of the locator")
    priority: int = Field(1, ge=0, le=255, description="lower wins; 255 means unusable")
    weight: int = Field(100, ge=0, le=255, description="share of traffic among equal priorities")
    reachable: bool = True
    port: int | None = Field(None, ge=1, le=65535, description="service port (for SRV answers)")


class RegisterIn(BaseModel):
    eid: str = Field(max_length=300, description="an IPv4/IPv6 prefix or a DNS name")
    instance_id: int = Field(0, ge=0, le=MAX_INSTANCE_ID)
    locators: list[LocatorIn] = Field(max_length=64)
    ttl: int = Field(60, ge=0, le=MAX_TTL, description="DNS/record TTL in seconds")
    expires_in: int = Field(DEFAULT_EXPIRY, ge=1, le=MAX_EXPIRY, description="seconds until it must be refreshed")


class RefreshIn(BaseModel):
    eid: str = Field(max_length=300)
    instance_id: int = Field(0, ge=0, le=MAX_INSTANCE_ID)
    expires_in: int = Field(DEFAULT_EXPIRY, ge=1, le=MAX_EXPIRY)


class DeregisterIn(BaseModel):
    eid: str = Field(max_length=300)
    instance_id: int = Field(0, ge=0, le=MAX_INSTANCE_ID)


@dataclass(frozen=True)
class Signed:
    """An authenticated request: its site, its "<key id>/<nonce>" and the peer address."""

    site: Site
    nonce: str
    peer: str | None


class Refusal(BaseModel):
    error: str
    reason: str


_REFUSALS = {401: {"model": Refusal, "description": "not authenticated"},
             403: {"model": Refusal, "description": "outside the site's prefixes"},
             404: {"model": Refusal, "description": "not registered"},
             413: {"model": Refusal, "description": "request body too large"},
             503: {"model": Refusal, "description": "store unavailable"}}


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``limit`` bytes with 413, before parsing."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                return await self._refuse(scope, send)
        seen = 0
        too_big = False

        async def limited():
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope, send) -> None:
        path = scope.get("path", "")
        audit_refusal("too_large", f"body over {self.limit} bytes on {path}",
                      peer=(scope.get("client") or ("-",))[0])
        body = json.dumps({"error": f"request body larger than {self.limit} bytes", "reason": "too_large"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _refusal(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "reason": reason}, status_code=status)


def create_app(service: LocatorService, verifier: Verifier, *, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """Build the FastAPI application serving ``service``; writes are checked by ``verifier``."""
    app = FastAPI(title="vmferry locator", version="1",
                  description="Stable endpoint identities (EIDs) mapped to their current locators.")

    @app.exception_handler(LocatorError)
    async def _locator_error(request: Request, exc: LocatorError):
        if isinstance(exc, RequestRefused):
            return _refusal(401, exc.reason, str(exc))
        if isinstance(exc, AuthError):
            return _refusal(401, "unauthenticated", str(exc))
        if isinstance(exc, NotAllowed):
            return _refusal(403, "not_allowed", str(exc))
        if isinstance(exc, NotFound):
            return _refusal(404, "not_found", str(exc))
        if isinstance(exc, HistoryCompacted):
            return _refusal(410, "compacted", str(exc))
        if isinstance(exc, InvalidRequest):
            return _refusal(422, "invalid", str(exc))
        return _refusal(503, "store", str(exc))

    async def signed(request: Request,
                     x_locator_key_id: str = Header(..., max_length=128),
                     x_locator_timestamp: str = Header(..., max_length=32),
                     x_locator_nonce: str = Header(..., max_length=128),
                     x_locator_signature: str = Header(..., max_length=128)) -> Signed:
        body = await request.body()
        peer = request.client.host if request.client else None
        try:
            site = verifier.verify(request.method, request.url.path, request.headers, body)
        except RequestRefused as exc:
            audit_refusal(exc.reason, str(exc), key_id=x_locator_key_id, peer=peer)
            raise
        return Signed(site, f"{x_locator_key_id}/{x_locator_nonce}", peer)

    def authorized(auth: Signed, eid: Eid) -> None:
        try:
            service.authorize(auth.site, eid)
        except NotAllowed as exc:
            audit_refusal("not_allowed", str(exc), key_id=auth.site.key_id, peer=auth.peer)
            raise

    def audited(auth: Signed, write):
        """Run a store write; a replay caught by a shared store is logged like the others."""
        try:
            return write()
        except RequestRefused as exc:
            audit_refusal(exc.reason, str(exc), key_id=auth.site.key_id, peer=auth.peer)
            raise

    @app.post("/v1/register", responses=_REFUSALS, summary="register or move an EID")
    def register(body: RegisterIn, auth: Annotated[Signed, Depends(signed)]) -> dict:
        eid = Eid.parse(body.eid, body.instance_id)
        locators = [Locator(**loc.model_dump()) for loc in body.locators]
        authorized(auth, eid)
        mapping = audited(auth, lambda: service.register(auth.site, eid, locators, ttl=body.ttl,
                                                         expires_in=body.expires_in, nonce=auth.nonce))
        return mapping.to_dict()

    @app.post("/v1/refresh", responses=_REFUSALS, summary="extend a registration")
    def refresh(body: RefreshIn, auth: Annotated[Signed, Depends(signed)]) -> dict:
        eid = Eid.parse(body.eid, body.instance_id)
        authorized(auth, eid)
        return audited(auth, lambda: service.refresh(auth.site, eid, expires_in=body.expires_in,
                                                     nonce=auth.nonce)).to_dict()

    @app.post("/v1/deregister", responses=_REFUSALS, summary="remove a registration")
    def deregister(body: DeregisterIn, auth: Annotated[Signed, Depends(signed)]) -> dict:
        eid = Eid.parse(body.eid, body.instance_id)
        authorized(auth, eid)
        version = audited(auth, lambda: service.deregister(auth.site, eid, nonce=auth.nonce))
        return {"instance_id": eid.instance_id, "eid": eid.text, "version": version}

    @app.get("/v1/resolve", summary="resolve an address, prefix or name",
             responses={422: {"model": Refusal, "description": "not an address, prefix or name"}})
    async def resolve(q: str = Query(..., max_length=300, description="address, prefix or DNS name"),
                instance_id: int = Query(0, ge=0, le=MAX_INSTANCE_ID),
                pick: bool = Query(False, description="also choose one locator by weight")) -> dict:
        answer = service.resolve(q, instance_id)
        out = answer.to_dict()
        if pick and answer.mapping is not None:
            chosen = answer.mapping.choose()
            out["selected"] = chosen.to_dict() if chosen else None
        return out

    @app.get("/v1/mappings", summary="list the registrations")
    def mappings(instance_id: int | None = Query(None, ge=0, le=MAX_INSTANCE_ID)) -> dict:
        version = service.version
        return {"version": version, "mappings": [m.to_dict() for m in service.mappings(instance_id)]}

    @app.get("/v1/status", summary="service status")
    async def status() -> dict:
        return {"store": service.store.name, "version": service.version, "mappings": len(service.index)}

    @app.get("/v1/watch", summary="stream changes as JSON lines",
             responses={200: {"content": {"application/x-ndjson": {}},
                              "description": "one JSON object per line: changes and heartbeats"},
                        410: {"model": Refusal, "description": "history no longer kept; resolve again"}})
    async def watch(from_version: int = Query(0, ge=0, description="deliver changes after this version"),
                    eid: Annotated[list[str] | None, Query(description="follow these EIDs (and more specifics); all if none")] = None,
                    instance_id: int = Query(0, ge=0, le=MAX_INSTANCE_ID),
                    heartbeat: float = Query(5.0, ge=0.05, le=300)):
        follows = [Eid.parse(e, instance_id) for e in eid or []]
        if from_version > service.version:
            raise InvalidRequest(f"version {from_version} is ahead of this store (at {service.version})")
        return StreamingResponse(_stream(service, from_version, follows, heartbeat),
                                 media_type="application/x-ndjson")

    app.add_middleware(BodyLimit, limit=max_body)
    return app


def _line(item) -> str:
    return json.dumps(item.to_dict(), separators=(",", ":")) + "\n"


async def _stream(service: LocatorService, after: int, follows: list[Eid],
                  heartbeat: float) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    wake_event = asyncio.Event()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(wake_event.set)
        except RuntimeError:  # the loop is closed: the connection is gone
            return

    service.feed.add_listener(wake)
    try:
        version = after
        while True:
            wake_event.clear()
            batch = service.feed.since(version)
            if batch is None:
                base = service.feed.base
                try:
                    older = await asyncio.to_thread(
                        lambda v=version, b=base: [c for c in service.store.history(v, b) if c.matches(follows)])
                except HistoryCompacted as exc:
                    yield json.dumps({"type": "error", "reason": "compacted", "error": str(exc)}) + "\n"
                    return
                for change in older:
                    yield _line(change)
                version = base
                continue
            if batch:
                text = "".join(_line(c) for c in batch if c.matches(follows))
                version = batch[-1].version
                if text:
                    yield text
                continue
            try:
                await asyncio.wait_for(wake_event.wait(), heartbeat)
            except TimeoutError:
                yield json.dumps({"type": "heartbeat", "version": version}) + "\n"
    finally:
        service.feed.remove_listener(wake)
