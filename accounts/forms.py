"""Forms of a person's own account pages (allauth provides the sign-in and settings forms)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import User


class CloseAccountForm(forms.Form):
    """Closing cannot be undone, so the person confirms it with their password."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("The password is not correct."), code="password")
        return password
