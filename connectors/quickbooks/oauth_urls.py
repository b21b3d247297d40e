"""The OAuth callback: one global URL registered with Intuit for every workspace."""

from django.urls import path

from connectors.quickbooks import views

app_name = "quickbooks_oauth"

urlpatterns = [
    path("callback", views.callback, name="callback"),
]
