"""CONTRACT.md §5 ingestion, row by row, over HTTP against uvicorn, Temporal and the worker."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx

from engine.api.app import create_app
from engine.tools.smtp_sink import free_port
from tests.api.conftest import (
    ADMIN_KEY,
    WRITE_KEY,
    basic,
    bearer,
    customer_id,
    serve_app,
    settings_for,
)
from tests.e2e.conftest import kill9, start_temporal, wait_until


def signup(cid: str, **kw) -> dict:
    return {"type": "signed_up", "customer_id": cid, "customer": {"email": f"{cid}@x.test"}, **kw}


async def customer(api, cid: str) -> httpx.Response:
    return await api.http.get(f"/v1/customers/{cid}", headers=bearer(ADMIN_KEY))


async def delivered_to(api, address: str, count: int = 1) -> list:
    def mine():
        got = [m for m in api.sink.messages if m.message["To"] == address]
        return got if len(got) >= count else None

    return await wait_until(mine, 30, f"{count} email(s) to {address}")


# --------------------------------------------------------------------------- keys


async def test_a_request_without_a_key_or_with_a_wrong_one_is_refused_and_nothing_is_sent(api):
    cid = customer_id()
    for headers in ({}, bearer("wk_not_a_key_0000"), basic("wk_not_a_key_0000"), bearer(ADMIN_KEY)):
        r = await api.http.post("/v1/events", json=signup(cid), headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["WWW-Authenticate"] == 'Basic realm="lifecycle"'
        assert "Bearer KEY" in r.json()["error"]
    assert (await customer(api, cid)).status_code == 404


async def test_bearer_and_basic_auth_are_both_accepted_and_202_means_the_email_comes(api):
    first, second = customer_id(), customer_id()
    r = await api.http.post("/v1/events", json=signup(first), headers=bearer(WRITE_KEY))
    assert (r.status_code, r.json()) == (202, {"accepted": 1})
    r = await api.http.post("/v1/events", json=signup(second), headers=basic(WRITE_KEY))
    assert (r.status_code, r.json()) == (202, {"accepted": 1})
    # Accepted means durable: the customer exists the moment the answer arrives.
    assert (await customer(api, first)).status_code == 200
    messages = await delivered_to(api, f"{first}@x.test")
    assert messages[0].message["Subject"] == "hello there"


async def test_the_customer_endpoint_needs_the_admin_key_and_says_404_for_unknown(api):
    cid = customer_id()
    await api.http.post("/v1/events", json=signup(cid), headers=bearer(WRITE_KEY))
    assert (await api.http.get(f"/v1/customers/{cid}")).status_code == 401
    r = await api.http.get(f"/v1/customers/{cid}", headers=bearer(WRITE_KEY))
    assert r.status_code == 401
    r = await api.http.get("/v1/customers/nobody-like-this", headers=bearer(ADMIN_KEY))
    assert r.status_code == 404 and "nobody-like-this" in r.json()["error"]
    st = (await customer(api, cid)).json()
    assert st["customer_id"] == cid and st["profile"]["email"] == f"{cid}@x.test"


async def test_a_customer_id_with_a_slash_and_spaces_is_read_back(api):
    from urllib.parse import quote

    cid = f"shop/{customer_id()} ann"
    event = signup(cid, customer={"email": "shop-ann@x.test"})
    r = await api.http.post("/v1/events", json=event, headers=bearer(WRITE_KEY))
    assert r.status_code == 202
    r = await api.http.get(f"/v1/customers/{quote(cid, safe='')}", headers=bearer(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["customer_id"] == cid


# --------------------------------------------------------------------------- checked whole


async def test_a_batch_with_one_bad_event_is_refused_whole_with_each_problem_by_index(api):
    good, other = customer_id(), customer_id()
    batch = [
        signup(good),
        {"type": "signed_up", "customer_id": "bad\nid"},
        signup(other),
        {"type": "signed_up", "customer_id": other, "at": "yesterday"},
        {"customer_id": other},
    ]
    r = await api.http.post("/v1/events", json={"batch": batch}, headers=bearer(WRITE_KEY))
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "3 events of this request are not valid; nothing was accepted"
    assert [p["index"] for p in body["problems"]] == [1, 3, 4]
    assert "non-printable character U+000A" in body["problems"][0]["error"]
    assert "'at' is not a time: 'yesterday'" in body["problems"][1]["error"]
    assert "'type' is required" in body["problems"][2]["error"]
    for cid in (good, other):
        assert (await customer(api, cid)).status_code == 404  # nothing was sent


async def test_customer_ids_that_cannot_be_workflow_ids_are_refused(api):
    for cid, expected in (
        ("", "'customer_id' is required"),
        ("   ", "'customer_id' is required"),
        ("x" * 257, "at most 256 are allowed"),
        ("tab\there", "non-printable character U+0009"),
        ("nul\x00", "non-printable character U+0000"),
    ):
        r = await api.http.post(
            "/v1/events", json={"type": "signed_up", "customer_id": cid}, headers=bearer(WRITE_KEY)
        )
        assert r.status_code == 400, cid
        assert expected in r.json()["problems"][0]["error"], (cid, r.json())


async def test_an_event_over_32_kb_is_refused_by_index(api):
    cid = customer_id()
    big = signup(cid, data={"blob": "x" * (33 * 1024)})
    r = await api.http.post(
        "/v1/events", json={"batch": [signup(cid), big]}, headers=bearer(WRITE_KEY)
    )
    assert r.status_code == 400
    (problem,) = r.json()["problems"]
    assert problem["index"] == 1 and "at most 32,768 (32 KB)" in problem["error"]


async def test_a_request_over_500_kb_is_refused_while_reading_declared_or_not(api):
    cid = customer_id()
    events = [signup(cid, data={"blob": "y" * 30_000}) for _ in range(20)]  # ~600 KB
    body = json.dumps({"batch": events}).encode()
    r = await api.http.post(
        "/v1/events",
        content=body,
        headers={**bearer(WRITE_KEY), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "at most 512,000 bytes (500 KB)" in r.json()["error"]

    sent = {"bytes": 0}

    async def chunks():  # no Content-Length: chunked, refused once it passes the limit
        for i in range(0, len(body), 16 * 1024):
            sent["bytes"] += 16 * 1024
            yield body[i : i + 16 * 1024]

    r = await api.http.post("/v1/events", content=chunks(), headers=bearer(WRITE_KEY))
    assert r.status_code == 413 and "more than 512,000 bytes" in r.json()["error"]
    assert (await customer(api, cid)).status_code == 404


async def test_bodies_that_are_not_events_get_a_clear_400(api):
    for content, expected in (
        (b"", "the body is empty"),
        (b"{not json", "not valid JSON at line 1 column 2"),
        (b"[" * 100 + b"]" * 100, "nested more than 34 levels"),
        (b'{"batch": []}', "'batch' is empty"),
        (b'{"batch": {}}', "'batch' must be a list"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"type": "a", "customer_id": "b", "data": {"n": NaN}}', "numbers must be finite"),
    ):
        r = await api.http.post("/v1/events", content=content, headers=bearer(WRITE_KEY))
        assert r.status_code == 400, content
        assert expected in r.json()["error"], (content, r.json())


# --------------------------------------------------------------------------- retries


async def test_a_retried_request_with_the_same_ids_is_processed_once(api):
    cid = customer_id()
    batch = {
        "batch": [
            signup(cid, id=f"{cid}-e1"),
            {"type": "order.placed", "customer_id": cid, "id": f"{cid}-e2"},
        ]
    }
    for _ in range(3):
        r = await api.http.post("/v1/events", json=batch, headers=bearer(WRITE_KEY))
        assert r.status_code == 202

    async def settled():
        st = (await customer(api, cid)).json()
        return st if st["inbox"] == 0 and st["events_processed"] >= 2 else None

    st = await wait_until(settled, 30, "the events to be processed")
    await asyncio.sleep(1.0)  # a duplicate, had it got through, would be processed by now
    st = (await customer(api, cid)).json()
    assert st["events_processed"] == 2
    receipts = [j for j in st["journal"] if j["action"] == "send" and j["template"] == "receipt"]
    assert len(receipts) == 1


# --------------------------------------------------------------------------- Segment


async def test_segment_track_identify_and_batch_map_segment_fields(api):
    cid = customer_id("seg")
    identify = {
        "userId": cid,
        "traits": {"email": f"{cid}@x.test", "name": "Ann"},
        "messageId": f"{cid}-m1",
        "anonymousId": "anon-1",
        "context": {"library": {"name": "analytics-python"}},
        "integrations": {"All": True},
        "sentAt": "2026-03-01T10:00:00.000Z",
        "timestamp": "2026-03-01T10:00:00.000Z",
    }
    r = await api.http.post("/v1/identify", json=identify, headers=basic(WRITE_KEY))
    assert (r.status_code, r.json()) == (200, {"success": True, "accepted": 1})
    track = {
        "userId": cid,
        "event": "signed_up",
        "properties": {"plan": "tea-club"},
        "context": {"traits": {"name": "Ann B"}, "ip": "203.0.113.9"},
        "messageId": f"{cid}-m2",
        "timestamp": "2026-03-01T10:00:01Z",
    }
    r = await api.http.post("/v1/track", json=track, headers=basic(WRITE_KEY))
    assert (r.status_code, r.json()) == (200, {"success": True, "accepted": 1})
    (message,) = await delivered_to(api, f"{cid}@x.test")
    assert message.message["Subject"] == "hello Ann B"  # context.traits merged before the rules ran

    batch = {
        "batch": [
            {"type": "page", "userId": cid, "name": "Home"},
            {"type": "track", "anonymousId": "anon-2", "event": "signed_up"},
            dict(track, type="track", event="order.placed", messageId=f"{cid}-m3"),
        ],
        "context": {"library": {"name": "analytics.js"}},
    }
    r = await api.http.post("/v1/batch", json=batch, headers=basic(WRITE_KEY))
    assert r.status_code == 200
    assert r.json() == {
        "success": True,
        "accepted": 1,
        "ignored": [
            {"index": 0, "reason": "page calls are not events here"},
            {"index": 1, "reason": "no userId (anonymous calls have no customer)"},
        ],
        # The fixture's schema: declares order.placed's total only.
        "warnings": [{"index": 2, "path": "data.plan", "warning": "not a declared field"}],
    }
    await delivered_to(api, f"{cid}@x.test", 2)  # thanks, after order.placed
    st = (await customer(api, cid)).json()
    assert st["profile"]["name"] == "Ann B"


async def test_segment_problems_use_segment_names_and_the_write_key_may_be_in_the_body(api):
    cid = customer_id("seg")
    r = await api.http.post(
        "/v1/track",
        json={"userId": cid, "event": "signed_up", "messageId": 5},
        headers=basic(WRITE_KEY),
    )
    assert r.status_code == 400
    assert r.json()["problems"] == [
        {
            "index": 0,
            "error": '\'messageId\' must be a non-empty string, got the number 5; write it as "id": "5"',
        }
    ]
    r = await api.http.post("/v1/track", json={"event": "signed_up"}, headers=basic(WRITE_KEY))
    assert r.json()["problems"][0]["error"] == "'userId' is required (the customer's id)"
    body = {"userId": cid, "traits": {"email": f"{cid}@x.test"}, "writeKey": WRITE_KEY}
    assert (await api.http.post("/v1/identify", json=body)).status_code == 200
    body["writeKey"] = "wk_wrong_key_000"
    assert (await api.http.post("/v1/identify", json=body)).status_code == 401


# --------------------------------------------------------------------------- backpressure


async def test_when_the_in_flight_bound_is_reached_the_next_request_gets_429_at_once(api, tmp_path):
    settings = settings_for("127.0.0.1:1", tmp_path, api_max_in_flight=1)
    app = create_app(settings, client=api.temporal, load_store=False, task_queue=api.task_queue)
    release = asyncio.Event()
    cid = customer_id()
    body = json.dumps(signup(cid)).encode()

    async def slow_upload():  # holds the only slot while its body is still arriving
        yield body[:10]
        await release.wait()
        yield body[10:]

    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        first = asyncio.create_task(
            http.post("/v1/events", content=slow_upload(), headers=bearer(WRITE_KEY))
        )
        await wait_until(lambda: app.state.lifecycle.in_flight == 1, 10, "the first request")
        r = await http.post("/v1/events", json=signup(customer_id()), headers=bearer(WRITE_KEY))
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        release.set()
        assert (await first).status_code == 202
        r = await http.post("/v1/events", json=signup(customer_id()), headers=bearer(WRITE_KEY))
        assert r.status_code == 202  # the slot is free again


async def test_503_with_retry_after_while_temporal_is_down_then_the_same_request_succeeds(tmp_path):
    port = free_port()
    settings = settings_for(f"127.0.0.1:{port}", tmp_path, api_temporal_timeout=2.0)
    app = create_app(settings, load_store=False)
    cid = customer_id()
    request = {"batch": [signup(cid, id=f"{cid}-1")]}
    server = None
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        try:
            health = (await http.get("/healthz")).json()
            assert health["ok"] is False and health["missing"][0].startswith(
                f"Temporal: unreachable at 127.0.0.1:{port}"
            )
            assert (await http.get("/readyz")).status_code == 503
            r = await http.post("/v1/events", json=request, headers=bearer(WRITE_KEY))
            assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
            assert "retry the same request" in r.json()["error"]

            server = await asyncio.to_thread(start_temporal, tmp_path / "temporal", port)

            async def healthy():
                return (await http.get("/healthz")).json()["ok"]

            await wait_until(healthy, 60, "the API to reach Temporal")
            r = await http.post("/v1/events", json=request, headers=bearer(WRITE_KEY))
            assert (r.status_code, r.json()) == (202, {"accepted": 1})
            r = await http.get(f"/v1/customers/{cid}", headers=bearer(ADMIN_KEY))
            # No worker on this server: the customer exists (durable) with its event queued.
            assert r.status_code in (200, 503)
        finally:
            if server is not None:
                server.stop()
                kill9(server.process)


# --------------------------------------------------------------------------- operations


async def test_metrics_count_requests_by_route_and_access_logs_carry_no_personal_data(api, caplog):
    cid = customer_id("private")
    with caplog.at_level("INFO", logger="lifecycle.api.access"):
        await api.http.post("/v1/events", json=signup(cid), headers=bearer(WRITE_KEY))
        await api.http.get(f"/v1/customers/{cid}", headers=bearer(ADMIN_KEY))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "lifecycle.api.access"]
    assert {"method": "POST", "route": "/v1/events", "status": 202} in [
        {k: line[k] for k in ("method", "route", "status")} for line in lines
    ]
    assert any(line["route"] == "/v1/customers/{customer_id}" for line in lines)
    assert cid not in caplog.text and WRITE_KEY not in caplog.text

    # Each answer and its log line carry the request's id: the caller's when it is a plain
    # token (joins a proxy's logs with ours), else a new one.
    caplog.clear()
    with caplog.at_level("INFO", logger="lifecycle.api.access"):
        given = await api.http.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
        made = await api.http.get("/healthz")
        odd = await api.http.get("/healthz", headers={"X-Request-ID": "a b<script>"})
    assert given.headers["x-request-id"] == "lb-7f3a.42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
    logged = [
        json.loads(r.getMessage())["request_id"]
        for r in caplog.records
        if r.name == "lifecycle.api.access"
    ]
    assert logged == [given.headers["x-request-id"], made.headers["x-request-id"],
                      odd.headers["x-request-id"]]  # fmt: skip

    text = (await api.http.get("/metrics")).text
    assert 'lifecycle_api_requests_total{endpoint="/v1/events",method="POST",status="202"}' in text
    assert 'lifecycle_api_events_accepted_total{kind="events"}' in text
    assert 'lifecycle_api_request_seconds_bucket{endpoint="/v1/events",le="0.005"}' in text
    assert cid not in text


async def test_openapi_describes_every_endpoint(api):
    spec = (await api.http.get("/openapi.json")).json()
    assert set(spec["paths"]) >= {
        "/v1/events", "/v1/track", "/v1/identify", "/v1/batch",
        "/v1/customers/{customer_id}", "/u/{token}", "/healthz", "/metrics",
    }  # fmt: skip
    assert set(spec["paths"]["/v1/events"]["post"]["responses"]) >= {
        "202",
        "400",
        "401",
        "413",
        "429",
        "503",
    }


# --------------------------------------------------------------------------- schema:


async def test_events_that_do_not_fit_the_rules_schema_are_refused_with_the_field_path(api):
    cid = customer_id()
    batch = [
        signup(cid, customer={"email": f"{cid}@x.test", "birthday": "20 April"}),
        {"type": "order.placed", "customer_id": cid, "data": {"total": "forty"}},
    ]
    r = await api.http.post("/v1/events", json={"batch": batch}, headers=bearer(WRITE_KEY))
    assert r.status_code == 400
    problems = r.json()["problems"]
    assert [(p["index"], p["path"]) for p in problems] == [
        (0, "customer.birthday"),
        (1, "data.total"),
    ]
    assert "a date" in problems[0]["error"] and "a number" in problems[1]["error"]
    assert (await customer(api, cid)).status_code == 404  # nothing accepted

    # An undeclared field is accepted, with a warning (the schema is not strict).
    r = await api.http.post(
        "/v1/track",
        json={"userId": cid, "event": "order.placed", "properties": {"total": 40, "coupon": "X"}},
        headers=basic(WRITE_KEY),
    )
    assert r.status_code == 200
    (warning,) = r.json()["warnings"]
    assert (warning["index"], warning["path"]) == (0, "data.coupon")


async def test_events_sent_while_the_api_is_still_reading_the_rules_are_checked(
    temporal_server, tmp_path
):
    """An API that reads its rules itself (as ``lifecycle serve`` does) checks the first
    request against their schema too: the request waits for the rules instead of going in
    unchecked. (The API reads them without sample renders: it sends nothing.)"""
    import shutil

    from engine.runtime.client import connect
    from tests.api.conftest import RULES

    # Rules that take a while to read: the fixture's, and 600 more journeys.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    many = "".join(
        f"  j{i}:\n    trigger: test.many\n    steps:\n      - send hello\n" for i in range(600)
    )
    (rules / "many.yaml").write_text("journeys:\n" + many)
    client = await connect(temporal_server.address)
    settings = settings_for(temporal_server.address, tmp_path, rules_dir=str(rules))
    app = create_app(settings, client=client, task_queue=f"api-{uuid.uuid4().hex[:8]}")
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        cid = customer_id()
        bad = {"type": "order.placed", "customer_id": cid, "data": {"total": "forty"}}
        r = await http.post("/v1/events", json=bad, headers=bearer(WRITE_KEY))
        assert r.status_code == 400, r.text
        assert [p["path"] for p in r.json()["problems"]] == ["data.total"]
        state = app.state.lifecycle
        assert state.store is not None and state.store.renders is False
