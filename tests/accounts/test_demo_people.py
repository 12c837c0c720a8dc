import pytest
from django.contrib.auth import authenticate

from accounts.demo import DEMO_PASSWORD, load_people_demo
from accounts.policy import requires_mfa, roles_of
from tests.factories import MunicipalityFactory, OrganizationFactory, PrefectureFactory

pytestmark = pytest.mark.django_db


def test_demo_people_cover_every_role_and_can_sign_in():
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(code="412015", name="佐賀市")
    cso = OrganizationFactory()
    assert load_people_demo(cso=cso, prefecture_code="410004", city_code="412015") == {
        "demo_accounts": 9
    }
    assert load_people_demo(cso=cso, prefecture_code="410004", city_code="412015") == {
        "demo_accounts": 0
    }

    def who(email):
        user = authenticate(email=email, password=DEMO_PASSWORD)
        assert user is not None, email
        return roles_of(user), user

    roles, user = who("admin@civicfund.example.jp")
    assert roles.site_admin and requires_mfa(user)
    assert who("officer@pref.saga.example.jp")[0].body_id == prefecture.pk
    assert who("officer@city.saga.example.jp")[0].body_id == city.pk
    assert who("approver@civicfund.example.jp")[0].foundation == {"approver"}
    assert who("cso-admin@npo.example.jp")[0].admin_of(cso.pk)
    roles, user = who("citizen@example.jp")
    assert not requires_mfa(user) and not roles.memberships
