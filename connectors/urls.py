from django.urls import include, path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("runs/", views.sync_runs, name="runs"),
    path("quickbooks/", include("connectors.quickbooks.urls")),
    path("qonto/", include("connectors.qonto.urls")),
]
