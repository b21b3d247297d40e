"""Error reports (admin mails, the technical 500) that never show a secret.

Django already hides settings and request headers named like secrets; a frame's local variables
are shown as they are unless each function is marked `sensitive_variables`. A provider call
holds its bearer token in a local `headers` dict, so locals are cleansed the same way: by name
(token, secret, key, auth...), inside dicts and lists, and any text that is an Authorization value.
"""

from __future__ import annotations

from django.views.debug import SafeExceptionReporterFilter

_CREDENTIAL_SCHEMES = ("bearer ", "basic ")


class SecretsHiddenReporterFilter(SafeExceptionReporterFilter):
    """SafeExceptionReporterFilter whose rules also apply to every frame's local variables."""

    def cleanse_setting(self, key, value):
        if isinstance(value, str) and value.lstrip().lower().startswith(_CREDENTIAL_SCHEMES):
            return self.cleansed_substitute
        return super().cleanse_setting(key, value)

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        if not self.is_active(request):
            return variables
        return [(name, self.cleanse_setting(name, value)) for name, value in variables]
