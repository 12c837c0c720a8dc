"""A visitor's journeys through the register's public pages, in a real browser.

Screenshots of every page go to test-artifacts/screenshots/ for a person to look at.
"""

import datetime as dt
import re

import pytest

from accounts.models import Organization
from proposals import services
from proposals.models import Proposal
from tests.factories import (
    DepartmentFactory,
    MunicipalityFactory,
    OperationFactory,
    OrganizationFactory,
    ParticipationFactory,
    PrefectureFactory,
)

pytestmark = pytest.mark.browser

CSV_HEADER = (
    "fiscal_year,level,participating_municipalities,proposing_organizations,proposals,"
    "adopted,adoption_rate_percent"
)


@pytest.fixture
def register(transactional_db):
    """70 childcare operations at the prefecture (two pages), 10 at a city, proposals over
    three years at both levels."""
    prefecture = PrefectureFactory()
    city = MunicipalityFactory(code="412015", name="佐賀市")
    kyodo = DepartmentFactory(body=prefecture, name="県民協働課")
    kodomo = DepartmentFactory(body=prefecture, name="こども未来課")
    for n in range(70):
        OperationFactory(
            body=prefecture,
            department=kodomo if n % 2 else kyodo,
            code=f"KY-{n:03d}",
            title=f"子育て支援事業 第{n}号",
            budget_yen=1_000_000 + n * 12_345,
        )
    for n in range(10):
        OperationFactory(body=city, code=f"SG-{n:03d}", title=f"子育てサロン運営{n}")
    for n in range(5):
        OperationFactory(
            body=prefecture, code=f"BO-{n:03d}", title=f"防災訓練事業{n}", summary="避難訓練。"
        )

    operation = OperationFactory(
        body=prefecture,
        department=kyodo,
        code="KY-900",
        title="協働提案の窓口運営",
        summary="提案を受け付ける窓口。",
        current_provider="県直営",
        collaboration_potential="NPOと共同で運営できる。",
    )
    decisions = [Proposal.Decision.ADOPTED, Proposal.Decision.NOT_ADOPTED]
    reference = 0
    for year, body, count in [
        (2024, prefecture, 6),
        (2025, prefecture, 8),
        (2026, prefecture, 5),
        (2025, city, 4),
        (2026, city, 3),
    ]:
        for n in range(count):
            reference += 1
            proposal = services.proposal_create(
                reference=f"P-{reference:04d}",
                received_on=dt.date(year, 5, 1) + dt.timedelta(days=n),
                body=body,
                organization=OrganizationFactory(kind=Organization.Kind.CSO),
                title=f"協働提案 {year}-{n}",
                operation=operation if body == prefecture else None,
                actor=None,
                source="test",
            )
            services.proposal_transition(
                proposal=proposal,
                action="respond",
                actor=None,
                source="test",
                decision=decisions[n % 3 == 2],
                decided_on=dt.date(year, 9, 1),
            )
    for year in (2025, 2026):
        ParticipationFactory(body=city, fiscal_year=year)
    return {"operation": operation}


def rows(page) -> int:
    return page.locator("table.data-table tbody tr").count()


def test_catalogue_search_filter_and_paging(page, live_server, register, screenshot):
    page.goto(f"{live_server.url}/operations/")
    assert page.locator("html").get_attribute("lang") == "ja"
    screenshot(page, "catalogue-ja")

    page.fill("#id_q", "子育て")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=%E5%AD%90%E8%82%B2%E3%81%A6"))
    assert page.locator(".result-count").inner_text().startswith("80")
    assert rows(page) == 50

    # Choosing a body disables the old departments until the search reloads them.
    page.select_option("#id_body", "410004")
    assert page.locator("#id_department").is_disabled()
    assert page.locator("[data-department-hint]").is_visible()
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"body=410004"))
    assert page.locator(".result-count").inner_text().startswith("70")
    assert page.locator("#id_department").is_enabled()
    assert page.locator("#id_q").input_value() == "子育て"
    screenshot(page, "catalogue-search-body")

    page.click(".pagination a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    assert "body=410004" in page.url and "q=" in page.url
    assert rows(page) == 20
    assert page.locator(".pagination [aria-current=page]").inner_text().endswith("2")

    page.select_option("#id_department", label="こども未来課")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"department=\d+"))
    assert page.locator(".result-count").inner_text().startswith("35")
    screenshot(page, "catalogue-department")

    page.click("table.data-table tbody a >> nth=0")
    page.wait_for_url(re.compile(r"/operations/\d+/$"))
    assert page.locator("h1").inner_text().startswith("子育て支援事業")
    screenshot(page, "operation-detail")

    # An operation with proposals links to them.
    page.goto(f"{live_server.url}/operations/{register['operation'].pk}/")
    assert page.locator("table.data-table tbody tr").count() == 19
    screenshot(page, "operation-detail-with-proposals")


def test_bad_filters_show_a_message_not_an_error(page, live_server, register, screenshot):
    response = page.goto(f"{live_server.url}/operations/?fiscal_year=abc&body=999999&page=x")
    assert response.status == 200
    assert page.locator(".notice").count() == 1
    assert "999999" in page.locator(".notice").inner_text()
    assert rows(page) == 50
    screenshot(page, "catalogue-bad-filters")


def test_statistics_chart_is_drawn_and_csv_downloads(page, live_server, register, screenshot):
    page.goto(f"{live_server.url}/stats/adoption/")
    for canvas_id in ("chart-prefecture", "chart-municipality"):
        page.wait_for_function(
            "id => window.Chart && Chart.getChart(document.getElementById(id)) !== undefined",
            arg=canvas_id,
        )
        drawn = page.evaluate(
            """id => {
                const canvas = document.getElementById(id);
                const chart = Chart.getChart(canvas);
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                return {
                    width: canvas.clientWidth,
                    height: canvas.clientHeight,
                    datasets: chart.data.datasets.map(d => d.type),
                    years: chart.data.labels.length,
                    painted: painted,
                };
            }""",
            canvas_id,
        )
        assert drawn["width"] > 0 and drawn["height"] > 0
        assert drawn["datasets"] == ["bar", "bar", "line"]
        assert drawn["painted"] > 1000
    assert drawn["years"] == 2  # the municipalities: FY2025 and FY2026
    page.wait_for_timeout(600)  # let the entry animation finish before the picture
    screenshot(page, "adoption-stats-ja")

    with page.expect_download() as download_info:
        page.click("#adoption-csv")
    download = download_info.value
    assert download.suggested_filename == "adoption-statistics.csv"
    with open(download.path(), encoding="utf-8") as csv_file:
        lines = csv_file.read().splitlines()
    assert lines[0] == CSV_HEADER
    assert lines[1:] == [
        "2024,prefecture,,6,6,4,67",
        "2025,prefecture,,8,8,6,75",
        "2026,prefecture,,5,5,4,80",
        "2025,municipality,1,4,4,3,75",
        "2026,municipality,1,3,3,2,67",
    ]


def test_switch_language_to_english_and_back(page, live_server, register, screenshot):
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "ja"
    screenshot(page, "home-ja")

    page.click("form.lang-switch button[value=en]")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.url == f"{live_server.url}/"
    assert page.locator(".brand__name").inner_text() == "Civic Fund"
    screenshot(page, "home-en")

    page.goto(f"{live_server.url}/stats/adoption/")
    assert page.locator("table.stats-table tbody th >> nth=0").inner_text() == "FY2024"
    page.wait_for_function("Chart.getChart(document.getElementById('chart-prefecture'))")
    page.wait_for_timeout(600)
    screenshot(page, "adoption-stats-en")

    page.goto(f"{live_server.url}/proposals/")
    screenshot(page, "proposals-en")
    page.click("table.data-table tbody a >> nth=0")
    page.wait_for_url(re.compile(r"/proposals/\d+/$"))
    screenshot(page, "proposal-detail-en")

    page.click("form.lang-switch button[value=ja]")
    page.wait_for_function("document.documentElement.lang === 'ja'")
    assert re.search(r"/proposals/\d+/$", page.url)
    assert "年度" in page.locator(".meta").inner_text()
    screenshot(page, "proposal-detail-ja")


def test_pages_fit_a_phone(chromium, live_server, register, screenshot):
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, locale="ja-JP", is_mobile=True
    )
    phone = context.new_page()
    try:
        for path, name in [
            ("/", "home-phone"),
            ("/operations/?q=子育て", "catalogue-phone"),
            ("/stats/adoption/", "adoption-stats-phone"),
        ]:
            phone.goto(f"{live_server.url}{path}")
            # Nothing but the tables' own scroll boxes may be wider than the screen.
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, path
            phone.wait_for_timeout(600)
            screenshot(phone, name)
    finally:
        context.close()


def test_not_found_page(chromium, live_server, transactional_db, screenshot):
    # Its own context: the page fixture fails on console errors, and a 404 logs one.
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    try:
        missing = context.new_page()
        response = missing.goto(f"{live_server.url}/operations/999999/")
        assert response.status == 404
        assert missing.locator("html").get_attribute("lang") == "ja"
        assert missing.locator("nav.site-nav a").count() == 5
        screenshot(missing, "not-found")
    finally:
        context.close()
