from django.contrib import admin
from django.urls import include, path

from well import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("w/<slug:workspace_slug>/", include("review.urls")),
    path("w/<slug:workspace_slug>/connections/", include("connectors.urls")),
    path("oauth/quickbooks/", include("connectors.quickbooks.urls")),
    path("oauth/qonto/", include("connectors.qonto.oauth_urls")),
]
