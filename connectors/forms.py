"""Forms of the connection pages."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReimportForm(forms.Form):
    """Re-import QuickBooks from a date (the sync marker moves back) or everything."""

    SINCE = "since"
    EVERYTHING = "everything"

    scope = forms.ChoiceField(
        choices=[(SINCE, _("Changes since a date")), (EVERYTHING, _("Everything"))],
        label=_("What to re-import"),
        initial=SINCE,
        widget=forms.RadioSelect,
    )
    since = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("From")
    )

    def clean(self):
        data = super().clean()
        if data.get("scope") == self.SINCE:
            since = data.get("since")
            if since is None:
                self.add_error("since", _("Choose the date to re-import from."))
            elif since > timezone.localdate():
                self.add_error("since", _("The date is in the future."))
        return data
