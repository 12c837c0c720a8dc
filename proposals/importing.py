"""Import the collaboration-testing register from the spreadsheets government staff keep.

Prefectural and municipal offices keep their operations catalogue, the proposals they received
and the list of participating municipalities in Excel, and hand them over as .xlsx or as CSV in
whatever encoding their PC wrote (UTF-8, with or without BOM, or Shift_JIS). This module reads
them as they come, checks *every* row of *every* file before writing anything — a half-imported
register is worse than none, because the adoption statistics would then be silently wrong — and
writes in one transaction through the proposal services, so an import leaves the same dated
history as a change made by hand.

Rows are matched on natural keys and only what differs is written, so importing the same files
again changes nothing.
"""

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import openpyxl
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import GovernmentBody, Organization, User

from .fiscal import current_fiscal_year, fiscal_year_of
from .models import (
    Department,
    Operation,
    Participation,
    Proposal,
)
from .services import (
    allowed_actions,
    proposal_create,
    proposal_set_budget_provision,
    proposal_transition,
    proposal_update,
)

Decision = Proposal.Decision
BudgetProvision = Proposal.BudgetProvision

# The order files are written in: a proposal may name an operation of the same import.
FILE_KINDS = ("operations", "participation", "proposals")

COLUMNS: dict[str, tuple[str, ...]] = {
    "operations": (
        "fiscal_year",
        "body_code",
        "body_name",
        "body_kind",
        "department",
        "operation_code",
        "title",
        "budget_yen",
        "summary",
    ),
    "proposals": (
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
    ),
    "participation": ("fiscal_year", "body_code", "body_name"),
}

FILE_LABELS = {
    "operations": gettext_lazy("operations"),
    "proposals": gettext_lazy("proposals"),
    "participation": gettext_lazy("participation"),
}

# Words Japanese registers use for the choices. The model labels (in every site language) are
# accepted too; these do not wait for the Japanese UI catalogue to be written.
REGISTER_TERMS: dict[type[models.TextChoices], dict[str, str]] = {
    GovernmentBody.Kind: {
        "県": "prefecture",
        "都道府県": "prefecture",
        "市町": "municipality",
        "市町村": "municipality",
    },
    Organization.Kind: {
        "CSO": "cso",
        "NPO": "cso",
        "NPO法人": "cso",
        "企業": "company",
        "大学": "university",
        "その他": "other",
    },
    Decision: {
        "採択": "adopted",
        "一部採択": "partially_adopted",
        "不採択": "not_adopted",
        "意見として承る": "noted",
        "取下げ": "withdrawn",
        "取り下げ": "withdrawn",
    },
    BudgetProvision: {"あり": "yes", "なし": "no", "未定": "pending"},
}

FIRST_FISCAL_YEAR = 1989  # the models' lower bound: the register uses Heisei and later years
MAX_YEN = 10**15  # far beyond any budget; keeps a typo from overflowing the column
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx workbook is a zip archive
XLS_MAGIC = b"\xd0\xcf\x11\xe0"  # the pre-2007 binary .xls format, which openpyxl cannot read


@dataclass(frozen=True)
class Problem:
    """One reason an import was refused, located as staff see it in their spreadsheet."""

    file: str  # a key of COLUMNS, or "" for a problem with the request as a whole
    row: int | None  # spreadsheet row number (the header is row 1); None for the whole file
    reason: str

    def __str__(self) -> str:
        if not self.file:
            return self.reason
        values = {"file": FILE_LABELS[self.file], "row": self.row, "reason": self.reason}
        if self.row is None:
            return _("%(file)s: %(reason)s") % values
        return _("%(file)s row %(row)d: %(reason)s") % values


class ImportErrors(Exception):
    """The import was refused and nothing was written; ``problems`` says why, row by row."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(self.messages))

    @property
    def messages(self) -> list[str]:
        return [str(problem) for problem in self.problems]


@dataclass
class ImportSummary:
    """What an import did, per file kind: rows created, updated and left unchanged."""

    kinds: tuple[str, ...]
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    # Government bodies, departments and organisations created along the way.
    also_created: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    def lines(self) -> list[str]:
        labels = {
            "operations": _("Operations"),
            "participation": _("Participation"),
            "proposals": _("Proposals"),
        }
        lines = [
            _("%(kind)s: %(created)d created, %(updated)d updated, %(unchanged)d unchanged.")
            % {
                "kind": labels[kind],
                "created": self.counts.get(kind, Counter())["created"],
                "updated": self.counts.get(kind, Counter())["updated"],
                "unchanged": self.counts.get(kind, Counter())["unchanged"],
            }
            for kind in FILE_KINDS
            if kind in self.kinds
        ]
        if sum(self.also_created.values()):
            lines.append(
                _(
                    "Also created: %(bodies)d government bodies, %(departments)d departments, "
                    "%(organizations)d organisations."
                )
                % {
                    "bodies": self.also_created["bodies"],
                    "departments": self.also_created["departments"],
                    "organizations": self.also_created["organizations"],
                }
            )
        return lines


# --- Reading ---------------------------------------------------------------------------------


class SheetError(Exception):
    """A file that cannot be read as a table with the expected header."""

    def __init__(self, reason: str, row: int | None = None):
        self.reason = reason
        self.row = row
        super().__init__(reason)


def read_rows(data: bytes, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, {column: cell})`` for every non-blank data row of a CSV or .xlsx file.

    The header (row 1) may list the columns in any order and add others, which are dropped; a
    missing column raises ``SheetError``. Cells stay as the file has them (text from CSV; text,
    numbers and datetimes from Excel) so the validators can accept what Excel makes of a value.
    """
    if data.startswith(XLS_MAGIC):
        raise SheetError(_("Old Excel .xls files cannot be read: save the sheet as .xlsx or CSV."))
    records = _xlsx_records(data) if data.startswith(XLSX_MAGIC) else _csv_records(data)
    positions: dict[str, int] | None = None
    try:
        for number, record in enumerate(records, start=1):
            if positions is None:
                positions = _header_positions(record, columns)
                continue
            if all(_blank(cell) for cell in record):
                continue
            yield (
                number,
                {name: record[i] if i < len(record) else None for name, i in positions.items()},
            )
    except csv.Error as exc:
        raise SheetError(_("The CSV file cannot be read: %(error)s") % {"error": exc}) from exc
    if positions is None:
        raise SheetError(_("The file is empty."))


def _header_positions(record: Sequence[Any], columns: Sequence[str]) -> dict[str, int]:
    names = [str(cell).replace("\ufeff", "").strip().lower() if cell else "" for cell in record]
    twice = sorted({name for name in names if name in columns and names.count(name) > 1})
    if twice:
        raise SheetError(
            _("Column given more than once: %(columns)s") % {"columns": ", ".join(twice)}, row=1
        )
    missing = [name for name in columns if name not in names]
    if missing:
        raise SheetError(
            ngettext("Missing column: %(columns)s", "Missing columns: %(columns)s", len(missing))
            % {"columns": ", ".join(missing)},
            row=1,
        )
    return {name: names.index(name) for name in columns}


def _csv_records(data: bytes) -> Iterator[list[str]]:
    return csv.reader(io.StringIO(_decode(data), newline=""))


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or, failing that, Shift_JIS as Windows writes it (CP932).

    Japanese text in Shift_JIS is almost never valid UTF-8, so trying UTF-8 first is safe.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for encoding in ("utf-8", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError(
        _("The file is neither UTF-8 nor Shift_JIS text, nor an Excel .xlsx workbook.")
    )


def _xlsx_records(data: bytes) -> Iterator[tuple[Any, ...]]:
    """The rows of the workbook's first sheet, read-only (streamed, so a large sheet is cheap)."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file; all mean the same
        raise SheetError(_("The file is not a readable Excel workbook.")) from exc
    try:
        if not workbook.worksheets:
            raise SheetError(_("The workbook has no sheet."))
        sheet = workbook.worksheets[0]
        # The stored dimensions can be wrong (some tools write none); read what is there.
        sheet.reset_dimensions()
        yield from sheet.iter_rows(values_only=True)
    finally:
        workbook.close()


# --- Cells -----------------------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _normal(text: str) -> str:
    """Full-width digits and signs (２０２６, ￥, ，) as their ASCII forms."""
    return unicodedata.normalize("NFKC", text).strip()


def _fold(text: str) -> str:
    return " ".join(_normal(text).casefold().split())


def _as_text(value: Any) -> str:
    """A cell as text. Excel stores code-like columns typed in as numbers (101 → 101.0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _choice_aliases(choices: type[models.TextChoices]) -> dict[str, str]:
    """Every way staff may write a choice: its code, its label in each site language, a term."""
    aliases = {_fold(term): value for term, value in REGISTER_TERMS.get(choices, {}).items()}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            aliases.update({_fold(str(label)): value for value, label in choices.choices})
    aliases.update({_fold(value): value for value in choices.values})
    return aliases


_YEN = re.compile(r"(-)?[¥\\]?(-)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?円?")
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]0{1,2}:00(?::00)?)?")


class _Row:
    """One data row: parses its cells and records what is wrong with them.

    Each parser returns ``None`` (or "") for a bad cell after recording the problem, so a row
    reports every bad cell at once; ``ok`` says whether the row can be used.
    """

    def __init__(self, file: str, number: int, cells: dict[str, Any], problems: list[Problem]):
        self.file = file
        self.number = number
        self.cells = cells
        self.problems = problems
        self.ok = True

    def error(self, reason: str) -> None:
        self.ok = False
        self.problems.append(Problem(self.file, self.number, reason))

    def cell_error(self, column: str, reason: str) -> None:
        self.error(_("%(column)s: %(reason)s") % {"column": column, "reason": reason})

    def _missing(self, column: str, required: bool) -> bool:
        """True if the cell is blank; records a problem if it had to be filled."""
        if not _blank(self.cells[column]):
            return False
        if required:
            self.cell_error(column, _("required, but empty"))
        return True

    def text(self, column: str, *, max_length: int | None, required: bool = True) -> str:
        value = _as_text(self.cells[column])
        if self._missing(column, required):
            return ""
        if max_length and len(value) > max_length:
            self.cell_error(column, _("longer than %(max)d characters") % {"max": max_length})
            return ""
        return value

    def body_code(self) -> str:
        raw = self.cells["body_code"]
        if self._missing("body_code", required=True):
            return ""
        # A code typed into an Excel number cell loses its leading zero (012025 → 12025).
        if _is_number(raw) and float(raw).is_integer() and 0 <= raw < 10**6:
            return f"{int(raw):06d}"
        value = _normal(_as_text(raw))
        if not re.fullmatch(r"\d{6}", value):
            self.cell_error(
                "body_code",
                _("“%(value)s” is not a six-digit local government code (e.g. 410004)")
                % {"value": value},
            )
            return ""
        return value

    def fiscal_year(self) -> int | None:
        raw = self.cells["fiscal_year"]
        if self._missing("fiscal_year", required=True):
            return None
        text = _normal(_as_text(raw))
        if not re.fullmatch(r"\d{4}", text):
            self.cell_error(
                "fiscal_year", _("“%(value)s” is not a fiscal year such as 2026") % {"value": text}
            )
            return None
        year = int(text)
        if not self._plausible_year("fiscal_year", year):
            return None
        return year

    def _plausible_year(self, column: str, year: int) -> bool:
        last = current_fiscal_year() + 2
        if FIRST_FISCAL_YEAR <= year <= last:
            return True
        self.cell_error(
            column,
            _("fiscal year %(year)d is outside %(first)d–%(last)d")
            % {"year": year, "first": FIRST_FISCAL_YEAR, "last": last},
        )
        return False

    def yen(self, column: str) -> int | None:
        """Whole, non-negative yen; accepts 1200000, 1200000.0 (Excel), "1,200,000", "¥1,200,000".

        In Shift_JIS the yen sign is the byte of the ASCII backslash, so "\\1,200" is yen too.
        """
        raw = self.cells[column]
        if self._missing(column, required=False):
            return None
        if isinstance(raw, bool):
            raw = str(raw)
        if isinstance(raw, int):
            amount, fraction = raw, 0
        elif isinstance(raw, float):
            amount, fraction = int(raw), (0 if raw.is_integer() else 1)
        else:
            text = _normal(str(raw)).replace(" ", "")
            match = _YEN.fullmatch(text)
            if not match:
                self.cell_error(column, _("“%(value)s” is not an amount in yen") % {"value": raw})
                return None
            sign = -1 if match[1] or match[2] else 1
            amount = sign * int(match[3].replace(",", ""))
            fraction = int(match[4] or 0)
        if fraction:
            self.cell_error(
                column, _("“%(value)s” is not whole yen (no fractions)") % {"value": raw}
            )
            return None
        if amount < 0:
            self.cell_error(column, _("“%(value)s” is negative") % {"value": raw})
            return None
        if amount > MAX_YEN:
            self.cell_error(column, _("“%(value)s” is too large") % {"value": raw})
            return None
        return amount

    def date(self, column: str, *, required: bool) -> dt.date | None:
        raw = self.cells[column]
        if self._missing(column, required):
            return None
        if isinstance(raw, dt.datetime):
            value = raw.date()
        elif isinstance(raw, dt.date):
            value = raw
        else:
            match = _DATE.fullmatch(_normal(_as_text(raw)))
            try:
                if not match:
                    raise ValueError
                value = dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                self.cell_error(
                    column,
                    _("“%(value)s” is not a valid date (write YYYY-MM-DD)")
                    % {"value": _as_text(raw)},
                )
                return None
        if not self._plausible_year(column, fiscal_year_of(value)):
            return None
        return value

    def choice(
        self, column: str, aliases: dict[str, str], codes: Sequence[str], *, required: bool
    ) -> str | None:
        """The code of a choice; "" for a blank cell, None (with a problem) for an unknown one."""
        raw = self.cells[column]
        if self._missing(column, required):
            return ""
        value = aliases.get(_fold(_as_text(raw)))
        if value is None:
            self.cell_error(
                column,
                _("“%(value)s” is not one of: %(choices)s")
                % {"value": _as_text(raw), "choices": ", ".join(codes)},
            )
        return value


def _max_length(model: type[models.Model], name: str) -> int | None:
    return model._meta.get_field(name).max_length


# --- Validation ------------------------------------------------------------------------------

_Rows = list[tuple[int, dict[str, Any]]]  # (spreadsheet row number, cells) as read_rows yields


@dataclass
class _OperationRow:
    number: int
    fiscal_year: int
    body_code: str
    department: str
    code: str
    title: str
    budget_yen: int | None
    summary: str


@dataclass
class _ParticipationRow:
    number: int
    fiscal_year: int
    body_code: str


@dataclass
class _ProposalRow:
    number: int
    reference: str
    received_on: dt.date
    body_code: str
    operation_code: str
    operation_year: int | None
    organization_name: str
    title: str
    decision: str
    decided_on: dt.date | None
    budget_provision: str


@dataclass
class _Plan:
    """Everything the files say, checked, ready to write."""

    kinds: tuple[str, ...]
    new_bodies: dict[str, tuple[str, str]]  # code → (name, kind)
    new_organizations: dict[str, str]  # name → kind
    operations: list[_OperationRow] = field(default_factory=list)
    participation: list[_ParticipationRow] = field(default_factory=list)
    proposals: list[_ProposalRow] = field(default_factory=list)


class _Context:
    """The register as the import will leave it, so each row is checked against all the others.

    Holds the rows of the database the files refer to, and what the files declare about bodies,
    organisations and operations, with the row that declared it first.
    """

    def __init__(self, rows: dict[str, _Rows]):
        self.problems: list[Problem] = []
        every_row = [cells for kind_rows in rows.values() for _n, cells in kind_rows]
        codes = {_normal(_as_text(cells["body_code"])) for cells in every_row}
        codes |= {f"{int(c):06d}" for c in codes if c.isdigit() and len(c) < 6}
        self.bodies = {b.code: b for b in GovernmentBody.objects.filter(code__in=codes)}
        self.declared_bodies: dict[str, tuple[str, str, str, int]] = {}

        proposal_cells = [cells for _n, cells in rows.get("proposals", [])]
        names = {_as_text(cells["organization_name"]) for cells in proposal_cells}
        self.organizations = {o.name: o for o in Organization.objects.filter(name__in=names)}
        self.declared_organizations: dict[str, tuple[str, int]] = {}

        references = {_as_text(cells["reference"]) for cells in proposal_cells}
        self.proposals = {p.reference: p for p in Proposal.objects.filter(reference__in=references)}

        operation_codes = {_as_text(cells["operation_code"]) for cells in proposal_cells}
        # (body code, operation code) → the fiscal years it is catalogued for.
        self.operation_years: dict[tuple[str, str], set[int]] = {}
        for body_code, code, year in Operation.objects.filter(
            body__code__in=codes, code__in=operation_codes - {""}
        ).values_list("body__code", "code", "fiscal_year"):
            self.operation_years.setdefault((body_code, code), set()).add(year)

        self.aliases = {
            choices: _choice_aliases(choices)
            for choices in (GovernmentBody.Kind, Organization.Kind, Decision, BudgetProvision)
        }

    def choice(
        self, row: _Row, column: str, choices: type[models.TextChoices], *, required: bool = True
    ) -> str | None:
        return row.choice(column, self.aliases[choices], choices.values, required=required)

    def declare_body(self, row: _Row, code: str, name: str, kind: str) -> None:
        """Check a row's body against the register and the rows before it."""
        values = {"code": code, "name": name}
        known = self.bodies.get(code)
        if known is not None:
            if known.name != name:
                row.error(
                    _("body code %(code)s is registered as “%(registered)s”, not “%(name)s”")
                    % {**values, "registered": known.name}
                )
            elif known.kind != kind:
                row.error(
                    _("body code %(code)s is registered as a %(registered)s, not a %(kind)s")
                    % {
                        **values,
                        "registered": known.get_kind_display(),
                        "kind": GovernmentBody.Kind(kind).label,
                    }
                )
            return
        earlier = self.declared_bodies.get(code)
        if earlier is None:
            self.declared_bodies[code] = (name, kind, row.file, row.number)
            return
        earlier_name, earlier_kind, file, number = earlier
        where = {"file": FILE_LABELS[file], "row": number}
        if earlier_name != name:
            row.error(
                _("body code %(code)s is named “%(earlier)s” in %(file)s row %(row)d")
                % {**values, **where, "earlier": earlier_name}
            )
        elif earlier_kind != kind:
            row.error(
                _("body code %(code)s is a %(earlier)s in %(file)s row %(row)d")
                % {**values, **where, "earlier": GovernmentBody.Kind(earlier_kind).label}
            )

    def body_kind(self, code: str) -> str | None:
        if code in self.bodies:
            return self.bodies[code].kind
        if code in self.declared_bodies:
            return self.declared_bodies[code][1]
        return None

    def declare_organization(self, row: _Row, name: str, kind: str) -> None:
        known = self.organizations.get(name)
        if known is not None:
            if known.kind != kind:
                row.error(
                    _("organisation “%(name)s” is registered as %(registered)s, not %(kind)s")
                    % {
                        "name": name,
                        "registered": known.get_kind_display(),
                        "kind": Organization.Kind(kind).label,
                    }
                )
            return
        earlier = self.declared_organizations.setdefault(name, (kind, row.number))
        if earlier[0] != kind:
            row.error(
                _("organisation “%(name)s” is given as %(earlier)s in row %(row)d")
                % {"name": name, "earlier": Organization.Kind(earlier[0]).label, "row": earlier[1]}
            )


def _check_duplicate(row: _Row, seen: dict[Any, int], key: Any, what: str) -> None:
    if key in seen:
        row.error(_("same %(key)s as row %(row)d") % {"key": what, "row": seen[key]})
    else:
        seen[key] = row.number


def _validate_operations(context: _Context, rows: _Rows) -> list[_OperationRow]:
    valid = []
    seen: dict[tuple[int, str, str], int] = {}
    for number, cells in rows:
        row = _Row("operations", number, cells, context.problems)
        fiscal_year = row.fiscal_year()
        body_code = row.body_code()
        body_name = row.text("body_name", max_length=_max_length(GovernmentBody, "name"))
        body_kind = context.choice(row, "body_kind", GovernmentBody.Kind)
        code = row.text("operation_code", max_length=_max_length(Operation, "code"))
        department = row.text(
            "department", max_length=_max_length(Department, "name"), required=False
        )
        title = row.text("title", max_length=_max_length(Operation, "title"))
        budget_yen = row.yen("budget_yen")
        summary = row.text("summary", max_length=None, required=False)
        if fiscal_year and body_code and code:
            _check_duplicate(
                row,
                seen,
                (fiscal_year, body_code, code),
                _("fiscal_year, body_code and operation_code"),
            )
            # Known even if the row is bad, so proposals naming it do not pile up errors.
            context.operation_years.setdefault((body_code, code), set()).add(fiscal_year)
        if body_code and body_name and body_kind:
            context.declare_body(row, body_code, body_name, body_kind)
        if row.ok:
            valid.append(
                _OperationRow(
                    number, fiscal_year, body_code, department, code, title, budget_yen, summary
                )
            )
    return valid


def _validate_participation(context: _Context, rows: _Rows) -> list[_ParticipationRow]:
    valid = []
    seen: dict[tuple[int, str], int] = {}
    municipality = GovernmentBody.Kind.MUNICIPALITY
    for number, cells in rows:
        row = _Row("participation", number, cells, context.problems)
        fiscal_year = row.fiscal_year()
        body_code = row.body_code()
        body_name = row.text("body_name", max_length=_max_length(GovernmentBody, "name"))
        if fiscal_year and body_code:
            _check_duplicate(row, seen, (fiscal_year, body_code), _("fiscal_year and body_code"))
        if body_code and body_name:
            if context.body_kind(body_code) not in (None, municipality):
                row.error(
                    _("participation is for municipalities; %(code)s is a prefecture")
                    % {"code": body_code}
                )
            else:
                context.declare_body(row, body_code, body_name, municipality)
        if row.ok:
            valid.append(_ParticipationRow(number, fiscal_year, body_code))
    return valid


def _validate_proposals(context: _Context, rows: _Rows) -> list[_ProposalRow]:
    valid = []
    seen: dict[str, int] = {}
    for number, cells in rows:
        row = _Row("proposals", number, cells, context.problems)
        reference = row.text("reference", max_length=_max_length(Proposal, "reference"))
        received_on = row.date("received_on", required=True)
        body_code = row.body_code()
        body_name = row.text("body_name", max_length=_max_length(GovernmentBody, "name"))
        body_kind = context.choice(row, "body_kind", GovernmentBody.Kind)
        operation_code = row.text(
            "operation_code", max_length=_max_length(Operation, "code"), required=False
        )
        organization_name = row.text(
            "organization_name", max_length=_max_length(Organization, "name")
        )
        organization_kind = context.choice(row, "organization_kind", Organization.Kind)
        title = row.text("title", max_length=_max_length(Proposal, "title"))
        decision = context.choice(row, "decision", Decision, required=False)
        decided_on = row.date("decided_on", required=False)
        budget_provision = context.choice(row, "budget_provision", BudgetProvision, required=False)

        if reference:
            _check_duplicate(row, seen, reference, _("reference"))
        if body_code and body_name and body_kind:
            context.declare_body(row, body_code, body_name, body_kind)
        if organization_name and organization_kind:
            context.declare_organization(row, organization_name, organization_kind)
        if decided_on and decision == "":
            row.cell_error("decided_on", _("a decision date needs a decision"))
        if received_on and decided_on and decided_on < received_on:
            row.cell_error(
                "decided_on",
                _("%(decided)s is before the proposal was received (%(received)s)")
                % {"decided": decided_on, "received": received_on},
            )
        operation_year = None
        if operation_code and body_code and received_on:
            operation_year = _operation_year(context, row, body_code, operation_code, received_on)
        if not row.ok:
            continue
        proposal_row = _ProposalRow(
            number=number,
            reference=reference,
            received_on=received_on,
            body_code=body_code,
            operation_code=operation_code,
            operation_year=operation_year,
            organization_name=organization_name,
            title=title,
            decision=decision,
            decided_on=decided_on,
            budget_provision=budget_provision or BudgetProvision.PENDING,
        )
        reason = _decision_problem(context.proposals.get(reference), proposal_row)
        if reason:
            row.error(reason)
        else:
            valid.append(proposal_row)
    return valid


def _operation_year(
    context: _Context, row: _Row, body_code: str, code: str, received_on: dt.date
) -> int | None:
    """The operation a proposal refers to: that of its fiscal year, else the latest before it.

    A catalogue is published per fiscal year, and a proposal received early in a year may still
    cite last year's entry before the new catalogue is out.
    """
    fiscal_year = fiscal_year_of(received_on)
    years = [y for y in context.operation_years.get((body_code, code), ()) if y <= fiscal_year]
    if not years:
        row.cell_error(
            "operation_code",
            _("body %(body)s has no operation “%(code)s” in FY%(year)d or earlier")
            % {"body": body_code, "code": code, "year": fiscal_year},
        )
        return None
    return max(years)


def _decision_problem(proposal: Proposal | None, row: _ProposalRow) -> str | None:
    """Why the register cannot take the row's decision and budget provision, if it cannot."""
    withdrawn = row.decision == Decision.WITHDRAWN
    # A budget provision already on record may stay; a new one cannot be given once withdrawn.
    budget_recorded = proposal is not None and proposal.budget_provision == row.budget_provision
    if withdrawn and row.budget_provision != BudgetProvision.PENDING and not budget_recorded:
        return _("budget_provision: a withdrawn proposal has no budget provision to record")
    if proposal is None or not _decision_differs(proposal, row):
        return None
    values = {"state": proposal.get_state_display(), "decision": proposal.get_decision_display()}
    if not row.decision:
        return (
            _("decision: the register already records “%(decision)s”; a blank cannot undo it")
            % values
        )
    action = "withdraw" if withdrawn else "respond"
    if action not in allowed_actions(proposal):
        return (
            _(
                "decision: the proposal is “%(state)s” in the register, so its recorded "
                "decision (“%(decision)s”) can no longer be changed"
            )
            % values
        )
    return None


def _decision_differs(proposal: Proposal, row: _ProposalRow) -> bool:
    return proposal.decision != row.decision or proposal.decided_on != row.decided_on


def _read(files: dict[str, bytes], problems: list[Problem]) -> dict[str, _Rows]:
    rows: dict[str, _Rows] = {}
    for kind, data in files.items():
        rows[kind] = []
        try:
            for number, cells in read_rows(data, COLUMNS[kind]):
                rows[kind].append((number, cells))
        except SheetError as exc:
            problems.append(Problem(kind, exc.row, exc.reason))
            rows[kind] = []
    return rows


def _validate(files: dict[str, bytes]) -> _Plan:
    read_problems: list[Problem] = []
    rows = _read(files, read_problems)
    context = _Context(rows)
    context.problems.extend(read_problems)
    validators: dict[str, Callable[[_Context, _Rows], list]] = {
        "operations": _validate_operations,
        "participation": _validate_participation,
        "proposals": _validate_proposals,
    }
    valid = {kind: validators[kind](context, rows[kind]) for kind in FILE_KINDS if kind in rows}
    if context.problems:
        raise ImportErrors(sorted(context.problems, key=_problem_order))
    return _Plan(
        kinds=tuple(files),
        new_bodies={code: (d[0], d[1]) for code, d in context.declared_bodies.items()},
        new_organizations={name: d[0] for name, d in context.declared_organizations.items()},
        **valid,
    )


def _problem_order(problem: Problem) -> tuple[int, int]:
    order = FILE_KINDS.index(problem.file) if problem.file in FILE_KINDS else -1
    return order, problem.row or 0


# --- Writing ---------------------------------------------------------------------------------


class _Writer:
    """Writes a checked plan; every proposal change goes through ``proposals.services``."""

    def __init__(self, plan: _Plan, actor: User | None, source: str):
        self.plan = plan
        self.actor = actor
        self.source = source
        self.summary = ImportSummary(kinds=plan.kinds)
        self.problems: list[Problem] = []
        self.bodies: dict[str, GovernmentBody] = {}
        self.departments: dict[tuple[int, str], Department] = {}
        self.organizations: dict[str, Organization] = {}

    def write(self) -> ImportSummary:
        self._bodies()
        for row in self.plan.operations:
            self.summary.count("operations", self._operation(row))
        for row in self.plan.participation:
            self.summary.count("participation", self._participation(row))
        self._organizations()
        for row in self.plan.proposals:
            try:
                self.summary.count("proposals", self._proposal(row))
            except (ValidationError, PermissionDenied) as exc:
                # The checks above should have caught it; the services have the last word.
                reason = "; ".join(getattr(exc, "messages", None) or [str(exc)])
                self.problems.append(Problem("proposals", row.number, reason))
        if self.problems:
            raise ImportErrors(self.problems)
        return self.summary

    def _bodies(self) -> None:
        codes = {row.body_code for kind in FILE_KINDS for row in getattr(self.plan, kind)}
        self.bodies = {b.code: b for b in GovernmentBody.objects.filter(code__in=codes)}
        for code, (name, kind) in self.plan.new_bodies.items():
            self.bodies[code] = GovernmentBody.objects.create(code=code, name=name, kind=kind)
            self.summary.also_created["bodies"] += 1

    def _department(self, body: GovernmentBody, name: str) -> Department | None:
        if not name:
            return None
        key = (body.pk, name)
        if key not in self.departments:
            self.departments[key], created = Department.objects.get_or_create(body=body, name=name)
            self.summary.also_created["departments"] += int(created)
        return self.departments[key]

    def _operation(self, row: _OperationRow) -> str:
        body = self.bodies[row.body_code]
        values = {
            "department": self._department(body, row.department),
            "title": row.title,
            "budget_yen": row.budget_yen,
            "summary": row.summary,
        }
        operation = Operation.objects.filter(
            fiscal_year=row.fiscal_year, body=body, code=row.code
        ).first()
        if operation is None:
            Operation.objects.create(
                fiscal_year=row.fiscal_year, body=body, code=row.code, **values
            )
            return "created"
        changed = [name for name, value in values.items() if getattr(operation, name) != value]
        if not changed:
            return "unchanged"
        for name in changed:
            setattr(operation, name, values[name])
        operation.save(update_fields=changed)
        return "updated"

    def _participation(self, row: _ParticipationRow) -> str:
        _participation, created = Participation.objects.get_or_create(
            fiscal_year=row.fiscal_year, body=self.bodies[row.body_code]
        )
        return "created" if created else "unchanged"

    def _organizations(self) -> None:
        names = {row.organization_name for row in self.plan.proposals}
        self.organizations = {o.name: o for o in Organization.objects.filter(name__in=names)}
        for name, kind in self.plan.new_organizations.items():
            self.organizations[name] = Organization.objects.create(name=name, kind=kind)
            self.summary.also_created["organizations"] += 1

    def _proposal(self, row: _ProposalRow) -> str:
        body = self.bodies[row.body_code]
        particulars = {
            "received_on": row.received_on,
            "body": body,
            "operation": (
                Operation.objects.get(
                    fiscal_year=row.operation_year, body=body, code=row.operation_code
                )
                if row.operation_code
                else None
            ),
            "organization": self.organizations[row.organization_name],
            "title": row.title,
        }
        who = {"actor": self.actor, "source": self.source}
        proposal = Proposal.objects.filter(reference=row.reference).first()
        created = proposal is None
        changed = False
        if proposal is None:
            proposal = proposal_create(reference=row.reference, **particulars, **who)
        else:
            changes = {k: v for k, v in particulars.items() if getattr(proposal, k) != v}
            if changes:
                proposal = proposal_update(proposal=proposal, **changes, **who)
                changed = True

        if _decision_differs(proposal, row):
            if row.decision == Decision.WITHDRAWN:
                proposal = proposal_transition(
                    proposal=proposal, action="withdraw", withdrawn_on=row.decided_on, **who
                )
            else:
                proposal = proposal_transition(
                    proposal=proposal,
                    action="respond",
                    decision=row.decision,
                    decided_on=row.decided_on,
                    **who,
                )
            changed = True

        if (
            proposal.state != Proposal.State.WITHDRAWN
            and proposal.budget_provision != row.budget_provision
        ):
            proposal_set_budget_provision(
                proposal=proposal, budget_provision=row.budget_provision, **who
            )
            changed = True
        return "created" if created else "updated" if changed else "unchanged"


# --- The service -----------------------------------------------------------------------------


def import_register(
    *,
    operations: bytes | None = None,
    proposals: bytes | None = None,
    participation: bytes | None = None,
    actor: User | None = None,
    source: str = "import",
) -> ImportSummary:
    """Import the register's files (CSV or .xlsx bytes): all of them, or nothing.

    Every row of every file is checked first; if any is wrong, ``ImportErrors`` lists them all
    and nothing is written. Otherwise operations, then participation, then proposals are written
    in one transaction, proposals through the proposal services (as ``actor``, or as ``source``
    when there is no user), so the history shows the import. Unchanged rows are left alone.
    """
    if actor is not None and not (actor.is_active and actor.is_staff):
        raise PermissionDenied(_("You may not import the register."))
    given = {"operations": operations, "participation": participation, "proposals": proposals}
    files = {kind: data for kind, data in given.items() if data is not None}
    if not files:
        raise ImportErrors([Problem("", None, _("Give at least one file to import."))])
    with transaction.atomic():
        plan = _validate(files)
        return _Writer(plan, actor, source).write()
