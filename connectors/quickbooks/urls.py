"""Workspace routes of the QuickBooks connection, under /w/<slug>/connections/quickbooks/."""

from django.urls import path

from connectors.quickbooks import views

# No namespace of its own: the names stay `connectors:quickbooks_*` as templates know them.
urlpatterns = [
    path("connect/", views.connect, name="quickbooks_connect"),
    path("disconnect/", views.disconnect, name="quickbooks_disconnect"),
    path("sync/", views.sync_now, name="quickbooks_sync"),
    path("reimport/", views.reimport, name="quickbooks_reimport"),
]
