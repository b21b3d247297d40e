"""The OAuth callback: one global URL registered with Qonto for every workspace."""

from django.urls import path

from connectors.qonto import views

app_name = "qonto_oauth"

urlpatterns = [
    path("callback", views.callback, name="callback"),
]
