"""The seeded world: deterministic, realistic, consistent between QuickBooks and Qonto."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from stdnum import iban
from stdnum.fr import tva

from sandbox.documents import render_pdf
from sandbox.faults import Faults
from sandbox.qbo_query import parse_qbo_datetime
from sandbox.world import build_world

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world():
    return build_world(seed=1, bills=200, now=NOW)


def test_same_seed_same_world_and_another_seed_differs(world):
    again = build_world(seed=1, bills=200, now=NOW)
    assert json.dumps(again.quickbooks, sort_keys=True) == json.dumps(
        world.quickbooks, sort_keys=True
    )
    assert again.qonto == world.qonto and again.truth == world.truth
    other = build_world(seed=2, bills=200, now=NOW)
    assert other.quickbooks["realm_id"] != world.quickbooks["realm_id"]


def test_bill_count_follows_the_bills_argument(world):
    assert len(world.quickbooks["entities"]["Bill"]) == 200
    assert len(build_world(seed=1, bills=15, now=NOW).quickbooks["entities"]["Bill"]) == 15


def test_every_entity_kind_is_present(world):
    entities = world.quickbooks["entities"]
    for name in (
        "Vendor",
        "Customer",
        "Bill",
        "VendorCredit",
        "CreditMemo",
        "Invoice",
        "Payment",
        "BillPayment",
        "PurchaseOrder",
        "Purchase",
        "Account",
        "TaxCode",
        "TaxRate",
        "Attachable",
        "CompanyInfo",
        "Preferences",
    ):
        assert entities.get(name), name


def test_ids_are_unique_across_entities(world):
    ids = [
        r["Id"]
        for name, rs in world.quickbooks["entities"].items()
        for r in rs
        if name != "Preferences"
    ]
    assert len(ids) == len(set(ids))


def test_french_vat_numbers_are_valid_and_masked_in_qbo(world):
    vendors = {v["Id"]: v for v in world.quickbooks["entities"]["Vendor"]}
    french = [t for t in world.vendor_truth.values() if t["vat_number"].startswith("FR")]
    assert len(french) > 10
    assert all(tva.is_valid(t["vat_number"]) for t in french)
    for vendor_id, truth in world.vendor_truth.items():
        assert vendors[vendor_id]["TaxIdentifier"][-4:] == truth["vat_number"][-4:]
        assert truth["vat_number"] not in json.dumps(world.quickbooks["entities"])


def test_vendor_names_have_legal_forms_and_some_pay_in_foreign_currencies(world):
    names = {v["CompanyName"] for v in world.quickbooks["entities"]["Vendor"]}
    assert {"Algolia SAS", "OVH SAS", "Figma, Inc.", "Boulangerie Martin SARL"} <= names
    currencies = Counter(b["CurrencyRef"]["value"] for b in world.quickbooks["entities"]["Bill"])
    assert {"EUR", "USD", "GBP"} <= set(currencies)


def test_subscriptions_repeat_with_identical_amounts(world):
    algolia = next(
        v["Id"] for v in world.quickbooks["entities"]["Vendor"] if v["CompanyName"] == "Algolia SAS"
    )
    amounts = {
        b["TotalAmt"]
        for b in world.quickbooks["entities"]["Bill"]
        if b["VendorRef"]["value"] == algolia
    }
    assert len(amounts) == 1


def test_bill_totals_add_up(world):
    for bill in world.quickbooks["entities"]["Bill"]:
        net = sum(line["Amount"] for line in bill["Line"])
        assert round(net + bill["TxnTaxDetail"]["TotalTax"], 2) == bill["TotalAmt"]


def test_bank_accounts_match_qonto_ibans(world):
    banks = [a for a in world.quickbooks["entities"]["Account"] if a["AccountType"] == "Bank"]
    qonto_accounts = world.qonto["organization"]["bank_accounts"]
    assert len(banks) == len(qonto_accounts) == 2
    for bank, account in zip(banks, qonto_accounts, strict=True):
        assert iban.is_valid(account["iban"])
        assert bank["AcctNum"] == account["account_number"]
        assert account["iban"] in bank["Description"]


def test_truth_links_bills_to_qonto_transactions_and_invoices(world):
    transactions = {t["id"]: t for t in world.qonto["transactions"]}
    invoices = {i["id"]: i for i in world.qonto["supplier_invoices"]}
    bills = {b["Id"]: b for b in world.quickbooks["entities"]["Bill"]}
    bill_truth = [t for t in world.truth if t["qbo_entity"] == "Bill"]
    assert len(bill_truth) == 200
    share = sum(1 for t in bill_truth if t["qonto_supplier_invoice_id"]) / len(bill_truth)
    assert 0.2 < share < 0.4
    for truth in bill_truth:
        bill = bills[truth["qbo_id"]]
        for tx_id in truth["qonto_transaction_ids"]:
            tx = transactions[tx_id]
            assert tx["side"] == "debit" and tx["amount_cents"] > 0
            if bill["CurrencyRef"]["value"] == "EUR":
                assert tx["amount_cents"] == round(bill["TotalAmt"] * 100)
            else:
                assert tx["local_currency"] == bill["CurrencyRef"]["value"]
                assert tx["local_amount_cents"] == round(bill["TotalAmt"] * 100)
        if truth["qonto_supplier_invoice_id"]:
            invoice = invoices[truth["qonto_supplier_invoice_id"]]
            assert invoice["source_type"] == "email"
            assert invoice["total_amount"]["value"] == f"{bill['TotalAmt']:.2f}"
    labels = {t["label"] for t in world.qonto["transactions"]}
    assert {"PRLV SEPA ALGOLIA", "CB FIGMA", "PAYPAL *NOTION"} <= labels


def test_purchases_and_customer_payments_are_in_the_truth(world):
    kinds = Counter(t["qbo_entity"] for t in world.truth)
    assert kinds["Purchase"] == len(world.quickbooks["entities"]["Purchase"])
    assert kinds["Payment"] == len(world.quickbooks["entities"]["Payment"])
    credits = [t for t in world.qonto["transactions"] if t["side"] == "credit"]
    assert len(credits) == kinds["Payment"]


def test_recent_changes_fall_inside_the_cdc_window_and_nothing_is_in_the_future(world):
    stamps = [
        parse_qbo_datetime(r["MetaData"]["LastUpdatedTime"])
        for rs in world.quickbooks["entities"].values()
        for r in rs
    ]
    assert max(stamps) <= NOW
    assert any(stamp > NOW - timedelta(days=30) for stamp in stamps)


def test_attachment_specs_render_to_extractable_pdfs(world):
    attachable = world.quickbooks["entities"]["Attachable"][0]
    spec = world.quickbooks["documents"][attachable["Id"]]
    text = PdfReader(io.BytesIO(render_pdf(spec))).pages[0].extract_text()
    assert text.splitlines()[0] == spec["vendor_name"]
    for label in ("Invoice date:", "Total:", "VAT number:"):
        assert label in text


def test_ten_thousand_bills_generate_quickly():
    started = time.monotonic()
    big = build_world(seed=3, bills=10_000, now=NOW)
    assert len(big.quickbooks["entities"]["Bill"]) == 10_000
    assert time.monotonic() - started < 30


def test_faults_are_seeded_and_the_queue_comes_first():
    one, two = Faults(rate_5xx=0.5, seed=4), Faults(rate_5xx=0.5, seed=4)
    assert [one.decide() for _ in range(20)] == [two.decide() for _ in range(20)]
    queued = Faults(queue=["429", "partial_bulk", "timeout"])
    assert queued.decide() == "429"
    assert queued.decide() == "timeout"  # partial_bulk only applies to bulk requests
    assert Faults(queue=["partial_bulk"]).decide(bulk=True) == "partial_bulk"
    with pytest.raises(ValueError):
        Faults().update({"rate_429": 2})


def test_faults_count_what_they_injected_until_reset():
    from sandbox.faults import Faults

    faults = Faults(queue=["429", "5xx", "partial_bulk"])
    drawn = [faults.decide(), faults.decide(), faults.decide(bulk=True), faults.decide()]

    assert drawn == ["429", "5xx", "partial_bulk", None]
    assert faults.as_dict()["injected"] == {"429": 1, "5xx": 1, "partial_bulk": 1}
    with pytest.raises(ValueError):
        faults.update({"injected": {"429": 5}})
    faults.update({"injected": {}})
    assert faults.as_dict()["injected"] == {}


def test_expiring_access_tokens_makes_the_next_call_refresh():
    from sandbox.qbo_oauth import OAuthState

    clock = {"now": 1_000_000.0}
    oauth = OAuthState(now=lambda: clock["now"])
    code = oauth.issue_code(
        client_id="c", redirect_uri="http://127.0.0.1/cb", scope="accounting", realm_id="1"
    )
    token = oauth.exchange_code(client_id="c", code=code, redirect_uri="http://127.0.0.1/cb")
    assert oauth.check_access(token["access_token"])[0] == "ok"

    assert oauth.expire_access() == 1

    assert oauth.check_access(token["access_token"])[0] == "expired"
    refreshed = oauth.refresh(client_id="c", refresh_token=token["refresh_token"])
    assert oauth.check_access(refreshed["access_token"])[0] == "ok"
    assert refreshed["refresh_token"] != token["refresh_token"]  # rotated
