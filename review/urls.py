from django.urls import path

from review import views

app_name = "review"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("queue/", views.queue, name="queue"),
    path("queue/approve/", views.bulk_approve, name="bulk_approve"),
    path("refused/", views.refused, name="refused"),
    path("waiting/", views.waiting, name="waiting"),
    path("records/<int:record_id>/", views.record, name="record"),
    path("records/<int:record_id>/approve/", views.record_approve, name="approve"),
    path("records/<int:record_id>/reject/", views.record_reject, name="reject"),
    path("records/<int:record_id>/pin/", views.record_pin, name="pin"),
    path("records/<int:record_id>/new/", views.record_upload_as_new, name="upload_as_new"),
    path("records/<int:record_id>/override/", views.record_override, name="override"),
    path("records/<int:record_id>/retry/", views.record_postings_retry, name="retry"),
    path("records/<int:record_id>/audit.json", views.record_audit_pack_download, name="audit_pack"),
    path("records/<int:record_id>/files/<int:file_id>/", views.record_file, name="file"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("audit.xlsx", views.audit_xlsx, name="audit_xlsx"),
    path("settings/", views.settings, name="settings"),
    path("settings/thresholds/", views.thresholds_update, name="thresholds"),
    path("settings/members/", views.member_role, name="member_role"),
    path("settings/language/", views.workspace_locale, name="workspace_locale"),
    path("settings/vendor-rules/", views.vendor_rule_save, name="vendor_rule"),
]
