"""The HTTP API: how a shop's systems and its customers' mail reach the engine (CONTRACT.md §5).

In: ``Settings`` (keys, secret, Temporal, rules folder), optionally a Temporal client and a
plan store (tests). Out: ``create_app(...)``, a FastAPI app; ``app_from_env()`` is the
factory ``lifecycle serve`` hands to uvicorn.

| endpoint | what |
|---|---|
| ``POST /v1/events`` | one event of §2 or ``{"batch": [...]}``, write key; 202 when durable |
| ``POST /v1/track``, ``/v1/identify``, ``/v1/batch`` | Segment's HTTP API, write key; 200 |
| ``GET /v1/customers/{id}`` | the customer's status, admin key; 404 unknown |
| ``GET /u/{token}``, ``POST /u/{token}`` | the unsubscribe page and its button / RFC 8058 one-click |
| ``GET /healthz``, ``/readyz``, ``/metrics``, ``/openapi.json`` | operations |

Acknowledged means durable: 200/202 only after Temporal accepted every event of the request.
A request is checked whole first (``engine.api.ingest``); one bad event refuses it (400, each
problem by index) and nothing is sent. At most ``LIFECYCLE_API_MAX_IN_FLIGHT`` ingestion
requests run at once; the next gets 429 with ``Retry-After`` at once, before its body is
read, instead of waiting in an unbounded queue. Temporal unreachable or slow: 503 with
``Retry-After``; the client retries the same request and event ids make that safe.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine.api import ingest, pages
from engine.api.metrics import ApiMetrics
from engine.api.temporal import NotFound, TemporalLink, Unavailable
from engine.delivery.unsubscribe import read_token
from engine.runtime.keys import Keys, load_keys
from engine.runtime.settings import Settings

log = logging.getLogger("lifecycle.api")
access_log = logging.getLogger("lifecycle.api.access")

UNSUBSCRIBE_BODY_LIMIT = 4096
ONE_CLICK = "List-Unsubscribe=One-Click"
# Seconds an event waits, just after the API started, for the rules (their schema:) it is
# checked against; past it, 503 with Retry-After (nothing is accepted unchecked).
STORE_WAIT = 10.0

# ------------------------------------------------------------------ OpenAPI descriptions

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["type", "customer_id"],
    "properties": {
        "id": {"type": "string", "description": "makes delivery idempotent"},
        "type": {"type": "string", "example": "order.placed"},
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "at": {"type": "string", "description": "ISO 8601", "example": "2026-03-01T10:00:00Z"},
        "customer": {"type": "object", "description": "merged into the profile"},
        "data": {"type": "object", "description": "what trigger.* / event.* read"},
    },
}
_SEGMENT_CALL = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "identify", "page", "screen", "group", "alias"],
        },
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string"},
        "event": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
        "timestamp": {"type": "string"},
    },
}


def _body(schema: dict, description: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _error_schema(with_problems: bool = False) -> dict:
    props: dict = {"error": {"type": "string"}}
    if with_problems:
        props["problems"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "error": {"type": "string"},
                },
            },
        }
    return {"type": "object", "required": ["error"], "properties": props}


def _json(schema: dict, description: str, retry_after: bool = False) -> dict:
    out: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if retry_after:
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return out


_INGEST_RESPONSES = {
    400: _json(_error_schema(True), "the request or an event is bad; nothing was accepted"),
    401: _json(_error_schema(), "missing or wrong write key; nothing was accepted"),
    413: _json(_error_schema(), "over 500 KB; nothing was accepted"),
    429: _json(_error_schema(), "too many requests in flight; retry later", True),
    503: _json(_error_schema(), "Temporal unreachable; retry the same request", True),
}
_ACCEPTED = {
    "type": "object",
    "required": ["accepted"],
    "properties": {
        "accepted": {"type": "integer"},
        "success": {"type": "boolean"},
        "ignored": {"type": "array", "items": {"type": "object"}},
    },
}
_HTML = {"text/html": {"schema": {"type": "string"}}}


# ------------------------------------------------------------------ the app


class _State:
    def __init__(self, settings: Settings, keys: Keys, link: TemporalLink, store) -> None:
        self.settings, self.keys, self.link, self.store = settings, keys, link, store
        self.in_flight = 0
        self.metrics = ApiMetrics()
        self.store_error = ""
        # Set once the rules are loaded (or failed to load): until then an event cannot be
        # checked against their schema:, so ingestion waits for it (STORE_WAIT).
        self.store_ready = asyncio.Event()
        if store is not None:
            self.store_ready.set()

    @property
    def shop(self) -> str:
        sender = getattr(getattr(self.store, "settings", None), "sender", "") or ""
        return pages.shop_name(sender)


def create_app(
    settings: Settings | None = None,
    *,
    client=None,
    store=None,
    load_store: bool = True,
    task_queue: str | None = None,
) -> FastAPI:
    """The API. ``client``: a connected Temporal client (default: connect in the background
    from the settings). ``store``: a ``PlanStore`` (default: the rules folder's, loaded in
    the background; it gives the shop's name and, with a schema, the event checks)."""
    settings = settings or Settings.from_env()
    keys = load_keys(settings)
    link = (
        TemporalLink(settings, client, task_queue) if task_queue else TemporalLink(settings, client)
    )
    state = _State(settings, keys, link, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.link.start()
        loader = None
        if state.store is None and load_store:
            loader = asyncio.create_task(_load_store(state))
        else:
            state.store_ready.set()
        refresher = asyncio.create_task(_refresh_store(state))
        try:
            yield
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            if loader is not None:
                loader.cancel()
                await asyncio.gather(loader, return_exceptions=True)
            await state.link.close()
            _close_render_pool()

    app = FastAPI(
        title="lifecycle",
        version="1",
        summary="Events in, customers out, unsubscribe links that work.",
        docs_url=None,  # Swagger UI would load scripts from a CDN; /openapi.json is enough
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.lifecycle = state
    app.add_middleware(_Observe, state=state)

    # ---- ingestion

    @app.post(
        "/v1/events",
        status_code=202,
        responses={
            202: _json(_ACCEPTED, "every event is durable in Temporal"),
            **_INGEST_RESPONSES,
        },
        openapi_extra=_body(
            {
                "oneOf": [
                    _EVENT_SCHEMA,
                    {
                        "type": "object",
                        "required": ["batch"],
                        "properties": {"batch": {"type": "array", "items": _EVENT_SCHEMA}},
                    },
                ]
            },
            'one event (CONTRACT.md §2) or {"batch": [event, ...]}',
        ),
    )
    async def post_events(request: Request) -> Response:
        return await _ingest(state, request, "events")

    for kind, description in (
        ("track", "a Segment track call"),
        ("identify", "a Segment identify call"),
        ("batch", 'a Segment batch: {"batch": [call, ...]}'),
    ):
        schema = (
            {
                "type": "object",
                "required": ["batch"],
                "properties": {
                    "batch": {"type": "array", "items": _SEGMENT_CALL},
                    "context": {"type": "object"},
                },
            }
            if kind == "batch"
            else _SEGMENT_CALL
        )
        app.add_api_route(
            f"/v1/{kind}",
            _segment_endpoint(state, kind),
            methods=["POST"],
            name=f"segment_{kind}",
            responses={
                200: _json(_ACCEPTED, "every event is durable in Temporal"),
                **_INGEST_RESPONSES,
            },
            openapi_extra=_body(schema, description),
        )

    # ---- customers

    @app.get(
        "/v1/customers/{customer_id:path}",
        responses={
            200: _json({"type": "object"}, "what `lifecycle status --json` shows"),
            401: _json(_error_schema(), "missing or wrong admin key"),
            404: _json(_error_schema(), "no such customer"),
            503: _json(_error_schema(), "Temporal unreachable", True),
        },
    )
    async def get_customer(customer_id: str, request: Request) -> Response:
        if not _authorised(request, state.keys.admin):
            return _unauthorised("an admin key")
        try:
            return JSONResponse(await state.link.status(customer_id))
        except NotFound:
            return _error(404, f"no customer {customer_id!r}")
        except Unavailable as err:
            return _error(503, str(err), err.retry_after)

    # ---- unsubscribe

    @app.get(
        "/u/{token}",
        response_class=HTMLResponse,
        responses={
            200: {"content": _HTML},
            404: {"content": _HTML, "description": "not a valid link"},
        },
    )
    async def unsubscribe_page(token: str, request: Request) -> Response:
        if read_token(state.keys.secret, token) is None:
            return _html(404, pages.invalid_page(state.shop))
        # A GET changes nothing: mail scanners and link previews follow links.
        return _html(200, pages.confirm_page(state.shop, request.url.path))

    @app.post(
        "/u/{token}",
        response_class=HTMLResponse,
        responses={
            200: {"content": _HTML, "description": "unsubscribed"},
            404: {"content": _HTML, "description": "not a valid link; nothing changed"},
            503: {"content": _HTML, "description": "not recorded; try again"},
        },
    )
    async def unsubscribe(token: str, request: Request) -> Response:
        customer_id = read_token(state.keys.secret, token)
        if customer_id is None:
            return _html(404, pages.invalid_page(state.shop))
        try:
            body = await ingest.read_limited(
                request.stream(), request.headers.get("content-length"), UNSUBSCRIBE_BODY_LIMIT
            )
        except (ingest.RequestTooLarge, ingest.BodyError):
            body = b""
        one_click = ONE_CLICK.encode() in body
        event = {
            "type": "customer.unsubscribed",
            "customer_id": customer_id,
            "data": {"source": "one-click" if one_click else "page"},
        }
        try:
            await state.link.send([ingest.parse_event(event)])
        except Unavailable as err:
            response = _html(503, pages.retry_page(state.shop))
            response.headers["Retry-After"] = str(err.retry_after)
            return response
        state.metrics.unsubscribes.labels("one-click" if one_click else "page").inc()
        return _html(200, pages.done_page(state.shop))

    # ---- operations

    @app.get("/healthz", responses={200: _json({"type": "object"}, "alive; says what is missing")})
    async def healthz() -> Response:
        return JSONResponse(await _health(state))

    @app.get(
        "/readyz",
        responses={
            200: _json({"type": "object"}, "ready to accept events"),
            503: _json({"type": "object"}, "Temporal unreachable"),
        },
    )
    async def readyz() -> Response:
        health = await _health(state)
        return JSONResponse(health, status_code=200 if health["ok"] else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    return app


def app_from_env() -> FastAPI:
    """The factory ``lifecycle serve`` gives uvicorn (one per worker process)."""
    return create_app(Settings.from_env())


# ------------------------------------------------------------------ helpers


async def _refresh_store(state: _State, every: float = 2.0) -> None:
    """Reload the rules (their schema:, the shop's name) when the files change, as the
    worker does; a version that does not compile is refused and the last one kept."""
    while True:
        await asyncio.sleep(every)
        store = state.store
        if store is not None and not getattr(store, "static", True):
            try:
                await asyncio.to_thread(store.refresh)
            except Exception as err:  # noqa: BLE001  (keep serving with the last good rules)
                log.error("cannot reload the rules: %s", err)


def _close_render_pool() -> None:
    """At shutdown: the API reads its own rules without sample renders, but a store given
    to ``create_app`` may render them in the shared render processes, which would outlive
    a terminated server otherwise."""
    import sys

    pool = sys.modules.get("engine.delivery.render_pool")
    if pool is not None:
        pool.close_shared()


async def _load_store(state: _State) -> None:
    settings = state.settings
    try:
        await _load_rules(state, settings)
    finally:
        state.store_ready.set()


async def _load_rules(state: _State, settings) -> None:
    from engine.runtime.plans import PlanError, PlanStore

    try:
        state.store = await asyncio.to_thread(
            PlanStore, settings.rules_dir, settings.templates_dir, renders=False
        )
    except PlanError as err:
        state.store_error = "the rules do not compile (`lifecycle validate` says why)"
        log.error(
            "rules in %s do not compile; pages use a generic name:\n%s", settings.rules_dir, err
        )
    except Exception as err:  # noqa: BLE001  (the API still serves events)
        state.store_error = f"cannot load the rules: {err}"
        log.error("cannot load the rules from %s: %s", settings.rules_dir, err)


async def _health(state: _State) -> dict:
    ok, temporal = await state.link.health()
    missing = [] if ok else [f"Temporal: {temporal}"]
    rules = "loaded" if state.store is not None else (state.store_error or "loading")
    if state.store_error:
        missing.append(f"rules: {state.store_error}")
    return {
        "ok": ok,
        "temporal": temporal,
        "rules": rules,
        "in_flight": state.in_flight,
        "missing": missing,
    }


def _error(status: int, message: str, retry_after: int | None = None, **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _html(status: int, text: str) -> HTMLResponse:
    # No cookies are ever set; tell caches not to keep a page tied to one customer's link.
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


def _unauthorised(what: str) -> JSONResponse:
    response = _error(
        401,
        f"this needs {what}: send `Authorization: Bearer KEY` or Basic auth with the key as "
        "the user name (Segment's way)",
    )
    response.headers["WWW-Authenticate"] = 'Basic realm="lifecycle"'
    return response


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _key_ok(presented: str | None, allowed: tuple[str, ...]) -> bool:
    if not presented:
        return False
    # Compare with every key, in constant time each, so timing says nothing.
    found = False
    for key in allowed:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def _authorised(request: Request, allowed: tuple[str, ...]) -> bool:
    return _key_ok(_presented_key(request), allowed)


async def _ingest(state: _State, request: Request, kind: str) -> Response:
    """One ingestion request: key, in-flight bound, body limit, whole-request check, send."""
    has_header = bool(request.headers.get("authorization"))
    if has_header and not _authorised(request, state.keys.write):
        return _unauthorised("a write key")
    if not has_header and kind == "events":
        return _unauthorised("a write key")
    if state.in_flight >= state.settings.api_max_in_flight:
        state.metrics.rejected.labels("busy").inc()
        return _error(429, "too many requests in flight; retry shortly", retry_after=1)
    state.in_flight += 1
    try:
        try:
            body = await ingest.read_limited(
                request.stream(), request.headers.get("content-length")
            )
            value = ingest.decode(body)
        except ingest.RequestTooLarge as err:
            return _error(413, str(err))
        except ingest.BodyError as err:
            return _error(400, str(err), problems=[{"index": None, "error": str(err)}])
        if not has_header:
            # Segment's libraries may put the write key in the body instead of a header.
            key = value.get("writeKey") if isinstance(value, dict) else None
            if not _key_ok(key if isinstance(key, str) else None, state.keys.write):
                return _unauthorised("a write key")
        if not state.store_ready.is_set():  # just started: the rules are being read
            try:
                await asyncio.wait_for(state.store_ready.wait(), STORE_WAIT)
            except TimeoutError:
                return _error(503, "the rules are still loading; retry shortly", retry_after=2)
        try:
            schema = getattr(state.store, "schema", None)  # rules' schema: (None without)
            parsed = (
                ingest.native_events(value, schema)
                if kind == "events"
                else ingest.segment_events(kind, value, schema)
            )
        except ingest.BodyError as err:
            return _error(400, str(err), problems=[{"index": None, "error": str(err)}])
        if parsed.problems:
            count = len(parsed.problems)
            return _error(
                400,
                f"{count} event{'s' if count > 1 else ''} of this request "
                f"{'are' if count > 1 else 'is'} not valid; nothing was accepted",
                problems=[p.as_dict() for p in parsed.problems],
            )
        try:
            await state.link.send(parsed.events)
        except Unavailable as err:
            status = 429 if err.overloaded else 503
            state.metrics.rejected.labels("temporal").inc()
            return _error(status, str(err), err.retry_after)
        state.metrics.events.labels(kind).inc(len(parsed.events))
        answer: dict = {"accepted": len(parsed.events)}
        if parsed.ignored:
            answer["ignored"] = parsed.ignored
        if parsed.warnings:
            answer["warnings"] = parsed.warnings
        if kind == "events":
            return JSONResponse(answer, status_code=202)
        return JSONResponse({"success": True, **answer}, status_code=200)
    finally:
        state.in_flight -= 1


def _segment_endpoint(state: _State, kind: str):
    async def endpoint(request: Request) -> Response:
        return await _ingest(state, request, kind)

    endpoint.__name__ = f"segment_{kind}"
    return endpoint


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(headers) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (a proxy's or the shop's own,
    so its logs and ours can be joined), else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


class _Observe:
    """Pure ASGI middleware: metrics and one structured access-log line per request, with
    the route's template (``/u/{token}``) rather than the path, so no customer id or token
    is ever logged, and no client address; each line and each answer carry the request's
    id (``X-Request-ID``)."""

    def __init__(self, app, state: _State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        rid = request_id(scope.get("headers") or ())

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path_format", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.state.metrics.observe(endpoint, scope["method"], status["code"], elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    json.dumps(
                        {
                            "method": scope["method"],
                            "route": endpoint,
                            "status": status["code"],
                            "ms": round(elapsed * 1000, 1),
                            "request_id": rid,
                        }
                    )
                )
