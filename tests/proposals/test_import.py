"""The register import: every encoding and format staff hand over, all-or-nothing, idempotent."""

import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from accounts.models import GovernmentBody, Organization
from proposals.importing import ImportErrors, import_register
from proposals.models import (
    Department,
    Operation,
    Participation,
    Proposal,
    ProposalEvent,
)
from proposals.services import proposal_transition
from tests.factories import OperationFactory, OrganizationFactory, ProposalFactory

pytestmark = pytest.mark.django_db

# Tables read best one spreadsheet row to a line.
# fmt: off
OPERATIONS = [
    [
        "fiscal_year",
        "body_code",
        "body_name",
        "body_kind",
        "department",
        "operation_code",
        "title",
        "budget_yen",
        "summary",
    ],
    ["2026", "410004", "佐賀県", "prefecture", "県民協働課", "OP-001", "子育て支援事業", "1200000", "地域の子育て世帯を支援する。"],  # noqa: E501
    ["2025", "410004", "佐賀県", "prefecture", "県民協働課", "OP-001", "子育て支援事業（旧）", "1000000", ""],  # noqa: E501
    ["2026", "412015", "唐津市", "municipality", "市民協働課", "K-01", "海岸清掃", "", "海岸の清掃"],  # noqa: E501
]
PROPOSALS = [
    [
        "reference",
        "received_on",
        "body_code",
        "body_name",
        "body_kind",
        "operation_code",
        "organization_name",
        "organization_kind",
        "title",
        "decision",
        "decided_on",
        "budget_provision",
    ],
    ["P-2026-001", "2026-06-01", "410004", "佐賀県", "prefecture", "OP-001", "NPO法人 さが子育てネット", "cso", "子育てサロンの運営", "adopted", "2026-08-20", "no"],  # noqa: E501
    ["P-2026-002", "2026-07-10", "412015", "唐津市", "municipality", "", "唐津大学", "university", "新しい海岸清掃の提案", "", "", ""],  # noqa: E501
    ["P-2026-003", "2026-05-01", "410004", "佐賀県", "prefecture", "", "株式会社さが", "company", "観光アプリ", "not_adopted", "2026-09-01", "pending"],  # noqa: E501
]
PARTICIPATION = [
    ["fiscal_year", "body_code", "body_name"],
    ["2026", "412015", "唐津市"],
    ["2026", "412023", "伊万里市"],
]
# fmt: on
TABLES = {"operations": OPERATIONS, "proposals": PROPOSALS, "participation": PARTICIPATION}


@pytest.fixture(autouse=True)
def _english():
    # Messages are asserted in English; the Japanese catalogue may translate them later.
    with translation.override("en"):
        yield


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def encode(rows: list[list], fmt: str) -> bytes:
    return xlsx_bytes(rows) if fmt == "xlsx" else csv_bytes(rows, fmt)


def import_tables(fmt: str = "utf-8", **tables: list[list]):
    return import_register(
        **{kind: encode(rows, fmt) for kind, rows in tables.items()}, actor=None, source="import"
    )


def import_all(fmt: str = "utf-8"):
    return import_tables(fmt, **TABLES)


def replace(table: list[list], row: int, column: str, value) -> list[list]:
    """A copy of a table with one cell changed; ``row`` is the spreadsheet row (header = 1)."""
    copy = [list(r) for r in table]
    copy[row - 1][table[0].index(column)] = value
    return copy


def register_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            GovernmentBody,
            Department,
            Operation,
            Participation,
            Organization,
            Proposal,
            ProposalEvent,
        )
    }


def problems_of(exc_info) -> list[str]:
    return exc_info.value.messages


def assert_register_imported():
    assert register_counts() == {
        "GovernmentBody": 3,
        "Department": 2,
        "Operation": 3,
        "Participation": 2,
        "Organization": 3,
        "Proposal": 3,
        # receive + respond + budget; receive; receive + respond (budget stays pending)
        "ProposalEvent": 6,
    }
    saga = GovernmentBody.objects.get(code="410004")
    assert (saga.name, saga.kind) == ("佐賀県", "prefecture")
    assert GovernmentBody.objects.get(code="412023").kind == "municipality"
    operation = Operation.objects.get(fiscal_year=2026, body=saga, code="OP-001")
    assert operation.budget_yen == 1_200_000
    assert operation.department.name == "県民協働課"
    assert Operation.objects.get(code="K-01").budget_yen is None

    adopted = Proposal.objects.get(reference="P-2026-001")
    assert adopted.operation == operation  # the operation of the proposal's own fiscal year
    assert adopted.state == Proposal.State.RESPONDED
    assert adopted.decision == "adopted"
    assert adopted.decided_on == dt.date(2026, 8, 20)
    assert adopted.budget_provision == "no"
    assert adopted.organization.kind == "cso"
    assert [e.source for e in adopted.events.all()] == ["import"] * 3
    assert [e.actor for e in adopted.events.all()] == [None] * 3

    pending = Proposal.objects.get(reference="P-2026-002")
    assert (pending.state, pending.decision, pending.budget_provision) == (
        "received",
        "",
        "pending",
    )
    assert pending.operation is None
    assert pending.organization.kind == "university"


@pytest.mark.parametrize("fmt", ["utf-8", "utf-8-sig", "cp932", "xlsx"])
def test_every_encoding_and_format_imports_the_same_rows(fmt):
    summary = import_all(fmt)

    assert_register_imported()
    assert summary.counts["operations"] == {"created": 3}
    assert summary.counts["participation"] == {"created": 2}
    assert summary.counts["proposals"] == {"created": 3}


def test_cp932_input_really_is_shift_jis():
    data = csv_bytes(PROPOSALS, "cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_xlsx_is_recognised_by_content_not_by_name(tmp_path):
    path = tmp_path / "operations.csv"  # a workbook saved under the wrong name
    path.write_bytes(xlsx_bytes(OPERATIONS))

    call_command("import_register", operations=str(path), stdout=io.StringIO())

    assert Operation.objects.count() == 3


def test_columns_in_another_order_with_extras_and_padded_headers():
    order = [11, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9, 10]
    shuffled = [[row[i] for i in order] + ["ignored"] for row in PROPOSALS]
    shuffled[0] = [f"  {name} " for name in shuffled[0][:-1]] + ["memo"]

    import_tables(operations=OPERATIONS, proposals=shuffled, participation=PARTICIPATION)

    assert_register_imported()


def test_importing_the_same_files_again_changes_nothing():
    import_all()
    before = register_counts()
    updated_at = dict(Proposal.objects.values_list("reference", "updated_at"))

    summary = import_all()

    assert register_counts() == before
    assert dict(Proposal.objects.values_list("reference", "updated_at")) == updated_at
    assert summary.counts["operations"] == {"unchanged": 3}
    assert summary.counts["participation"] == {"unchanged": 2}
    assert summary.counts["proposals"] == {"unchanged": 3}


def test_a_changed_decision_on_reimport_is_one_history_row():
    import_all()
    events = ProposalEvent.objects.count()
    changed = replace(PROPOSALS, 3, "decision", "partially_adopted")
    changed = replace(changed, 3, "decided_on", "2026-10-01")

    summary = import_tables(proposals=changed)

    proposal = Proposal.objects.get(reference="P-2026-002")
    assert (proposal.state, proposal.decision) == ("responded", "partially_adopted")
    assert proposal.decided_on == dt.date(2026, 10, 1)
    assert ProposalEvent.objects.count() == events + 1
    event = proposal.events.last()
    assert (event.action, event.source, event.actor) == ("respond", "import", None)
    assert summary.counts["proposals"] == {"updated": 1, "unchanged": 2}


def test_changed_particulars_and_budget_go_through_the_services():
    import_all()
    changed = replace(PROPOSALS, 2, "title", "子育てサロンの運営（改訂）")
    changed = replace(changed, 2, "budget_provision", "yes")
    operations = replace(OPERATIONS, 2, "budget_yen", "1500000")

    summary = import_tables(operations=operations, proposals=changed)

    proposal = Proposal.objects.get(reference="P-2026-001")
    assert proposal.title == "子育てサロンの運営（改訂）"
    assert proposal.budget_provision == "yes"
    assert [e.action for e in proposal.events.all()][-2:] == ["edit", "budget_provision"]
    assert Operation.objects.get(fiscal_year=2026, code="OP-001").budget_yen == 1_500_000
    assert summary.counts["operations"] == {"updated": 1, "unchanged": 2}
    assert summary.counts["proposals"] == {"updated": 1, "unchanged": 2}


def test_withdrawal_is_imported_and_stays_put():
    withdrawn = replace(PROPOSALS, 3, "decision", "withdrawn")
    import_tables(operations=OPERATIONS, proposals=withdrawn)
    events = ProposalEvent.objects.count()

    import_tables(operations=OPERATIONS, proposals=withdrawn)

    proposal = Proposal.objects.get(reference="P-2026-002")
    assert (proposal.state, proposal.decision) == ("withdrawn", "withdrawn")
    assert ProposalEvent.objects.count() == events


def test_proposal_takes_the_operation_of_its_year_or_else_the_latest_before():
    earlier = replace(PROPOSALS, 2, "received_on", "2025-12-01")
    later = replace(earlier, 4, "operation_code", "OP-001")
    later = replace(later, 4, "received_on", "2027-05-01")
    later = replace(later, 4, "decided_on", "2027-06-01")

    import_tables(operations=OPERATIONS, proposals=later)

    assert Proposal.objects.get(reference="P-2026-001").operation.fiscal_year == 2025
    assert Proposal.objects.get(reference="P-2026-003").operation.fiscal_year == 2026


def test_a_proposal_may_name_an_operation_already_registered():
    OperationFactory(fiscal_year=2026, code="OP-001")  # body 410004 佐賀県, a prefecture

    import_tables(proposals=PROPOSALS[:2])

    proposal = Proposal.objects.get(reference="P-2026-001")
    assert proposal.operation.code == "OP-001"
    assert GovernmentBody.objects.count() == 1


def test_excel_cells_and_spreadsheet_habits_are_accepted():
    # fmt: off
    operations = [
        OPERATIONS[0],
        [2026, 410004, "佐賀県", "Prefecture", "県民協働課", "OP-001", "子育て支援事業", 1200000.0, None],  # noqa: E501
        [2025.0, "410004", "佐賀県", "県", "県民協働課", "OP-001", "旧", "¥1,000,000", None],
        ["２０２６", "412015", "唐津市", "市町", None, 101, "海岸清掃", "1,200", None],
    ]
    proposals = [
        PROPOSALS[0],
        ["P-1", dt.datetime(2026, 6, 1), 410004, "佐賀県", "prefecture", "OP-001", "さがNPO", "CSO (NPO)", "提案1", "採択", dt.date(2026, 8, 20), "Not budgeted"],  # noqa: E501
        ["P-2", "2026/07/10", "412015", "唐津市", "municipality", 101.0, "唐津大学", "大学", "提案2", "Partially adopted", "2026-09-01", "Budgeted"],  # noqa: E501
    ]
    # fmt: on

    import_tables("xlsx", operations=operations, proposals=proposals)

    assert Operation.objects.get(fiscal_year=2025).budget_yen == 1_000_000
    assert Operation.objects.get(body__code="412015").code == "101"
    assert Operation.objects.get(body__code="412015").budget_yen == 1_200
    first, second = Proposal.objects.order_by("reference")
    assert (first.decision, first.budget_provision) == ("adopted", "no")
    assert first.received_on == dt.date(2026, 6, 1)
    assert first.organization.kind == "cso"
    assert (second.decision, second.budget_provision) == ("partially_adopted", "yes")
    assert second.operation.code == "101"


def test_yen_sign_of_a_shift_jis_file_reads_as_a_backslash_and_is_accepted():
    # Shift_JIS has no separate ¥: Windows shows byte 0x5C (ASCII backslash) as the yen sign.
    data = csv_bytes(replace(OPERATIONS, 2, "budget_yen", "\\1,200,000"), "cp932")
    assert b"\\1,200,000" in data

    import_register(operations=data)

    assert Operation.objects.get(fiscal_year=2026, code="OP-001").budget_yen == 1_200_000


def drop_column(table: list[list], column: str) -> list[list]:
    index = table[0].index(column)
    return [row[:index] + row[index + 1 :] for row in table]


BAD_ROWS = [
    pytest.param(
        "proposals",
        replace(PROPOSALS, 3, "body_code", "41201"),
        "proposals row 3: body_code: “41201” is not a six-digit local government code",
        id="bad-code",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 2, "received_on", "2026-02-30"),
        "proposals row 2: received_on: “2026-02-30” is not a valid date",
        id="bad-date",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 4, "decision", "maybe"),
        "proposals row 4: decision: “maybe” is not one of: adopted, partially_adopted",
        id="unknown-decision",
    ),
    pytest.param(
        "operations",
        replace(OPERATIONS, 3, "budget_yen", "1000000.5"),
        "operations row 3: budget_yen: “1000000.5” is not whole yen (no fractions)",
        id="fractional-yen",
    ),
    pytest.param(
        "operations",
        replace(OPERATIONS, 4, "budget_yen", "-5"),
        "operations row 4: budget_yen: “-5” is negative",
        id="negative-yen",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 2, "operation_code", "NOPE"),
        "proposals row 2: operation_code: body 410004 has no operation “NOPE” in FY2026",
        id="unknown-operation",
    ),
    pytest.param(
        "proposals",
        drop_column(PROPOSALS, "title"),
        "proposals row 1: Missing column: title",
        id="missing-column",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 4, "reference", "P-2026-001"),
        "proposals row 4: same reference as row 2",
        id="duplicate-reference",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 2, "decided_on", "2026-05-31"),
        "proposals row 2: decided_on: 2026-05-31 is before the proposal was received",
        id="decided-before-received",
    ),
    pytest.param(
        "operations",
        replace(OPERATIONS, 4, "fiscal_year", "20x6"),
        "operations row 4: fiscal_year: “20x6” is not a fiscal year",
        id="bad-fiscal-year",
    ),
    pytest.param(
        "operations",
        replace(OPERATIONS, 3, "fiscal_year", "1950"),
        "operations row 3: fiscal_year: fiscal year 1950 is outside 1989–",
        id="implausible-fiscal-year",
    ),
    pytest.param(
        "operations",
        replace(OPERATIONS, 2, "title", ""),
        "operations row 2: title: required, but empty",
        id="required-field",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 3, "body_name", "唐津町"),
        "proposals row 3: body code 412015 is named “唐津市” in operations row 4",
        id="two-names-for-a-body",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 3, "body_kind", "prefecture"),
        "proposals row 3: body code 412015 is a Municipality in operations row 4",
        id="two-kinds-for-a-body",
    ),
    pytest.param(
        "participation",
        [*PARTICIPATION, ["2026", "410004", "佐賀県"]],
        "participation row 4: participation is for municipalities; 410004 is a prefecture",
        id="prefecture-participation",
    ),
    pytest.param(
        "participation",
        [*PARTICIPATION, ["2026", "412023", "伊万里市"]],
        "participation row 4: same fiscal_year and body_code as row 3",
        id="duplicate-participation",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 2, "budget_provision", "maybe"),
        "proposals row 2: budget_provision: “maybe” is not one of: yes, no, pending",
        id="unknown-budget-provision",
    ),
    pytest.param(
        "proposals",
        replace(PROPOSALS, 3, "decided_on", "2026-08-01"),
        "proposals row 3: decided_on: a decision date needs a decision",
        id="date-without-decision",
    ),
]


@pytest.mark.parametrize(("kind", "table", "expected"), BAD_ROWS)
def test_one_bad_row_among_good_ones_writes_nothing(kind, table, expected):
    tables = {**TABLES, kind: table}

    with pytest.raises(ImportErrors) as exc_info:
        import_tables(**tables)

    messages = problems_of(exc_info)
    assert any(message.startswith(expected) for message in messages), messages
    assert len(messages) == 1, messages
    assert set(register_counts().values()) == {0}


def test_every_bad_row_of_every_file_is_reported_at_once():
    operations = replace(OPERATIONS, 3, "budget_yen", "1.5")
    proposals = replace(PROPOSALS, 2, "received_on", "yesterday")
    proposals = replace(proposals, 4, "decision", "maybe")
    participation = replace(PARTICIPATION, 2, "body_code", "1")

    with pytest.raises(ImportErrors) as exc_info:
        import_tables(operations=operations, proposals=proposals, participation=participation)

    rows = [(p.file, p.row) for p in exc_info.value.problems]
    assert rows == [("operations", 3), ("participation", 2), ("proposals", 2), ("proposals", 4)]


def test_a_body_registered_under_another_name_is_refused():
    GovernmentBody.objects.create(code="412015", name="唐津町", kind="municipality")

    with pytest.raises(ImportErrors) as exc_info:
        import_tables(operations=OPERATIONS)

    assert problems_of(exc_info) == [
        "operations row 4: body code 412015 is registered as “唐津町”, not “唐津市”"
    ]


def test_an_organisation_registered_as_another_kind_is_refused():
    OrganizationFactory(name="唐津大学", kind=Organization.Kind.CSO)

    with pytest.raises(ImportErrors) as exc_info:
        import_all()

    assert problems_of(exc_info) == [
        "proposals row 3: organisation “唐津大学” is registered as CSO (NPO), not University"
    ]
    assert Proposal.objects.count() == 0


def test_a_decision_the_transition_table_cannot_reach_is_a_row_error():
    import_all()
    proposal = Proposal.objects.get(reference="P-2026-001")
    proposal_transition(
        proposal=proposal,
        action="contract",
        kind="commission",
        signed_on=dt.date(2026, 10, 1),
        actor=None,
        source="test",
    )
    before = register_counts()
    changed = replace(PROPOSALS, 2, "decision", "not_adopted")
    changed = replace(changed, 3, "title", "この変更も書かれない")

    with pytest.raises(ImportErrors) as exc_info:
        import_tables(proposals=changed)

    assert problems_of(exc_info) == [
        "proposals row 2: decision: the proposal is “7. Contracted” in the register, so its "
        "recorded decision (“Adopted”) can no longer be changed"
    ]
    assert register_counts() == before
    assert Proposal.objects.get(reference="P-2026-002").title == "新しい海岸清掃の提案"


def test_a_blank_decision_cannot_undo_a_recorded_one():
    import_all()

    with pytest.raises(ImportErrors) as exc_info:
        import_tables(proposals=replace(PROPOSALS, 2, "decision", ""))

    assert problems_of(exc_info)[0].startswith("proposals row 2: decided_on: a decision date")
    with pytest.raises(ImportErrors) as exc_info:
        import_tables(proposals=replace(replace(PROPOSALS, 2, "decision", ""), 2, "decided_on", ""))
    assert problems_of(exc_info) == [
        "proposals row 2: decision: the register already records “Adopted”; a blank cannot undo it"
    ]


def test_an_existing_proposal_is_matched_by_reference():
    ProposalFactory(reference="P-2026-002", title="古い題名", received_on=dt.date(2026, 7, 10))

    import_tables(operations=OPERATIONS, proposals=PROPOSALS)

    proposal = Proposal.objects.get(reference="P-2026-002")
    assert proposal.title == "新しい海岸清掃の提案"
    assert proposal.body.code == "412015"
    assert proposal.events.last().action == "edit"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "proposals: The file is empty."),
        ("題名".encode("utf-16"), "proposals: The file is neither UTF-8 nor Shift_JIS"),
        (b"PK\x03\x04broken", "proposals: The file is not a readable Excel workbook."),
        (b"\xd0\xcf\x11\xe0" + b"\0" * 8, "proposals: Old Excel .xls files cannot be read"),
    ],
)
def test_unreadable_files_are_reported(data, expected):
    with pytest.raises(ImportErrors) as exc_info:
        import_register(proposals=data)

    assert problems_of(exc_info)[0].startswith(expected)


def test_nothing_to_import_is_an_error():
    with pytest.raises(ImportErrors):
        import_register()


def test_summary_lines_are_readable():
    summary = import_all()

    assert summary.lines() == [
        "Operations: 3 created, 0 updated, 0 unchanged.",
        "Participation: 2 created, 0 updated, 0 unchanged.",
        "Proposals: 3 created, 0 updated, 0 unchanged.",
        "Also created: 3 government bodies, 2 departments, 3 organisations.",
    ]


def test_command_prints_the_summary(tmp_path):
    paths = {}
    for kind, rows in TABLES.items():
        paths[kind] = tmp_path / f"{kind}.csv"
        paths[kind].write_bytes(csv_bytes(rows, "cp932"))
    out = io.StringIO()

    call_command(
        "import_register", *[f"--{kind}={path}" for kind, path in paths.items()], stdout=out
    )

    assert "Proposals: 3 created, 0 updated, 0 unchanged." in out.getvalue()
    assert_register_imported()


def test_command_fails_with_every_problem_and_writes_nothing(tmp_path):
    path = tmp_path / "proposals.csv"
    path.write_bytes(csv_bytes(replace(PROPOSALS, 3, "received_on", "2026-13-01")))

    with pytest.raises(CommandError) as exc_info:
        call_command("import_register", proposals=str(path), stdout=io.StringIO())

    assert "proposals row 3: received_on: “2026-13-01” is not a valid date" in str(exc_info.value)
    assert Proposal.objects.count() == 0


def test_command_needs_a_file(tmp_path):
    with pytest.raises(CommandError):
        call_command("import_register", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("import_register", operations=str(tmp_path / "missing.csv"))
