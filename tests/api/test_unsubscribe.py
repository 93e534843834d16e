"""Unsubscribe links (CONTRACT.md §5): signed tokens, a page that changes nothing on GET,
RFC 8058 one-click on POST, end to end from the email's own header; the page in Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.delivery.unsubscribe import Links, make_token, read_token
from tests.api.conftest import ADMIN_KEY, SECRET, WRITE_KEY, bearer, customer_id
from tests.e2e.conftest import wait_until

# --------------------------------------------------------------------------- tokens


@given(st.text(min_size=1, max_size=256))
def test_a_token_carries_its_customer_id_and_only_the_secret_makes_one(cid):
    token = make_token(SECRET, cid)
    assert read_token(SECRET, token) == cid
    assert read_token("another-secret-0123456789", token) is None
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)  # safe in a URL path


def test_every_single_character_change_of_a_token_is_refused():
    token = make_token(SECRET, "c-42")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for i, ch in enumerate(token):
        for other in alphabet:
            if other != ch:
                changed = token[:i] + other + token[i + 1 :]
                assert read_token(SECRET, changed) in (None,), (i, other)
    for forged in ("", ".", "a.b", "YzQy", make_token(SECRET, "c-42") + "=", "x" * 5000):
        assert read_token(SECRET, forged) is None


def test_links_prefer_the_api_for_the_header_and_a_shop_page_for_templates():
    links = Links(SECRET, "https://mail.shop.test")
    token = make_token(SECRET, "c 1")
    assert links.for_customer("c 1") == (
        f"https://mail.shop.test/u/{token}",
        f"https://mail.shop.test/u/{token}",
    )
    page, header = links.for_customer(
        "c 1", "", "https://shop.test/unsub?t={token}&c={customer_id}"
    )
    assert page == f"https://shop.test/unsub?t={token}&c=c%201"
    assert header == f"https://mail.shop.test/u/{token}"
    # Without a public address, the shop's page is both (as before public_url existed).
    assert Links(SECRET).for_customer("c", "", "https://shop.test/u/{customer_id}") == (
        "https://shop.test/u/c",
        "https://shop.test/u/c",
    )


# --------------------------------------------------------------------------- over HTTP


async def _signed_up(api, cid: str):
    event = {"type": "signed_up", "customer_id": cid, "customer": {"email": f"{cid}@x.test"}}
    r = await api.http.post("/v1/events", json=event, headers=bearer(WRITE_KEY))
    assert r.status_code == 202

    def mine():
        return [m for m in api.sink.messages if m.message["To"] == f"{cid}@x.test"] or None

    (message,) = await wait_until(mine, 30, "the welcome email")
    return message.message


async def _status(api, cid: str) -> dict:
    return (await api.http.get(f"/v1/customers/{cid}", headers=bearer(ADMIN_KEY))).json()


async def test_one_click_from_the_emails_own_header_unsubscribes_without_a_redirect(api):
    cid = customer_id("u")
    message = await _signed_up(api, cid)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    assert link == f"{api.url}/u/{make_token(SECRET, cid)}"
    assert link in message.get_body(("html",)).get_content()  # the footer: the same link
    before = (await _status(api, cid))["events_processed"]

    # A mail scanner's GET changes nothing.
    page = await api.http.get(link)
    assert page.status_code == 200 and "Nordwind Tea" in page.text
    await asyncio.sleep(0.5)
    assert (await _status(api, cid))["events_processed"] == before

    # What a mailbox provider sends (RFC 8058 §3.2): a POST, form body, no cookies.
    r = await api.http.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 200
    assert "set-cookie" not in r.headers and "You are unsubscribed" in r.text

    async def recorded():
        st = await _status(api, cid)
        return st if st["events_processed"] == before + 1 else None

    st = await wait_until(recorded, 30, "customer.unsubscribed to reach the customer")
    assert st["profile"]["unsubscribed"] is True

    # The next marketing send of the journey under way is suppressed (CONTRACT.md §6);
    # the transactional receipt still goes out.
    order = {"type": "order.placed", "customer_id": cid, "id": f"{cid}-o1"}
    r = await api.http.post("/v1/events", json=order, headers=bearer(WRITE_KEY))
    assert r.status_code == 202

    async def both_decided():
        st = await _status(api, cid)
        done = [j for j in st["journal"] if j.get("template") in ("thanks", "receipt")]
        return done if len(done) == 2 else None

    lines = await wait_until(both_decided, 30, "the thanks and receipt sends")
    by_template = {j["template"]: j for j in lines}
    assert (by_template["thanks"]["status"], by_template["thanks"]["reason"]) == (
        "suppressed",
        "unsubscribed",
    )
    assert by_template["receipt"]["status"] == "sent"
    receipt = next(
        m.message for m in api.sink.messages
        if m.message["To"] == f"{cid}@x.test" and m.message["Subject"].startswith("receipt")
    )  # fmt: skip
    assert receipt["List-Unsubscribe"] is None  # transactional: no unsubscribe link


async def test_forged_or_altered_tokens_are_refused_and_change_nothing(api):
    cid = customer_id("u")
    await _signed_up(api, cid)
    before = (await _status(api, cid))["events_processed"]
    good = make_token(SECRET, cid)
    for token in (
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        make_token("wrong-secret-0123456789", cid),
        "nonsense",
    ):
        for method in ("GET", "POST"):
            r = await api.http.request(method, f"/u/{token}", content=b"List-Unsubscribe=One-Click")
            assert r.status_code == 404 and "not valid" in r.text, (token, method)
    await asyncio.sleep(0.5)
    assert (await _status(api, cid))["events_processed"] == before


# --------------------------------------------------------------------------- Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (./test installs it)"
)
async def test_the_page_in_chromium_button_then_result(api, tmp_path):
    from playwright.async_api import async_playwright

    cid = customer_id("u")
    message = await _signed_up(api, cid)
    link = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    before = (await _status(api, cid))["events_processed"]

    # The page as a browser renders it (DOM after parsing), without Playwright first.
    dom = await asyncio.to_thread(
        subprocess.run,
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'dump'}", "--dump-dom", link],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '<html lang="en">' in dom.stdout and "<button" in dom.stdout

    async with async_playwright() as p:
        browser = await p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[a for a in CHROMIUM_FLAGS if a != "--headless"],
        )
        try:
            page = await browser.new_page()
            await page.goto(link)
            assert await page.title() == "Unsubscribe · Nordwind Tea"
            heading = page.get_by_role("heading", level=1)
            assert await heading.inner_text() == "Unsubscribe from Nordwind Tea emails"
            button = page.get_by_role("button", name="Unsubscribe")
            assert await button.count() == 1
            assert await page.evaluate("document.cookie") == ""
            await button.click()
            await page.wait_for_load_state()
            assert await page.get_by_role("status").inner_text() == "You are unsubscribed"
            assert page.url == link  # no redirect
            assert await browser.cookies() == []
        finally:
            await browser.close()

    async def recorded():
        st = await _status(api, cid)
        return st if st["events_processed"] == before + 1 else None

    await wait_until(recorded, 30, "the button's customer.unsubscribed")


def test_a_long_link_goes_into_list_unsubscribe_verbatim_not_as_an_encoded_word():
    from engine.delivery.message import RenderedEmail, build_message

    link = f"https://mail.shop.test/u/{make_token(SECRET, 'c' * 256)}"
    message = build_message(
        RenderedEmail("Hi", "<p>Hi</p>", "Hi"),
        sender="a@shop.test",
        to="b@shop.test",
        idempotency_key="k",
        unsubscribe_url=link,
    )
    raw = message.as_bytes().decode()
    assert f"\r\nList-Unsubscribe: <{link}>\r\n" in raw  # one line, as RFC 2369 wants it
    assert "=?utf-8?" not in raw.split("List-Unsubscribe:")[1].split("\r\n")[0]
