"""A tiny Keystone v3 + Glance v2 HTTP server on 127.0.0.1 that records every request: enough for
openstacksdk (the real client library) to authenticate, discover the image service and create and upload
an image. There is no Glance on this machine; this stands in for the remote service only, so the test
checks the requests vmferry's upload made through openstacksdk, not what a real Glance would do."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class Recorder:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    images: dict = field(default_factory=dict)


def _handler(rec: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):   # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, code: int, doc=None, headers: dict | None = None) -> None:
            body = json.dumps(doc).encode() if doc is not None else b""
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if doc is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            body = self._body()
            rec.requests.append(Request(self.command, self.path, dict(self.headers), body))
            path = self.path.split("?")[0].rstrip("/")
            base = rec.url
            if self.command == "GET" and path in ("/identity", "/identity/v3"):
                self._send(200, {"version": {"id": "v3.14", "status": "stable", "links": [
                    {"rel": "self", "href": f"{base}/identity/v3/"}]}})
            elif self.command == "POST" and path == "/identity/v3/auth/tokens":
                token = {"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
                                   "issued_at": "2026-01-01T00:00:00.000000Z",
                                   "user": {"id": "u1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
                                   "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
                                   "roles": [{"id": "r1", "name": "member"}],
                                   "catalog": [{"type": "image", "name": "glance", "id": "s1", "endpoints": [
                                       {"id": "e1", "interface": "public", "region": "RegionOne",
                                        "region_id": "RegionOne", "url": f"{base}/image"}]},
                                       {"type": "identity", "name": "keystone", "id": "s2", "endpoints": [
                                           {"id": "e2", "interface": "public", "region": "RegionOne",
                                            "region_id": "RegionOne", "url": f"{base}/identity"}]}]}}
                self._send(201, token, {"X-Subject-Token": "vmferry-test-token"})
            elif self.command == "GET" and path == "/image":
                self._send(300, {"versions": [{"id": "v2.9", "status": "CURRENT", "links": [
                    {"rel": "self", "href": f"{base}/image/v2/"}]}]})
            elif self.command == "GET" and path == "/image/v2/images":
                self._send(200, {"images": list(rec.images.values()), "schema": "/v2/schemas/images"})
            elif self.command == "POST" and path == "/image/v2/images":
                doc = json.loads(body or b"{}")
                image = {"id": str(uuid.uuid4()), "status": "queued", "visibility": "private", "tags": [],
                         "self": "", "file": "", "schema": "/v2/schemas/image", **doc}
                image["self"] = f"/v2/images/{image['id']}"
                image["file"] = f"/v2/images/{image['id']}/file"
                rec.images[image["id"]] = image
                self._send(201, image)
            elif self.command == "PUT" and path.startswith("/image/v2/images/") and path.endswith("/file"):
                image = rec.images[path.split("/")[4]]
                image.update(status="active", size=len(body))
                self._send(204)
            elif self.command == "GET" and path.startswith("/image/v2/images/"):
                image = rec.images.get(path.split("/")[4])
                self._send(200, image) if image else self._send(404, {"error": "no such image"})
            elif self.command == "PATCH" and path.startswith("/image/v2/images/"):
                image = rec.images[path.split("/")[4]]
                for op in json.loads(body or b"[]"):
                    if op.get("op") in ("add", "replace"):
                        image[op["path"].lstrip("/")] = op["value"]
                self._send(200, image)
            else:
                self._send(404, {"error": f"not handled: {self.command} {path}"})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


def start() -> tuple[Recorder, ThreadingHTTPServer]:
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return rec, server
