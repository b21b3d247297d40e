"""In the QuickBooks tests, `connected` is the sandbox company connected through OAuth."""

from __future__ import annotations

import pytest


@pytest.fixture
def owner(quickbooks_owner):
    return quickbooks_owner


@pytest.fixture
def workspace(quickbooks_workspace):
    return quickbooks_workspace


@pytest.fixture
def connected(quickbooks_connected):
    return quickbooks_connected
