"""The packaged HTML layouts: every default extends one, and the sandbox serves nothing else."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources

import pytest

from dunning.core.rendering import (
    DEFAULT_TEMPLATE_KEYS,
    MessageTemplate,
    RenderError,
    UnknownTemplate,
    default_template,
    render,
)
from dunning.core.template_lint import _sample

LOCALES = ("en", "th")
GREETING = {"en": '<p style="margin:0 0 16px;">Dear {name},</p>', "th": "เรียน {name}</p>"}
NOTICE = {"en": "For your security:", "th": "เพื่อความปลอดภัยของท่าน:"}
SIGN_OFF = {"en": "Kind regards,<br>", "th": "ขอแสดงความนับถือ<br>"}
CASES = [(key, locale) for key in DEFAULT_TEMPLATE_KEYS for locale in LOCALES]


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_every_default_html_extends_the_layout_of_its_language(key: str, locale: str) -> None:
    source = default_template(key, locale).html

    assert source.startswith(f'{{% extends "{locale}/_layout.html" %}}\n{{% block content %}}\n')
    assert "<!DOCTYPE" not in source and SIGN_OFF[locale] not in source


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_a_default_renders_as_one_whole_page_in_its_language(key: str, locale: str) -> None:
    template = default_template(key, locale)
    context = _sample(locale, final=key.endswith(".final"))
    name = context.customer.addressee  # the name itself in English, with คุณ in Thai

    html = render(template, context).html
    without_opt_out = render(template, replace(context, unsubscribe_link=None)).html

    assert html.startswith(f'<!DOCTYPE html>\n<html lang="{locale}">\n<head>\n')
    assert html.endswith("</div>\n</body>\n</html>\n")
    assert html.count("<!DOCTYPE") == 1 and html.count("<body") == 1
    assert html.count(GREETING[locale].format(name=name)) == 1
    assert html.count(NOTICE[locale]) == 1
    assert html.count(SIGN_OFF[locale]) == 1
    assert html.index(GREETING[locale].format(name=name)) < html.index("LINT-INV-0001")
    assert html.index("LINT-INV-0001") < html.index(NOTICE[locale]) < html.index(SIGN_OFF[locale])
    assert context.unsubscribe_link in html and "unsubscribe" not in without_opt_out.lower()
    assert "\n\n" not in html  # block tags leave no blank lines behind


def test_the_layouts_themselves_are_not_message_templates() -> None:
    folder = resources.files("dunning").joinpath("templates", "messages")
    assert all(folder.joinpath(locale, "_layout.html").is_file() for locale in LOCALES)

    with pytest.raises(UnknownTemplate):
        default_template("_layout", "en")


def page(html: str, text: str = "{{ customer.name }}") -> MessageTemplate:
    return MessageTemplate(key="test", locale="en", subject="Subject", text=text, html=html)


def test_a_template_can_reword_a_block_of_the_layout() -> None:
    html = (
        '{% extends "th/_layout.html" %}{% block content %}<p>{{ pay_link }}</p>{% endblock %}'
        "{% block contact %}<p>โทร {{ company.support_phone }}</p>{% endblock %}"
    )

    rendered = render(page(html), _sample("th", final=False)).html

    assert '<html lang="th">' in rendered and "โทร +1 555 0100 4477" in rendered
    assert "help-k4p@example.org" not in rendered  # the default contact block was replaced
    assert NOTICE["th"] in rendered


@pytest.mark.parametrize(
    "name",
    [
        "en/send_invoice.overdue_1.html",  # a message, not a layout
        "en/_layout.txt",
        "../rendering.py",
        "/etc/passwd",
        "en/../../../settings.py",
        "xx/_layout.html",
    ],
)
def test_the_sandbox_serves_nothing_but_the_packaged_layouts(name: str) -> None:
    for tag in ("extends", "include", "import"):
        source = f'{{% {tag} "{name}"' + (" as x %}" if tag == "import" else " %}")
        with pytest.raises(RenderError) as refused:
            render(page(source), _sample("en", final=False))
        assert refused.value.kind == "syntax" and "packaged layout" in str(refused.value)


def test_the_text_part_has_no_html_layout_to_extend() -> None:
    with pytest.raises(RenderError) as refused:
        render(page("<p>x</p>", text='{% extends "en/_layout.html" %}'), _sample("en", final=False))

    assert refused.value.part == "text"


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_a_link_written_out_in_full_wraps_on_a_phone(key: str, locale: str) -> None:
    # A pay link is ~90 characters with no space: unwrapped, it widens the page.
    context = _sample(locale, final=key.endswith(".final"))
    html = render(default_template(key, locale), context).html

    written_out = re.findall(r'<a href="(https?://[^"]+)"([^>]*)>\1</a>', html)
    assert written_out, "the message writes its links out for copying"
    for url, attributes in written_out:
        assert 'style="word-break:break-all;"' in attributes, url
