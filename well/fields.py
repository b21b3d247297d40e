"""Form fields that read numbers the way people type them, in French or English."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from well import formats


class _TextNumberInput(forms.TextInput):
    """A text box with the decimal keypad on phones: a type=number box would refuse "0,7"."""

    def __init__(self, attrs=None):
        super().__init__({"inputmode": "decimal", "autocomplete": "off", **(attrs or {})})


class LocalDecimalField(forms.DecimalField):
    """A decimal typed with a comma or a point ("50,5" and "50.5" are both 50.5)."""

    widget = _TextNumberInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return formats.decimal_parse(str(value))
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    def prepare_value(self, value):
        if isinstance(value, (Decimal, float, int)) and not isinstance(value, bool):
            return formats.number(value, digits=2).replace("\u202f", " ").replace("\xa0", " ")
        return value

    def widget_attrs(self, widget):
        return {}  # no min/max/step attributes: the box is text


class LocalFloatField(LocalDecimalField):
    def to_python(self, value):
        parsed = super().to_python(value)
        return None if parsed is None else float(parsed)

    def validate(self, value):
        forms.Field.validate(self, value)


class ShareField(forms.Field):
    """A threshold, shown and typed as a percentage ("85", "85 %"); a share ("0,85") is read
    too. Cleans to a float between 0 and 1."""

    widget = _TextNumberInput
    default_error_messages = {
        "invalid": _("Enter a percentage between 0 and 100, for example 85."),
        "range": _("Enter a percentage between 0 and 100."),
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            share = formats.share_parse(str(value))
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if not Decimal(0) <= share <= Decimal(1):
            raise forms.ValidationError(self.error_messages["range"], code="range")
        return float(share)

    def prepare_value(self, value):
        if isinstance(value, (float, int, Decimal)) and not isinstance(value, bool):
            percent = (Decimal(str(value)) * 100).quantize(Decimal("0.1")).normalize()
            text = format(percent, "f")
            return text.replace(".", ",") if formats.locale_name().startswith("fr") else text
        return value
