"""Forms of the review pages: they parse and validate input; services decide."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from connectors.words import ENTITY_WORDS
from review.selectors.audit import AuditFilters
from review.selectors.queue import SORTS, QueueFilters
from well.fields import LocalDecimalField, ShareField
from well.models import Role

KIND_CHOICES = [("", _("All kinds"))]
KIND_CHOICES += [(kind, ENTITY_WORDS[kind]) for kind in ("Bill", "Purchase", "VendorCredit")]
SORT_CHOICES = [
    ("-confidence", _("Confidence, highest first")),
    ("confidence", _("Confidence, lowest first")),
    ("-amount", _("Amount, largest first")),
    ("amount", _("Amount, smallest first")),
    ("-date", _("Date, newest first")),
    ("date", _("Date, oldest first")),
    ("vendor", _("Vendor A to Z")),
    ("-vendor", _("Vendor Z to A")),
    ("newest", _("Proposed most recently")),
    ("oldest", _("Proposed longest ago")),
]
assert {value for value, _ in SORT_CHOICES} == set(SORTS)


class QueueFilterForm(forms.Form):
    q = forms.CharField(required=False, label=_("Search"))
    vendor = forms.CharField(required=False, label=_("Vendor"))
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label=_("Kind"))
    amount_min = LocalDecimalField(required=False, min_value=0, label=_("Amount from"))
    amount_max = LocalDecimalField(required=False, min_value=0, label=_("Amount to"))
    date_from = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    confidence_min = ShareField(required=False, label=_("Confidence from (%)"))
    confidence_max = ShareField(required=False, label=_("Confidence to (%)"))
    reason = forms.CharField(required=False, label=_("Reason"))
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label=_("Sort"))

    def filters(self) -> QueueFilters:
        """The filters asked for (invalid fields are ignored, and shown as errors)."""
        data = self.cleaned_data if self.is_valid() else {}
        return QueueFilters(
            vendor=data.get("vendor") or "",
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            kind=data.get("kind") or "",
            confidence_min=data.get("confidence_min"),
            confidence_max=data.get("confidence_max"),
            reason=data.get("reason") or "",
            search=data.get("q") or "",
            sort=data.get("sort") or "-confidence",
        )


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(), label=_("Note")
    )


class EditForm(forms.Form):
    """Mapped fields an accountant may correct before approving."""

    ledger_account = forms.ChoiceField(required=False, label=_("Ledger account"))
    invoice_number = forms.CharField(required=False, max_length=200, label=_("Invoice number"))
    due_date = forms.DateField(
        required=False,
        label=_("Due date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
    )
    note = forms.CharField(required=False, max_length=2000, label=_("Note"))

    def __init__(self, *args, accounts: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ledger_account"].choices = [("", _("— keep —")), *accounts]

    def edits(self) -> dict:
        """Only the fields the person posted and changed from their initial values (a button
        elsewhere on the page, posting none of them, changes nothing)."""
        data = self.cleaned_data
        return {
            name: data[name]
            for name in ("ledger_account", "invoice_number", "due_date")
            if name in self.data
            and name in self.changed_data
            and not (name == "ledger_account" and not data[name])
        }


class PinForm(forms.Form):
    entry = forms.CharField(label=_("Qonto entry (ID)"))
    note = forms.CharField(required=False, max_length=2000, label=_("Note"))


class OverrideForm(forms.Form):
    OUTCOMES = [
        ("reject", _("Reject: nothing should be posted")),
        ("link", _("Link to another Qonto entry")),
        ("create", _("Upload as a new supplier invoice")),
    ]
    outcome = forms.ChoiceField(choices=OUTCOMES, label=_("Outcome"))
    # Picked in the record page's Qonto entry list (review/selectors/qonto_entries.py), never
    # typed: the list shows what each entry is and which are already linked.
    entry = forms.CharField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(
        max_length=2000,
        label=_("Note"),
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": _("Say why you override this decision.")},
    )


class BulkApproveForm(forms.Form):
    records = forms.TypedMultipleChoiceField(coerce=int, choices=[], required=True)
    confirm = forms.BooleanField(required=False)
    note = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer; the selector keeps only this workspace's records still in review.
        values = self.data.getlist("records") if hasattr(self.data, "getlist") else []
        self.fields["records"].choices = [(v, v) for v in values if str(v).isdigit()]


class AuditFilterForm(forms.Form):
    verb = forms.CharField(required=False, label=_("What"))
    actor = forms.CharField(required=False, label=_("Who"))
    object_id = forms.CharField(required=False, label=_("Record ID"))
    date_from = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(required=False, label=_("Search"))

    def filters(self) -> AuditFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return AuditFilters(
            verb=data.get("verb") or "",
            actor=data.get("actor") or "",
            object_id=data.get("object_id") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            search=data.get("q") or "",
        )


class ThresholdForm(forms.Form):
    review_threshold = ShareField(label=_("Review from (%)"))
    auto_threshold = ShareField(label=_("Auto-post from (%)"))

    def clean(self):
        data = super().clean()
        review, auto = data.get("review_threshold"), data.get("auto_threshold")
        if review is not None and auto is not None and review > auto:
            raise forms.ValidationError(
                _("The review threshold cannot be above the auto-post threshold.")
            )
        return data


class WhatIfForm(forms.Form):
    threshold = ShareField(required=False, label=_("Try an auto-post threshold (%)"))


def _zones() -> list[tuple[str, str]]:
    return [(z, z.replace("_", " ")) for z in sorted(zoneinfo.available_timezones()) if "/" in z]


class WorkspaceLocaleForm(forms.Form):
    language = forms.ChoiceField(label=_("Workspace language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=_zones)


class MemberRoleForm(forms.Form):
    member = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Role.choices, label=_("Role"))


class VendorRuleForm(forms.Form):
    vendor = forms.ChoiceField(label=_("Vendor"))
    auto_threshold = ShareField(
        label=_("Auto-post from (%)"),
        required=False,
        help_text=_("Leave empty to keep the workspace's threshold."),
    )
    never_auto = forms.BooleanField(label=_("Never auto-post this vendor"), required=False)
    note = forms.CharField(label=_("Why"), required=False, max_length=500)

    def __init__(self, *args, vendors: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vendor"].choices = vendors
        self.vendor_names = dict(vendors)
