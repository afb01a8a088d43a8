"""The pay page in a real browser: Debian's Chromium, driven by Playwright.

The product runs as pytest-django's live server on loopback, with Stripe played
by the fake on loopback (tests/gateways/stripe_server.py) and the bank's 3-D
Secure page by a small HTTP server of this module's, which sends the customer
back to the return URL as Stripe's hosted page does.  What the Django test
client cannot tell, the browser does: the CSRF cookie and field make a real
round trip, the redirects are followed, the Thai font is loaded and used, and
the page fits a phone's screen.

Screenshots land in the test's temporary folder, or in $DUNNING_SCREENSHOTS
when it is set, for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import override_settings

from dunning.engine import links
from dunning.engine.models import Case, ContactOptOut, Message
from dunning.ledger.models import Invoice, PaymentAttempt, PaymentMethod
from tests.case_factories import make_case
from tests.gateways.stripe_server import (
    PAYMENT_INTENTS,
    FakeStripe,
    card_error,
    stripe_object,
    variant,
)
from tests.web.test_new_card import SESSION_ID, SESSIONS, session, stripe_saves

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.django_db(transaction=True)  # the live server reads what tests write

PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium is not installed: apt-get install chromium")
    # Playwright's sync API keeps an event loop in this thread while it runs; the
    # ORM calls of the tests and their database teardown are still plain
    # synchronous code, so Django's guard against async contexts stands aside.
    with pytest.MonkeyPatch.context() as patch, playwright.sync_playwright() as driver:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = driver.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, locale="th-TH")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def site(live_server: Any) -> Iterator[str]:
    with override_settings(DUNNING_PUBLIC_URL=live_server.url):
        yield live_server.url


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], None]:
    folder = Path(os.environ.get("DUNNING_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page: Any, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return shoot


class _HostedPages(BaseHTTPRequestHandler):
    """Pages of others': the bank's 3-D Secure page and Stripe's page for a new card.

    Each has one link that sends the customer back, as the real ones do once done.
    """

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/3ds":
            back = f"{query['return_to'][0]}?payment_intent={query['payment_intent'][0]}"
            body = (
                "<!doctype html><title>Bank</title><h1>Confirm your payment</h1>"
                f'<a id="confirm" href="{back}&redirect_status=succeeded">Confirm</a>'
            ).encode()
        elif url.path == "/checkout":
            body = (
                "<!doctype html><title>Stripe</title><h1>Save a card</h1>"
                f'<a id="save" href="{query["return_to"][0]}">Save card</a>'
            ).encode()
        else:  # the browser's favicon.ico
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bank() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostedPages)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def intent(status: str, **changes: Any) -> dict[str, Any]:
    return variant(
        stripe_object("payment_intent_succeeded"),
        status=status,
        amount=99000,
        currency="thb",
        customer="cus_th",
        metadata={"dunning_invoice": "in_th"},
        **changes,
    )


@pytest.fixture
def thai_case(
    site: str,
    make_customer: Callable[..., Any],
    make_invoice: Callable[..., Any],
    make_card: Callable[..., Any],
) -> Case:
    make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH", country="TH")
    make_card("pm_cus_th", customer="cus_th")
    return make_case(
        make_invoice(
            "in_th",
            customer="cus_th",
            number="INV-9",
            currency="THB",
            amount_due=99000,
            collection_method="charge_automatically",
        )
    )


def test_a_thai_customer_pays_through_3d_secure_on_a_phone(
    page: Any,
    thai_case: Case,
    stripe_gateway: FakeStripe,
    bank: str,
    shots: Callable[[Any, str], None],
) -> None:
    pay_url = links.pay_link(thai_case.customer, thai_case)
    return_url = f"{pay_url}/return"
    reference = intent("requires_action")["id"]
    bank_page = f"{bank}/3ds?payment_intent={reference}&return_to={quote(return_url, safe='')}"
    stripe_gateway.reply(
        200,
        intent(
            "requires_action",
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"url": bank_page, "return_url": return_url},
            },
        ),
    )
    stripe_gateway.reply(
        200, intent("succeeded"), method="GET", path=f"{PAYMENT_INTENTS}/{reference}"
    )

    page.goto(pay_url)
    shots(page, "pay-th")

    button = page.get_by_role("button", name="ชำระเงิน ฿990.00")
    playwright.expect(button).to_be_visible()
    # The page's own Sarabun draws the Thai, not a fallback: the face was fetched and used.
    assert page.evaluate("document.fonts.check('16px Sarabun', 'ชำระ')")
    assert page.evaluate(
        "[...document.fonts].some(f => f.family.replace(/\"/g, '') === 'Sarabun'"
        " && f.status === 'loaded')"
    )
    # Nothing is wider than the phone's screen, and the page's card keeps a margin
    # on it (edge to edge, its rounded corners were cut off).
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    card = page.locator("main").bounding_box()
    assert card is not None and card["x"] >= 8 and card["x"] + card["width"] <= PHONE["width"] - 8

    button.click()
    page.wait_for_url(f"{bank}/3ds*")
    # The browser sent the form with its CSRF token; the charge asks for 3-D Secure.
    [charge] = stripe_gateway.charges
    assert charge.form["return_url"] == return_url
    assert not PaymentAttempt.objects.exists()

    page.click("#confirm")
    page.wait_for_url(f"{return_url}*")
    shots(page, "paid-th")

    playwright.expect(
        page.get_by_role("heading", name="ขอบคุณ เราได้รับการชำระเงินแล้ว")
    ).to_be_visible()
    assert "฿990.00" in page.inner_text("main")
    assert Invoice.objects.get(external_id="in_th").status == "paid"
    assert PaymentAttempt.objects.get().reference == reference
    assert Message.objects.filter(case=thai_case, step="payment_received").exists()


def test_a_declined_card_is_told_in_neutral_words_and_the_customer_can_try_again(
    page: Any,
    site: str,
    make_customer: Callable[..., Any],
    make_invoice: Callable[..., Any],
    make_card: Callable[..., Any],
    stripe_gateway: FakeStripe,
    shots: Callable[[Any, str], None],
) -> None:
    make_customer("cus_en", name="Jane Doe", locale="en-US", country="US")
    make_card("pm_cus_en", customer="cus_en")
    case = make_case(
        make_invoice(
            "in_en",
            customer="cus_en",
            number="A-17",
            currency="USD",
            amount_due=4999,
            collection_method="charge_automatically",
        )
    )
    declined = variant(
        stripe_object("payment_intent_last_payment_error_insufficient_funds"),
        metadata={"dunning_invoice": "in_en"},
    )
    stripe_gateway.reply(402, card_error(declined))

    page.goto(links.pay_link(case.customer, case))
    page.get_by_role("button", name="Pay $49.99 now").click()
    page.get_by_role("heading", name="The payment did not go through").wait_for()
    shots(page, "declined-en")

    text = page.inner_text("main").lower()
    for word in ("stolen", "lost", "fraud"):
        assert word not in text
    assert PaymentAttempt.objects.get().decline_code == "insufficient_funds"

    page.get_by_role("link", name="try again").click()
    # Visible once the link's page has loaded: expect waits for it, is_visible would not.
    playwright.expect(page.get_by_role("button", name="Pay $49.99 now")).to_be_visible()


def test_a_thai_customer_unsubscribes_with_the_page_s_button(
    page: Any, site: str, make_customer: Callable[..., Any], shots: Callable[[Any, str], None]
) -> None:
    customer = make_customer("cus_th", name="สมชาย ใจดี", locale="th-TH", country="TH")

    page.goto(links.unsubscribe_link(customer, "email"))
    shots(page, "unsubscribe-th")
    page.get_by_role("button", name="ยกเลิกการรับการแจ้งเตือน").click()
    page.get_by_role("heading", name="ยกเลิกการรับการแจ้งเตือนเรียบร้อยแล้ว").wait_for()
    shots(page, "unsubscribed-th")

    assert ContactOptOut.objects.filter(customer=customer, channel="email").exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_customer_whose_card_expired_saves_a_new_one_on_stripe_s_page(
    page: Any,
    thai_case: Case,
    stripe_gateway: FakeStripe,
    bank: str,
    shots: Callable[[Any, str], None],
) -> None:
    pay_url = links.pay_link(thai_case.customer, thai_case)
    back = f"{pay_url}/card/return?session_id={SESSION_ID}"
    stripe_page = f"{bank}/checkout?return_to={quote(back, safe='')}"
    stripe_gateway.reply(
        200, {**session("open", customer="cus_th"), "url": stripe_page}, path=SESSIONS
    )
    saved = session(customer="cus_th")
    saved["setup_intent"]["customer"] = saved["setup_intent"]["payment_method"]["customer"] = (
        "cus_th"
    )
    stripe_saves(stripe_gateway, saved, customer="cus_th")

    page.goto(pay_url)
    shots(page, "pay-th-new-card")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("button", name="ใช้บัตรใบใหม่").click()
    page.wait_for_url(f"{bank}/checkout*")
    page.click("#save")
    page.get_by_role("heading", name="บันทึกบัตรใบใหม่ของท่านแล้ว").wait_for()
    shots(page, "card-saved-th")

    assert "ลงท้ายด้วย 4444" in page.inner_text("main")
    assert PaymentMethod.objects.get(external_id="pm_new").is_default


def test_an_operator_reads_a_thai_name_in_the_admin_in_the_app_s_own_font(
    page: Any, site: str, make_customer: Callable[..., Any], shots: Callable[[Any, str], None]
) -> None:
    from django.contrib.auth.models import User

    User.objects.create_superuser("finance", "finance@example.com", "a long passphrase")
    customer = make_customer("cus_th", name="สมหญิง ศรีสุข")

    page.goto(f"{site}/admin/ledger/customer/{customer.pk}/change/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", "a long passphrase")
    page.click("input[type=submit]")
    playwright.expect(page.locator("#content h2").first).to_have_text("สมหญิง ศรีสุข (cus_th)")
    page.evaluate("document.fonts.ready.then(() => true)")  # the faces the page asked for
    shots(page, "admin-customer-th")

    # Chromium says which fonts drew each element's glyphs: the Thai of the bold
    # heading and of the breadcrumbs is Sarabun's, the Latin the admin's own.
    browser = page.context.new_cdp_session(page)
    browser.send("DOM.enable")
    browser.send("CSS.enable")

    def drawn_by(selector: str) -> dict[str, int]:
        root = browser.send("DOM.getDocument")["root"]["nodeId"]  # of the page now shown
        node = browser.send("DOM.querySelector", {"nodeId": root, "selector": selector})
        fonts = browser.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
        return {font["postScriptName"]: font["glyphCount"] for font in fonts}

    thai = len("สมหญิงศรีสุข")
    # Whichever theme the operator picks (the admin's toggle sets data-theme).
    for theme in ("auto", "light", "dark"):
        page.evaluate(f"localStorage.setItem('theme', '{theme}')")
        page.reload()
        page.evaluate("document.fonts.ready.then(() => true)")
        assert page.evaluate("document.documentElement.dataset.theme") == theme
        heading = drawn_by("#content h2")
        assert heading.pop("Sarabun-SemiBold", None) == thai, theme
        assert heading and "Sarabun" not in str(heading)  # " (cus_th)" in a Latin font
        crumbs = drawn_by("div.breadcrumbs")
        assert crumbs.pop("Sarabun-Regular", None) == thai, theme
        assert crumbs and "Sarabun" not in str(crumbs)
