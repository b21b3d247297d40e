from django.contrib import admin
from django.urls import include, path

from well import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    # The language switcher at the foot of every page posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
    path("w/<slug:workspace_slug>/", include("review.urls")),
    path("w/<slug:workspace_slug>/connections/", include("connectors.urls")),
    path("", include("connectors.onboarding_urls")),  # onboarding/new/, w/<slug>/onboarding/
    path("w/<slug:workspace_slug>/settings/api-keys/", views.api_keys, name="api_keys"),
    path(
        "w/<slug:workspace_slug>/settings/api-keys/<int:api_key_id>/revoke/",
        views.api_key_revoke,
        name="api_key_revoke",
    ),
    path("oauth/quickbooks/", include("connectors.quickbooks.oauth_urls")),
    path("oauth/qonto/", include("connectors.qonto.oauth_urls")),
    # The partner API under /api/v1/, its schema and docs (api/urls.py).
    path("", include("api.urls")),
]

# A body too large or with too many fields gets a page that says so (and a 413 when too large).
handler400 = "well.request_limits.bad_request"
