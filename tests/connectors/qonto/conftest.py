"""In the Qonto tests, `connected` is the Qonto organization connected through OAuth."""

from __future__ import annotations

from decimal import Decimal

import pytest


@pytest.fixture
def connected(qonto_connected):
    return qonto_connected


@pytest.fixture
def bill(make_record):
    return make_record("Bill", total_amount=Decimal("240.00"), invoice_number="AL-2026-17")
