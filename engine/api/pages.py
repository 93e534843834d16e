"""The unsubscribe pages a customer sees (CONTRACT.md §5), as plain accessible HTML.

In: the shop's name (from the rules' ``settings.sender``), the form's action. Out: HTML
text. No script, no cookies, no third-party requests; one heading, one sentence on what
stops, one real ``<button>`` in a ``<form method="post">`` (works without JavaScript and
with a screen reader), ``lang``, a viewport, and colours above WCAG AA contrast.
"""

from __future__ import annotations

from email.utils import parseaddr
from html import escape

_STYLE = """
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
         background: #f6f4f1; color: #1f1b16; line-height: 1.5; }
  main { max-width: 32rem; margin: 4rem auto; padding: 2rem; background: #fff;
         border-radius: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  h1 { font-size: 1.5rem; margin-top: 0; }
  button { font: inherit; font-weight: 600; padding: .75rem 1.5rem; border: 0;
           border-radius: 8px; background: #8a3b12; color: #fff; cursor: pointer; }
  button:focus-visible { outline: 3px solid #1f1b16; outline-offset: 2px; }
  .note { color: #4f463d; font-size: .95rem; }
"""


def shop_name(sender: str) -> str:
    """ "Acme Shop" from "Acme Shop <hello@acme.test>"; the domain when there is no name."""
    name, address = parseaddr(sender or "")
    if name.strip():
        return name.strip()
    domain = address.rpartition("@")[2]
    return domain or "us"


def _page(title: str, body: str, shop: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)} · {escape(shop)}</title>\n<style>{_STYLE}</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def confirm_page(shop: str, action: str) -> str:
    shop_html = escape(shop)
    body = (
        f"<h1>Unsubscribe from {shop_html} emails</h1>\n"
        f"<p>You will stop receiving marketing email from {shop_html}: newsletters, offers "
        "and reminders. Emails about your orders and your account still reach you.</p>\n"
        f'<form method="post" action="{escape(action)}">\n'
        '<button type="submit">Unsubscribe</button>\n</form>\n'
        '<p class="note">Nothing changes until you press the button.</p>'
    )
    return _page("Unsubscribe", body, shop)


def done_page(shop: str) -> str:
    shop_html = escape(shop)
    body = (
        '<h1 role="status">You are unsubscribed</h1>\n'
        f"<p>{shop_html} will not send you marketing email any more. Emails about your orders "
        "and your account still reach you.</p>\n"
        '<p class="note">It can take a few minutes to reach every message already planned.</p>'
    )
    return _page("Unsubscribed", body, shop)


def invalid_page(shop: str) -> str:
    body = (
        "<h1>This unsubscribe link is not valid</h1>\n"
        "<p>The link may have been changed or cut off. Open it again from the email, or use "
        "the unsubscribe link in a more recent email.</p>"
    )
    return _page("Link not valid", body, shop)


def retry_page(shop: str) -> str:
    body = (
        "<h1>Please try again in a minute</h1>\n"
        "<p>We could not record your request just now. Nothing was changed; go back and "
        "press the button again in a minute.</p>"
    )
    return _page("Try again", body, shop)
