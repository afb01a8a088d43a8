from __future__ import annotations

from typing import Any

from django.test import Client

from dunning.core.rendering import default_template
from dunning.engine.models import MessageTemplate as TemplateVersion
from tests.api.conftest import error_of, fields_of

KEY = "send_invoice.overdue_1"


def body(key: str = KEY, locale: str = "en", **values: Any) -> dict[str, Any]:
    template = default_template(key, locale)
    data = {
        "key": key,
        "locale": locale,
        "subject": "Edited: " + template.subject,
        "html": template.html,
        "text": template.text,
    }
    data.update(values)
    return data


def test_a_post_saves_the_first_version_of_a_template(api: Any) -> None:
    response = api.post("/templates", body(notes="shorter intro"))

    assert response.status_code == 201, response.content
    saved = response.json()
    assert {k: saved[k] for k in ("key", "channel", "locale", "version", "is_active")} == {
        "key": KEY,
        "channel": "email",
        "locale": "en",
        "version": 1,
        "is_active": True,
    }
    assert saved["created_by"] == "api:tests" and saved["notes"] == "shorter intro"
    assert saved["created_at"].startswith("2026-03-16T03:00:00")


def test_each_post_adds_the_next_version(api: Any) -> None:
    api.post("/templates", body())
    response = api.post("/templates", body(subject="Two: " + default_template(KEY, "en").subject))

    assert response.json()["version"] == 2
    assert TemplateVersion.objects.count() == 2


def test_a_template_without_a_pay_link_is_a_422_naming_the_part(api: Any) -> None:
    html = default_template(KEY, "en").html.replace("{{ pay_link }}", "#")

    response = api.post("/templates", body(html=html))

    fields = fields_of(response)
    assert list(fields) == ["html"]
    assert fields["html"] == "no pay link: add {{ pay_link }}"
    assert not TemplateVersion.objects.exists()


def test_threatening_thai_wording_is_a_422(api: Any) -> None:
    text = default_template(KEY, "th").text + "\nมิฉะนั้นจะถูกดำเนินคดีอาญา\n"

    response = api.post("/templates", body(locale="th", text=text))

    assert "threatens criminal charges" in fields_of(response)["text"]


def test_a_malformed_key_and_channel_are_named(api: Any) -> None:
    response = api.post("/templates", {**body(), "key": "Overdue Reminder", "channel": "sms"})

    assert set(fields_of(response)) == {"key", "channel"}


def test_a_missing_part_is_a_422(api: Any) -> None:
    data = body()
    del data["html"]

    assert fields_of(api.post("/templates", data)) == {"html": "required"}


def test_it_lists_versions_newest_first_filtered_by_key_and_locale(api: Any) -> None:
    api.post("/templates", body())
    api.post("/templates", body())
    api.post("/templates", body(locale="th", subject=default_template(KEY, "th").subject))
    api.post("/templates", body(key="send_invoice.courtesy"))

    listed = api.get("/templates", key=KEY, locale="en").json()["results"]
    thai = api.get("/templates", locale="th").json()["results"]
    everything = api.get("/templates").json()["results"]

    assert [(t["key"], t["version"]) for t in listed] == [(KEY, 2), (KEY, 1)]
    assert [(t["key"], t["locale"]) for t in thai] == [(KEY, "th")]
    assert len(everything) == 4


def test_it_gets_a_version_by_id(api: Any) -> None:
    saved = api.post("/templates", body()).json()

    response = api.get(f"/templates/{saved['id']}")

    assert response.status_code == 200
    assert response.json() == saved
    error_of(api.get("/templates/999999"), 404)


def test_it_previews_a_version_with_sample_data(api: Any) -> None:
    saved = api.post("/templates", body(locale="th", subject=default_template(KEY, "th").subject))

    preview = api.get(f"/templates/{saved.json()['id']}/preview").json()

    assert "สมชาย ใจดี" in preview["html"] and "INV-2026-0042" in preview["text"]
    assert "฿1,234.50" in preview["text"]
    assert preview["subject"] and "\n" not in preview["subject"]
    assert "locale" in fields_of(
        api.get(f"/templates/{saved.json()['id']}/preview", locale="en-key")
    )


def test_resolved_shows_what_a_customer_gets_now(api: Any) -> None:
    before = api.get("/templates/resolved", key=KEY, locale="th-TH").json()
    api.post(
        "/templates", body(locale="th", subject="แก้ไข: " + default_template(KEY, "th").subject)
    )
    after = api.get("/templates/resolved", key=KEY, locale="th-TH").json()

    assert (before["locale"], before["version"]) == ("th", "default")
    assert before["html"] == default_template(KEY, "th").html
    assert (after["locale"], after["version"]) == ("th", "db:v1")
    assert after["subject"].startswith("แก้ไข: ")
    error_of(api.get("/templates/resolved", key="no.such_template", locale="en"), 404)


def test_templates_need_an_api_key(db: None) -> None:
    error_of(Client().get("/api/v1/templates"), 401)
