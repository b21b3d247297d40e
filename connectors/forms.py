"""Forms of the connection pages."""

from __future__ import annotations

from django import forms
from django.utils import timezone


class ReimportForm(forms.Form):
    """Re-import QuickBooks from a date (the sync marker moves back) or everything."""

    SINCE = "since"
    EVERYTHING = "everything"

    scope = forms.ChoiceField(
        choices=[(SINCE, "Changes since a date"), (EVERYTHING, "Everything")],
        initial=SINCE,
        widget=forms.RadioSelect,
    )
    since = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )

    def clean(self):
        data = super().clean()
        if data.get("scope") == self.SINCE:
            since = data.get("since")
            if since is None:
                self.add_error("since", "Choose the date to re-import from.")
            elif since > timezone.localdate():
                self.add_error("since", "The date is in the future.")
        return data
