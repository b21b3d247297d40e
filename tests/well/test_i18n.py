"""The language and the time zone of a page, the formats, and numbers as people type them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from well import formats
from well.fields import LocalDecimalField, ShareField
from well.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(make_user, make_workspace):
    user = make_user("owner@lang.example")
    workspace = make_workspace("Lang", owner=user, role=Role.OWNER)
    client = Client()
    client.force_login(user)
    return client, workspace


def _settings_page(client, workspace, **headers):
    return client.get(reverse("review:settings", args=[workspace.slug]), **headers)


def test_the_browser_language_is_used_when_the_person_chose_none(owner_client):
    client, workspace = owner_client
    page = _settings_page(client, workspace, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    html = page.content.decode()
    assert '<html lang="fr">' in html and "Réglages" in html
    assert page["Content-Language"] == "fr"


def test_the_workspace_language_is_used_when_neither_person_nor_browser_says(owner_client):
    client, workspace = owner_client
    workspace.language = "fr"
    workspace.save(update_fields=["language"])
    html = _settings_page(client, workspace).content.decode()
    assert '<html lang="fr">' in html and "Seuils" in html
    # A browser asking for a language Well does not have falls back to the workspace too.
    html = _settings_page(client, workspace, HTTP_ACCEPT_LANGUAGE="de-DE").content.decode()
    assert '<html lang="fr">' in html


def test_the_switcher_choice_wins_over_the_browser(owner_client):
    client, workspace = owner_client
    here = reverse("review:settings", args=[workspace.slug])
    answer = client.post(reverse("set_language"), {"language": "en", "next": here})
    assert answer.status_code == 302 and answer["Location"] == here
    html = _settings_page(client, workspace, HTTP_ACCEPT_LANGUAGE="fr-FR").content.decode()
    assert '<html lang="en">' in html and "Thresholds" in html


def test_times_are_shown_in_the_workspace_zone_with_its_name(owner_client):
    client, workspace = owner_client
    html = _settings_page(client, workspace).content.decode()
    assert "Europe/Paris" in html
    workspace.time_zone = "America/New_York"
    workspace.save(update_fields=["time_zone"])
    html = _settings_page(client, workspace).content.decode()
    assert "America/New_York" in html


def test_an_owner_sets_the_workspace_language_and_zone(owner_client):
    client, workspace = owner_client
    url = reverse("review:workspace_locale", args=[workspace.slug])
    answer = client.post(url, {"language": "fr", "time_zone": "Europe/Brussels"})
    assert answer.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.language, workspace.time_zone) == ("fr", "Europe/Brussels")
    assert client.post(url, {"language": "de", "time_zone": "Mars/Olympus"}).status_code == 400


def test_money_dates_and_percentages_in_each_language():
    with translation.override("fr"):
        assert formats.money(Decimal("1284"), "EUR") == "1\u202f284,00\xa0€"
        assert formats.day(dt.date(2026, 4, 22)) == "22 avr. 2026"
        assert formats.percent(0.85) == "85\xa0%"
    with translation.override("en"):
        assert formats.money(Decimal("1284"), "EUR") == "€1,284.00"
        assert formats.day(dt.date(2026, 4, 22)) == "Apr 22, 2026"
        assert formats.percent(0.85) == "85%"


def test_a_moment_carries_its_zone():
    from django.utils import timezone

    moment = dt.datetime(2026, 4, 22, 12, 35, tzinfo=dt.UTC)
    with translation.override("fr"), timezone.override("Europe/Paris"):
        assert formats.when(moment) == "22 avr. 2026, 14:35 CEST"


@pytest.mark.parametrize(
    ("typed", "value"),
    [("0,7", "0.7"), ("0.7", "0.7"), ("50,5", "50.5"), ("1 284,50", "1284.50")],
)
def test_a_decimal_comma_is_read_in_every_language(typed, value):
    for language in ("en", "fr"):
        with translation.override(language):
            assert LocalDecimalField().clean(typed) == Decimal(value)
    assert formats.decimal_parse("1,284.50") == Decimal("1284.50")
    assert formats.decimal_parse("1.284,50") == Decimal("1284.50")


@pytest.mark.parametrize(
    ("typed", "share"), [("0,7", 0.7), ("70", 0.7), ("85 %", 0.85), ("85,5", 0.855)]
)
def test_a_threshold_is_read_as_a_share_or_a_percentage(typed, share):
    assert ShareField().clean(typed) == pytest.approx(share)


def test_a_threshold_out_of_range_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        ShareField().clean("170")


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_a_formatted_number_reads_back_the_same(value):
    for language in ("en", "fr"):
        with translation.override(language):
            assert formats.decimal_parse(formats.number(value)) == value
