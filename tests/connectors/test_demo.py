from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from connectors.demo import demo_settings_apply

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

_PROVIDER_SETTINGS = [
    name
    for name in dir(django_settings)
    if name.startswith(("QUICKBOOKS_", "QONTO_")) or name in {"SITE_URL"}
] + ["WELL_ALLOW_LOOPBACK_DOWNLOADS"]


@pytest.fixture
def provider_settings_restored():
    """The demo repoints the provider settings; put them back for the other tests."""
    saved = {name: getattr(django_settings, name) for name in _PROVIDER_SETTINGS}
    yield
    for name, value in saved.items():
        setattr(django_settings, name, value)


@pytest.fixture
def demo_run(settings, tmp_path, capsys, provider_settings_restored):
    settings.DATA_DIR = tmp_path

    def run() -> dict:
        call_command("demo", once=True, port=0, quickbooks_port=0, qonto_port=0, bills=40)
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    return run


def test_the_demo_connects_syncs_and_posts_and_a_second_run_posts_nothing_new(demo_run):
    first = demo_run()
    second = demo_run()

    assert first["pulled"] > 40
    assert first["posted"] > 0 and first["failed"] == 0
    assert first["qonto_duplicates"] == 0
    assert second["qonto_supplier_invoices"] == first["qonto_supplier_invoices"]
    assert second["posted"] == first["posted"] and second["qonto_duplicates"] == 0


def test_demo_settings_point_every_provider_url_at_the_sandboxes(provider_settings_restored):
    from connectors.demo import DemoUrls

    demo_settings_apply(DemoUrls(site="http://s", quickbooks="http://q", qonto="http://o"))

    for name in _PROVIDER_SETTINGS:
        value = getattr(django_settings, name)
        if name.endswith("_URL") and name != "QONTO_APP_URL":
            assert value.startswith(("http://q", "http://o", "http://s")), name
