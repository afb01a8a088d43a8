from __future__ import annotations

from django.test import Client


def test_customer_pages_bring_their_own_thai_font() -> None:
    # Sarabun is served by the app itself, so Thai never depends on the
    # fonts installed where the page is rendered (no tofu boxes).
    response = Client().get("/static/fonts/Sarabun-Regular.ttf")

    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x01\x00\x00"  # a TrueType font


def test_the_pay_page_asks_for_the_packaged_font(db: None) -> None:
    from django.template.loader import render_to_string

    page = render_to_string("web/not_found.html", {"language": "th"})

    assert "/static/fonts/Sarabun-Regular.ttf" in page
    assert 'font-family: "Sarabun"' in page
