"""Forms of the organisation pages. They validate what a person typed; the membership services
in ``accounts.services`` decide (policy, last admin, already a member …) and their refusals come
back onto the form through ``add_service_error``.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import Membership, Organization


def add_service_error(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form: on its field where the form has one,
    otherwise as an error of the whole form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class SiteForm(forms.Form):
    """A form whose labels end without a colon (「団体名:」 reads badly in Japanese)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class OrganizationRegisterForm(SiteForm):
    name = forms.CharField(
        label=_("Organisation name"),
        max_length=200,
        help_text=_("The official name, e.g. NPO法人 さが子育てネット."),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Organization.Kind.choices, initial=Organization.Kind.CSO
    )


class InvitationForm(SiteForm):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    role = forms.ChoiceField(
        label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.MEMBER
    )


class MembershipRoleForm(SiteForm):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
