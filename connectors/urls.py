from django.urls import include, path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("runs/", views.sync_runs, name="runs"),
    path("quickbooks/connect/", views.quickbooks_connect, name="quickbooks_connect"),
    path("quickbooks/disconnect/", views.quickbooks_disconnect, name="quickbooks_disconnect"),
    path("quickbooks/sync/", views.quickbooks_sync_now, name="quickbooks_sync"),
    path("quickbooks/reimport/", views.quickbooks_reimport, name="quickbooks_reimport"),
    path("qonto/", include("connectors.qonto.urls")),
]
