"""A small synchronous client of the locator HTTP API.

::

    from vmferry.locator import LocatorClient, Locator

    with LocatorClient("http://127.0.0.1:8053", key_id="east-1", secret=b"...") as loc:
        loc.register("app.example.com", [Locator("198.51.100.7")], ttl=30)
        answer = loc.resolve("app.example.com")        # a Resolution
        for event in loc.watch(from_version=0, eids=["app.example.com"]):
            ...                                        # Change or Heartbeat, until you break

Refusals raise :class:`~vmferry.errors.AuthError` (401), :class:`~vmferry.errors.NotAllowed` (403)
or :class:`~vmferry.errors.LocatorError` (anything else), with the server's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx

from vmferry.errors import AuthError, LocatorError, NotAllowed
from vmferry.locator.auth import sign
from vmferry.locator.feed import Heartbeat
from vmferry.locator.model import Change, Locator, Mapping, Resolution
from vmferry.locator.service import DEFAULT_EXPIRY


class LocatorClient:
    def __init__(self, url: str, *, key_id: str | None = None, secret: bytes | str | None = None,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.key_id = key_id
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LocatorClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------------
    def _check(self, resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code == 200:
            return resp.json()
        try:
            detail = resp.json()
        except ValueError:
            detail = {"error": resp.text[:200]}
        message = detail.get("error") or json.dumps(detail.get("detail", detail))[:300]
        text = f"locator {self.url} refused ({resp.status_code}): {message}"
        if resp.status_code == 401:
            raise AuthError(text)
        if resp.status_code == 403:
            raise NotAllowed(text)
        raise LocatorError(text)

    def _signed(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.key_id or not self.secret:
            raise LocatorError("this client has no key id and secret: it cannot sign updates")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = sign(self.secret, "POST", path, self.key_id, body)
        headers["Content-Type"] = "application/json"
        try:
            return self._check(self._http.post(path, content=body, headers=headers))
        except httpx.HTTPError as exc:
            raise LocatorError(f"cannot reach the locator at {self.url}: {exc}") from exc

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._check(self._http.get(path, params=params))
        except httpx.HTTPError as exc:
            raise LocatorError(f"cannot reach the locator at {self.url}: {exc}") from exc

    # -- API ---------------------------------------------------------------------------------------
    def register(self, eid: str, locators: Sequence[Locator], *, ttl: int = 60,
                 expires_in: int = DEFAULT_EXPIRY, instance_id: int = 0) -> Mapping:
        out = self._signed("/v1/register", {"eid": eid, "instance_id": instance_id, "ttl": ttl,
                                            "expires_in": expires_in,
                                            "locators": [loc.to_dict() for loc in locators]})
        return Mapping.from_dict(out)

    def refresh(self, eid: str, *, expires_in: int = DEFAULT_EXPIRY, instance_id: int = 0) -> Mapping:
        out = self._signed("/v1/refresh", {"eid": eid, "instance_id": instance_id, "expires_in": expires_in})
        return Mapping.from_dict(out)

    def deregister(self, eid: str, *, instance_id: int = 0) -> int:
        return int(self._signed("/v1/deregister", {"eid": eid, "instance_id": instance_id})["version"])

    def resolve(self, query: str, *, instance_id: int = 0) -> Resolution:
        out = self._get("/v1/resolve", {"q": query, "instance_id": instance_id})
        return Resolution(query=out["query"], instance_id=out["instance_id"],
                          mapping=Mapping.from_dict(out["mapping"]) if out.get("mapping") else None,
                          negative_prefix=out.get("negative_prefix"), ttl=int(out.get("ttl", 0)))

    def resolve_raw(self, query: str, *, instance_id: int = 0, pick: bool = False) -> dict[str, Any]:
        return self._get("/v1/resolve", {"q": query, "instance_id": instance_id, "pick": pick})

    def mappings(self, *, instance_id: int | None = None) -> list[Mapping]:
        params = {} if instance_id is None else {"instance_id": instance_id}
        return [Mapping.from_dict(m) for m in self._get("/v1/mappings", params)["mappings"]]

    def status(self) -> dict[str, Any]:
        return self._get("/v1/status", {})

    def watch(self, *, from_version: int = 0, eids: Iterable[str] = (), instance_id: int = 0,
              heartbeat: float = 5.0) -> Iterator[Change | Heartbeat]:
        """Yield changes (and heartbeats) as they happen; resume with the last ``version`` seen."""
        params: dict[str, Any] = {"from_version": from_version, "instance_id": instance_id,
                                  "heartbeat": heartbeat, "eid": list(eids)}
        timeout = httpx.Timeout(10.0, read=max(30.0, 3 * heartbeat))
        try:
            with self._http.stream("GET", "/v1/watch", params=params, timeout=timeout) as resp:
                if resp.status_code != 200:
                    resp.read()
                    self._check(resp)
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if item.get("type") == "heartbeat":
                        yield Heartbeat(int(item["version"]))
                    elif item.get("type") == "change":
                        yield Change.from_dict(item)
                    else:
                        raise LocatorError(f"watch ended: {item.get('error', item)}")
        except httpx.HTTPError as exc:
            raise LocatorError(f"watch on {self.url} interrupted: {exc}") from exc
