"""The grants' pages, mounted at /grants/ under the ``grants`` namespace.

Staff pages (``staff_views``): the pipeline, grants, report reviews, bank-account confirmation,
transfer batches. CSO pages (``cso_views``): their grants, reports and bank account. The public
project timeline is ``cso_views.project_timeline`` too (one module for the non-staff pages).
"""

from django.urls import path

from . import cso_views, staff_views

app_name = "grants"
urlpatterns = [
    # Foundation staff.
    path("staff/", staff_views.pipeline, name="staff-pipeline"),
    path("staff/new/", staff_views.grant_create, name="grant-create"),
    path("staff/<int:pk>/", staff_views.grant_detail, name="staff-grant"),
    # action: approve or cancel (POST only).
    path("staff/<int:pk>/<slug:action>/", staff_views.grant_action, name="grant-action"),
    path("staff/reports/<int:pk>/", staff_views.report_review, name="staff-report"),
    path(
        "staff/tranches/<int:pk>/clawback/",
        staff_views.tranche_clawback,
        name="tranche-clawback",
    ),
    path("staff/bank-accounts/", staff_views.bank_accounts, name="staff-bank-accounts"),
    path(
        "staff/bank-accounts/new/",
        staff_views.bank_account_create,
        name="staff-bank-account-create",
    ),
    # action: confirm or reject (POST only).
    path(
        "staff/bank-accounts/<int:pk>/<slug:action>/",
        staff_views.bank_account_action,
        name="bank-account-action",
    ),
    path("staff/transfers/", staff_views.transfers, name="staff-transfers"),
    path("staff/transfers/<int:pk>/", staff_views.batch_detail, name="staff-batch"),
    path("staff/transfers/<int:pk>/file/", staff_views.batch_file, name="batch-file"),
    path("staff/transfers/<int:pk>/paid/", staff_views.batch_paid, name="batch-paid"),
    # action: paid or failed (POST only).
    path(
        "staff/transfers/lines/<int:pk>/<slug:action>/",
        staff_views.line_action,
        name="line-action",
    ),
    # The CSO's members (and staff, read-only).
    path("cso/", cso_views.my_grants, name="cso-grants"),
    path("cso/<int:pk>/", cso_views.grant_page, name="cso-grant"),
    path("cso/reports/<int:pk>/", cso_views.report_form, name="cso-report"),
    path("cso/bank-account/<int:org_pk>/", cso_views.bank_account, name="cso-bank-account"),
    path("attachments/<int:pk>/", cso_views.attachment, name="attachment"),
    # Public.
    path("projects/<int:pk>/timeline/", cso_views.project_timeline, name="project-timeline"),
]
