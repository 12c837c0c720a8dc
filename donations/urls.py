"""The gift pages, mounted at the site's root under the ``donations`` namespace.

Public: open projects and each project's page (progress, donor wall, give), the give form, the
demo checkout page, the return (thank-you) page, a donor's gifts and receipts. The foundation's
and organisations' money pages are in ``staff_views``; Stripe's webhook in ``webhooks``.
"""

from django.urls import path

from . import staff_views, views, webhooks

app_name = "donations"
urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    path("projects/<int:pk>/", views.project_detail, name="project-detail"),
    path("projects/<int:pk>/give/", views.give, name="give"),
    path("give/", views.give_general, name="give-general"),
    path("donations/<uuid:pk>/", views.donation_detail, name="donation"),
    path("donations/<uuid:pk>/thanks/", views.thanks, name="thanks"),
    path("donations/<uuid:pk>/cancel/", views.cancel_monthly, name="cancel-monthly"),
    path("checkout/demo/<str:session_id>/", views.demo_checkout, name="demo-checkout"),
    path("me/gifts/", views.my_gifts, name="my-gifts"),
    path("me/receipts/<int:year>/", views.annual_receipt, name="annual-receipt"),
    path("receipts/<int:pk>/pdf/", views.receipt_pdf, name="receipt-pdf"),
    # Organisations (CSO members) and foundation staff.
    path("cso/money/", staff_views.cso_money, name="cso-money"),
    path("cso/money/<int:project_pk>/", staff_views.cso_project_money, name="cso-project-money"),
    path("staff/gifts/", staff_views.staff_gifts, name="staff-gifts"),
    path("staff/gifts/<int:pk>/", staff_views.staff_gift, name="staff-gift"),
    path("staff/reconciliation/", staff_views.staff_reconciliation, name="staff-reconciliation"),
    # Stripe's webhook: signed, CSRF-exempt.
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe-webhook"),
]
