"""The register's public pages: languages, search, filters, bad input, CSV, queries, privacy."""

import csv
import datetime as dt
import io
import re
from urllib.parse import unquote

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from accounts.models import GovernmentBody, Organization
from proposals import services
from proposals.fiscal import current_fiscal_year
from proposals.models import (
    Participation,
    Proposal,
)
from proposals.selectors import adoption_statistics
from tests.factories import (
    DepartmentFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    ParticipationFactory,
    PrefectureFactory,
    SiteAdminFactory,
)

pytestmark = pytest.mark.django_db

# The seed's adoption tables (shared/data/adoption_stats_seed.csv), kept here so the test does
# not depend on a file outside the repository.
SEED_CSV = """\
fiscal_year,level,participating_municipalities,proposing_organizations,proposals,adopted,adoption_rate_percent
2006,prefecture,,14,185,79,43
2007,prefecture,,27,80,59,74
2008,prefecture,,48,74,52,70
2009,prefecture,,15,25,22,88
2010,prefecture,,14,21,18,86
2011,prefecture,,20,31,30,97
2012,prefecture,,27,78,78,100
2009,municipality,18,17,38,19,50
2010,municipality,18,8,11,4,36
2011,municipality,19,22,33,19,58
2012,municipality,17,16,20,6,30
"""
CSV_HEADER = (
    "fiscal_year,level,participating_municipalities,proposing_organizations,proposals,"
    "adopted,adoption_rate_percent"
)
OFFICER_EMAIL = "officer.secret@example.jp"
CONSULTATION_NOTES = "内部メモ：担当課長は予算化に消極的"


@pytest.fixture
def register():
    """A small register: two bodies, three operations, one proposal through every step."""
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(code="412015", name="佐賀市")
    kyodo = DepartmentFactory(body=prefecture, name="県民協働課")
    fukushi = DepartmentFactory(body=prefecture, name="長寿社会課")
    shimin = DepartmentFactory(body=city, name="市民活動推進課")
    childcare = OperationFactory(
        body=prefecture,
        department=kyodo,
        code="KY-001",
        title="子育て支援ネットワーク事業",
        summary="地域の子育て世帯を支える。",
        budget_yen=3_456_789,
        current_provider="県直営",
        collaboration_potential="NPOによる相談窓口の運営",
    )
    elderly = OperationFactory(
        body=prefecture,
        department=fukushi,
        code="FU-002",
        title="高齢者見守り活動支援",
        summary="一人暮らしの高齢者を見守る。",
        budget_yen=800_000,
    )
    library = OperationFactory(
        body=city,
        department=shimin,
        code="SH-003",
        title="図書館ボランティア育成",
        summary="読み聞かせボランティアを育てる。",
        fiscal_year=2025,
        budget_yen=None,
    )
    officer = SiteAdminFactory(email=OFFICER_EMAIL)
    npo = OrganizationFactory(name="NPO法人 子育てひろば", kind=Organization.Kind.CSO)
    proposal = services.proposal_create(
        reference="P-2026-001",
        received_on=dt.date(2026, 5, 10),
        body=prefecture,
        organization=npo,
        title="子育て相談窓口の協働運営",
        summary="土日の相談窓口をNPOが運営する。",
        operation=childcare,
        actor=officer,
    )
    services.proposal_transition(
        proposal=proposal,
        action="consult",
        actor=officer,
        held_on=dt.date(2026, 6, 3),
        notes=CONSULTATION_NOTES,
        note="履歴メモ：非公開",
    )
    services.proposal_transition(
        proposal=proposal,
        action="respond",
        actor=officer,
        decision=Proposal.Decision.ADOPTED,
        decided_on=dt.date(2026, 7, 1),
        reason="県民ニーズが高いため。",
        planned_implementation_year=2027,
        budget_provision=Proposal.BudgetProvision.NO,
    )
    services.proposal_transition(
        proposal=proposal,
        action="contract",
        actor=officer,
        kind="commission",
        signed_on=dt.date(2026, 8, 20),
        amount_yen=1_500_000,
    )
    new_project = services.proposal_create(
        reference="P-2026-002",
        received_on=dt.date(2026, 9, 1),
        body=city,
        organization=OrganizationFactory(name="佐賀大学", kind=Organization.Kind.UNIVERSITY),
        title="まちなか図書館の新設",
        actor=officer,
    )
    services.proposal_transition(
        proposal=new_project,
        action="respond",
        actor=officer,
        decision=Proposal.Decision.NOT_ADOPTED,
        decided_on=dt.date(2026, 10, 1),
    )
    ParticipationFactory(body=city, fiscal_year=2026)
    return {
        "prefecture": prefecture,
        "city": city,
        "kyodo": kyodo,
        "shimin": shimin,
        "childcare": childcare,
        "elderly": elderly,
        "library": library,
        "proposal": proposal,
        "new_project": new_project,
    }


def page_urls(register) -> list[str]:
    return [
        reverse("proposals:home"),
        reverse("proposals:operation-list"),
        reverse("proposals:operation-detail", args=[register["childcare"].pk]),
        reverse("proposals:proposal-list"),
        reverse("proposals:proposal-detail", args=[register["proposal"].pk]),
        reverse("proposals:adoption-stats"),
    ]


# Languages ----------------------------------------------------------------------------------


def test_every_page_is_japanese_by_default(client, register):
    for url in page_urls(register):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="ja">' in html, url
    # Fiscal years carry the era in Japanese.
    assert (
        "令和8年度（2026年度）" in client.get(reverse("proposals:operation-list")).content.decode()
    )


def test_every_page_renders_in_english_from_the_language_cookie(client, register):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    for url in page_urls(register):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="en">' in html, url
        assert "Operations catalogue" in html
    html = client.get(reverse("proposals:operation-list")).content.decode()
    assert "FY2026" in html
    assert "令和8年度" not in html


def test_japanese_first_even_for_an_english_browser(client, register):
    # The switcher decides, not the browser's Accept-Language (see JapaneseFirstLocaleMiddleware).
    response = client.get(reverse("proposals:proposal-list"), HTTP_ACCEPT_LANGUAGE="en-US,en")
    assert '<html lang="ja">' in response.content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(reverse("proposals:proposal-list"), HTTP_ACCEPT_LANGUAGE="ja")
    assert '<html lang="en">' in response.content.decode()


def test_language_switcher_sets_the_cookie_and_returns_to_the_page(client, register):
    page = reverse("proposals:operation-list") + "?q=子育て"
    response = client.post(reverse("set_language"), {"language": "en", "next": page})
    assert response.status_code == 302
    assert unquote(response["Location"]) == page
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert '<html lang="en">' in client.get(page).content.decode()


def test_base_links_every_section_and_the_api_docs(client, register):
    html = client.get(reverse("proposals:home")).content.decode()
    for name in ("proposals:operation-list", "proposals:proposal-list", "proposals:adoption-stats"):
        assert f'href="{reverse(name)}"' in html
    assert 'href="/api/docs/"' in html
    assert 'action="/i18n/setlang/"' in html
    assert "csrfmiddlewaretoken" in html


# Home ---------------------------------------------------------------------------------------


def test_home_shows_headline_figures_in_a_fixed_number_of_queries(
    client, register, django_assert_num_queries
):
    year = current_fiscal_year()
    OperationFactory.create_batch(3, fiscal_year=year)
    # Operations this year: one count; proposals and adopted: the statistics' two aggregates.
    with django_assert_num_queries(3):
        response = client.get(reverse("proposals:home"))
    figures = response.context
    assert figures["operations_this_year"] == 3 + sum(
        op.fiscal_year == year
        for op in (register["childcare"], register["elderly"], register["library"])
    )
    assert figures["proposals_total"] == 2
    assert figures["adopted_total"] == 1


# Catalogue ----------------------------------------------------------------------------------


def catalogue(client, **params):
    response = client.get(reverse("proposals:operation-list"), params)
    assert response.status_code == 200
    return response, [op.code for op in response.context["page_obj"]]


def test_japanese_keyword_search_finds_the_right_operations(client, register):
    _, codes = catalogue(client, q="子育て")
    assert codes == ["KY-001"]
    _, codes = catalogue(client, q="高齢者")
    assert codes == ["FU-002"]
    # Words separated by a space (full-width too) must all match.
    _, codes = catalogue(client, q="高齢者　見守り")
    assert codes == ["FU-002"]
    _, codes = catalogue(client, q="高齢者 図書館")
    assert codes == []
    # The summary and the department's name are searched as well.
    _, codes = catalogue(client, q="読み聞かせ")
    assert codes == ["SH-003"]
    _, codes = catalogue(client, q="市民活動推進課")
    assert codes == ["SH-003"]


def test_catalogue_filters_by_year_body_and_department(client, register):
    _, codes = catalogue(client, fiscal_year=2025)
    assert codes == ["SH-003"]
    _, codes = catalogue(client, body="410004")
    assert sorted(codes) == ["FU-002", "KY-001"]
    _, codes = catalogue(client, body="410004", department=register["kyodo"].pk)
    assert codes == ["KY-001"]
    _, codes = catalogue(client, body="410004", fiscal_year=2025)
    assert codes == []


def test_catalogue_offers_departments_only_once_a_body_is_chosen(client, register):
    response, _ = catalogue(client)
    assert 'name="department"' in response.content.decode()
    assert response.context["form"].fields["department"].widget.attrs.get("disabled")
    response, _ = catalogue(client, body="412015")
    choices = dict(response.context["form"].fields["department"].choices)
    assert list(choices.values())[1:] == ["市民活動推進課"]


def test_catalogue_shows_the_columns(client, register):
    html = catalogue(client, q="子育て")[0].content.decode()
    for text in ("KY-001", "子育て支援ネットワーク事業", "佐賀県", "県民協働課", "¥3,456,789"):
        assert text in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fiscal_year": "abc"}, "There is no fiscal year “abc” here"),
        ({"fiscal_year": "1850"}, "There is no fiscal year “1850” here"),
        ({"body": "999999"}, "No government body has the code “999999”"),
        ({"body": "<script>"}, "No government body has the code “&lt;script&gt;”"),
        ({"department": "5"}, "Choose a government body before a department"),
        ({"body": "410004", "department": "abc"}, "not one of the chosen body"),
        ({"q": "子" * 101}, "Keep the keywords under 100 characters"),
        # PostgreSQL refuses NUL in a string literal: the form must stop it before the query.
        ({"q": "子育て\x00"}, "Null characters are not allowed"),
    ],
)
def test_catalogue_reports_bad_filters_and_drops_them(client, register, params, message):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response, codes = catalogue(client, **params)
    assert message in response.content.decode()
    # Every other filter still applies; here there are none, or only a valid body.
    if params.get("body") == "410004":
        assert sorted(codes) == ["FU-002", "KY-001"]
    else:
        assert len(codes) == 3


def test_catalogue_keeps_valid_filters_beside_a_bad_one(client, register):
    response, codes = catalogue(client, q="子育て", fiscal_year="abc")
    assert codes == ["KY-001"]
    assert response.context["form"].filter_errors()


@pytest.fixture
def big_catalogue(register):
    OperationFactory.create_batch(
        117, body=register["prefecture"], department=register["kyodo"], title="防災訓練事業"
    )
    return register  # 120 operations: pages of 50, 50 and 20


@pytest.mark.parametrize(
    ("page", "number"), [("2", 2), ("999", 3), ("x", 1), ("0", 1), ("-4", 1), ("", 1)]
)
def test_catalogue_goes_to_the_nearest_page(client, big_catalogue, page, number):
    response, codes = catalogue(client, page=page)
    assert response.context["page_obj"].number == number
    assert len(codes) == (20 if number == 3 else 50)


def test_page_links_keep_the_filters_but_not_the_bad_values(client, big_catalogue):
    response, _ = catalogue(client, q="防災", body="410004", fiscal_year="abc")
    html = response.content.decode()
    assert "?q=%E9%98%B2%E7%81%BD&amp;body=410004&amp;page=2" in html
    page_links = re.findall(r'href="(\?[^"]*page=[^"]*)"', html)
    assert page_links
    assert not [link for link in page_links if "fiscal_year" in link]
    response, codes = catalogue(client, q="防災", body="410004", page=3)
    assert len(codes) == 17


@pytest.mark.parametrize("size", [5, 120])
def test_catalogue_query_count_does_not_grow_with_the_catalogue(
    client, django_assert_num_queries, size
):
    prefecture = PrefectureFactory()
    for index in range(size):
        # Spread over departments, bodies and years so select_related has work to do.
        body = prefecture if index % 2 else MunicipalityFactory()
        OperationFactory(
            body=body,
            department=DepartmentFactory(body=body),
            fiscal_year=2025 + index % 2,
        )
    url = reverse("proposals:operation-list")
    # Years for the dropdown, the bodies, the count, the page's rows.
    with django_assert_num_queries(4):
        response = client.get(url)
    assert response.status_code == 200
    assert len(response.context["page_obj"]) == min(size, 50)
    # With a body chosen: its departments as well.
    with django_assert_num_queries(5):
        response = client.get(url, {"body": "410004", "q": "子育て", "page": "2"})
    assert response.status_code == 200


def test_operation_detail_shows_self_inspection_and_its_proposals(client, register):
    childcare = register["childcare"]
    html = client.get(reverse("proposals:operation-detail", args=[childcare.pk])).content.decode()
    for text in (
        "KY-001",
        "¥3,456,789",
        "県直営",
        "NPOによる相談窓口の運営",
        "子育て相談窓口の協働運営",
    ):
        assert text in html
    assert register["proposal"].get_absolute_url() in html


def test_unknown_operation_is_a_404_page(client, register):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(reverse("proposals:operation-detail", args=[999_999]))
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


# Proposals ----------------------------------------------------------------------------------


def proposals(client, **params):
    response = client.get(reverse("proposals:proposal-list"), params)
    assert response.status_code == 200
    return response, [p.reference for p in response.context["page_obj"]]


def test_proposal_list_filters(client, register):
    assert sorted(proposals(client)[1]) == ["P-2026-001", "P-2026-002"]
    assert proposals(client, body="412015")[1] == ["P-2026-002"]
    assert proposals(client, decision="adopted")[1] == ["P-2026-001"]
    assert proposals(client, state="contracted")[1] == ["P-2026-001"]
    assert proposals(client, fiscal_year=2026, decision="not_adopted")[1] == ["P-2026-002"]


@pytest.mark.parametrize(
    "params",
    [
        {"fiscal_year": "abc"},
        {"body": "12"},
        {"decision": "maybe"},
        {"state": "<b>"},
        {"page": "999"},
        {"page": "x"},
    ],
)
def test_proposal_list_survives_bad_params(client, register, params):
    response, references = proposals(client, **params)
    assert len(references) == 2
    if "page" not in params:
        assert response.context["form"].filter_errors()


def test_proposal_list_query_count_is_fixed(client, register, django_assert_num_queries):
    for index in range(60):
        services.proposal_create(
            reference=f"B-{index}",
            received_on=dt.date(2026, 4, 1) + dt.timedelta(days=index),
            body=register["prefecture"],
            organization=OrganizationFactory(),
            title=f"提案{index}",
            actor=None,
            source="test",
        )
    # Years, bodies, count, rows.
    with django_assert_num_queries(4):
        response = client.get(reverse("proposals:proposal-list"), {"page": 2})
    assert len(response.context["page_obj"]) == 12


def test_proposal_detail_shows_the_public_record(client, register):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(register["proposal"].get_absolute_url())
    html = response.content.decode()
    for text in (
        "P-2026-001",
        "子育て相談窓口の協働運営",
        "NPO法人 子育てひろば",
        "CSO (NPO)",
        "KY-001",
        "Adopted",
        "県民ニーズが高いため。",
        "Not budgeted",
        "Commission",
        "¥1,500,000",
        "FY2027",
        "7. Contracted",
    ):
        assert text in html, text
    # The consultation's date, and a timeline dated by the steps, not by when they were typed.
    assert "June 3, 2026" in html
    assert [(str(step["label"]), step["date"]) for step in response.context["timeline"]] == [
        ("Proposal received", dt.date(2026, 5, 10)),
        ("Consultation held", dt.date(2026, 6, 3)),
        ("Response given", dt.date(2026, 7, 1)),
        ("Contract signed", dt.date(2026, 8, 20)),
    ]


def test_proposal_detail_never_shows_consultation_notes_or_who_acted(client, register):
    html = client.get(register["proposal"].get_absolute_url()).content.decode()
    assert CONSULTATION_NOTES not in html
    assert "履歴メモ" not in html
    assert OFFICER_EMAIL not in html
    assert "officer" not in html


def test_new_project_proposal_says_so(client, register):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(register["new_project"].get_absolute_url()).content.decode()
    assert "New project" in html
    assert "University" in html
    assert "Not adopted" in html


def test_unknown_proposal_is_a_404(client, register):
    assert client.get(reverse("proposals:proposal-detail", args=[999_999])).status_code == 404


def test_ids_beyond_the_database_integer_range_are_404_not_500(client, register):
    huge = 10**30
    assert client.get(reverse("proposals:operation-detail", args=[huge])).status_code == 404
    assert client.get(reverse("proposals:proposal-detail", args=[huge])).status_code == 404
    _, codes = catalogue(client, body="410004", department=str(huge), page=str(huge))
    assert sorted(codes) == ["FU-002", "KY-001"]


# Statistics ---------------------------------------------------------------------------------


def test_stats_page_counts_cso_proposals_by_default(client, register):
    response = client.get(reverse("proposals:adoption-stats"))
    assert response.status_code == 200
    assert [r.proposals for r in response.context["prefecture_rows"]] == [1]
    # The university's proposal to the city is not a CSO's; the city still took part.
    (municipal,) = response.context["municipal_rows"]
    assert (municipal.participating_municipalities, municipal.proposals) == (1, 0)
    html = response.content.decode()
    assert 'id="adoption-chart-data" type="application/json"' in html
    assert "js/adoption_chart.js" in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "<script>" not in html  # no inline script: a CSP can forbid them


def test_stats_page_proposer_kind_filter(client, register):
    response = client.get(reverse("proposals:adoption-stats"), {"proposer_kind": "all"})
    (municipal,) = response.context["municipal_rows"]
    assert (municipal.proposals, municipal.adopted, municipal.adoption_rate_percent) == (1, 0, 0)
    assert "proposer_kind=all" in response.content.decode()


def test_stats_page_with_a_bad_kind_shows_cso_and_says_so(client, register):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(reverse("proposals:adoption-stats"), {"proposer_kind": "robots"})
    assert response.status_code == 200
    assert response.context["proposer_kind"] == Organization.Kind.CSO
    assert "Unknown proposer kind “robots”" in response.content.decode()


def parse_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def expected_rows(**kwargs) -> list[dict]:
    return [
        {k: "" if v is None else str(v) for k, v in row.as_dict().items()}
        for row in adoption_statistics(**kwargs)
    ]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"proposer_kind": "all"},
        {"proposer_kind": "university"},
        {"level": "municipality"},
        {"level": "prefecture", "proposer_kind": "all"},
    ],
)
def test_csv_matches_adoption_statistics(client, register, params):
    response = client.get(reverse("proposals:adoption-stats-csv"), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.decode().splitlines()[0] == CSV_HEADER
    kwargs = {"level": params.get("level"), "proposer_kind": params.get("proposer_kind", "cso")}
    assert parse_csv(response) == expected_rows(**kwargs)


@pytest.mark.parametrize(
    "params",
    [{"level": "village"}, {"proposer_kind": "robots"}, {"level": "1", "proposer_kind": "x"}],
)
def test_csv_bad_params_are_a_plain_400(client, register, params):
    response = client.get(reverse("proposals:adoption-stats-csv"), params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    message = response.content.decode()
    for name in params:
        assert f"{name}: " in message
    assert "showing" not in message  # the page falls back to CSO; the download refuses


def _register_from_seed() -> None:
    """Records whose statistics are the seed's tables (bulk-created: ~600 proposals)."""
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(code="412015", name="佐賀市")
    organizations = Organization.objects.bulk_create(
        Organization(name=f"NPO{n}", kind=Organization.Kind.CSO) for n in range(48)
    )
    municipalities = GovernmentBody.objects.bulk_create(
        GovernmentBody(code=f"4190{n:02d}", name=f"町{n}", kind="municipality") for n in range(19)
    )
    proposals, participations = [], []
    for row in csv.DictReader(io.StringIO(SEED_CSV)):
        year, n_orgs = int(row["fiscal_year"]), int(row["proposing_organizations"])
        body = prefecture if row["level"] == "prefecture" else city
        for i in range(int(row["proposals"])):
            adopted = i < int(row["adopted"])
            proposals.append(
                Proposal(
                    reference=f"S-{year}-{row['level']}-{i}",
                    received_on=dt.date(year, 6, 1),
                    fiscal_year=year,  # bulk_create skips save(), which derives it
                    body=body,
                    organization=organizations[i % n_orgs],
                    title="提案",
                    state="responded",
                    decision="adopted" if adopted else "not_adopted",
                )
            )
        if row["participating_municipalities"]:
            participations += [
                Participation(fiscal_year=year, body=m)
                for m in municipalities[: int(row["participating_municipalities"])]
            ]
    Proposal.objects.bulk_create(proposals)
    Participation.objects.bulk_create(participations)


def test_csv_of_a_register_matching_the_seed_is_the_seed_file(client):
    _register_from_seed()
    response = client.get(reverse("proposals:adoption-stats-csv"))
    assert response.content.decode("utf-8") == SEED_CSV


def test_stats_tables_show_the_seed_figures(client):
    _register_from_seed()
    html = client.get(reverse("proposals:adoption-stats")).content.decode()
    for cell in ("79 (43%)", "59 (74%)", "78 (100%)", "19 (50%)", "6 (30%)"):
        assert cell in html
    assert "平成18年度（2006年度）" in html


# Error pages --------------------------------------------------------------------------------


def test_unknown_address_renders_the_404_template(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<html lang="ja">' in html
    assert "ページが見つかりません" in html  # Django's own catalogue already has this one


def test_500_template_needs_no_context():
    html = render_to_string("500.html")
    assert "<html" in html
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert b"<main" in response.content
