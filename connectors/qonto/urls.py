"""Workspace routes of the Qonto connection, under /w/<slug>/connections/qonto/."""

from django.urls import path

from connectors.qonto import views

app_name = "qonto"

urlpatterns = [
    path("", views.panel, name="panel"),
    path("connect/", views.connect, name="connect"),
    path("disconnect/", views.disconnect, name="disconnect"),
    path("sync/", views.sync_now, name="sync"),
]
