"""Zengin (全銀) helpers: account-holder kana, bank and branch codes, bank business days, and the
総合振込 (general transfer) file the foundation uploads to its bank to pay grant tranches.

Pure functions, no models: the services decide what to pay, this module only checks and writes.

Record layout of the 総合振込 file, checked against the 全銀協制定ファイルフォーマット【総合振込】
as reproduced by banks and vendors (expydoc.com/doc/11700435 "全銀協制定ファイルフォーマット
【総合振込】"; gulliver-webhelp.askids-cloud.jp FBデータの仕様, which gives each field's start
column; the 持込規格 sheet at expydoc.com/doc/8010391, which gives header columns 1–120; and the
fixed-length layout used in Nablarch's data-format tests, which gives data-record columns 1–120).
All agree on these 1-based byte positions:

    header  (1)  1 データ区分 "1" | 2–3 種別コード "21" | 4 コード区分 "0" | 5–14 委託者コード
                 | 15–54 委託者名 | 55–58 取組日 MMDD | 59–62 仕向銀行番号 | 63–77 仕向銀行名
                 | 78–80 仕向支店番号 | 81–95 仕向支店名 | 96 預金種目 | 97–103 口座番号
                 | 104–120 ダミー
    data    (2)  1 "2" | 2–5 被仕向銀行番号 | 6–20 銀行名 | 21–23 支店番号 | 24–38 支店名
                 | 39–42 手形交換所番号 | 43 預金種目 | 44–50 口座番号 | 51–80 受取人名
                 | 81–90 振込金額 | 91 新規コード | 92–101 顧客コード1 | 102–111 顧客コード2
                 | 112 振込指定区分 | 113 識別表示 | 114–120 ダミー
    trailer (8)  1 "8" | 2–7 合計件数 | 8–19 合計金額 | 20–120 ダミー
    end     (9)  1 "9" | 2–120 ダミー

Numbers are right-aligned and zero-padded, text left-aligned and space-padded; each record is
followed by CRLF (banks accept 120 bytes + CRLF, "122 bytes", or no separator at all).
手形交換所番号 is unused: the 全銀協 sheet says to fill it with 0, and bank APIs accept all
zeros or all spaces; we write spaces. 識別表示 is a space, so positions 92–111 are 顧客コード1/2
(with "Y" they would be EDI information instead).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.translation import gettext as _

RECORD_LENGTH = 120
ENCODING = "shift_jis"
RECORD_SEPARATOR = b"\r\n"

MAX_AMOUNT = 9_999_999_999  # 振込金額 is N(10)
MAX_TOTAL = 999_999_999_999  # 合計金額 is N(12)
MAX_LINES = 999_999  # 合計件数 is N(6)
ACCOUNT_TYPES = frozenset({"1", "2", "4", "9"})  # 普通, 当座, 貯蓄, その他

# --- Kana -----------------------------------------------------------------------------------
#
# The characters banks accept in names (全銀テレ為替文字; checked against zenn.dev/futa/scraps/
# 91335fe8e89229 and the 口座名義 rules published by payroll vendors and the 持続化給付金 form):
# half-width katakana ｦ and ｱ–ﾝ, the marks ﾞ ﾟ, A–Z, 0–9, space and ( ) - . / ｢ ｣ , ¥.
# Small kana, lower-case letters and the long-vowel mark are not accepted, so we convert them
# (ッ→ﾂ, a→A, ー→-) the way the banks tell account holders to. In JIS X 0201 byte 0x5C is the
# yen sign; Python's Shift_JIS codec reads it as "\", so we write "\" for both ¥ and \.

_FULL_KANA = (
    "ヲアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
)
_HALF_KANA = "ｦｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ"
assert len(_FULL_KANA) == len(_HALF_KANA)

_SINGLE_CHAR_MAP: dict[str, str] = {
    **dict(zip(_FULL_KANA, _HALF_KANA, strict=True)),
    # Small kana are written large: the banks' files have no small kana.
    **dict(zip("ァィゥェォッャュョヮヵヶ", "ｱｲｳｴｵﾂﾔﾕﾖﾜｶｹ", strict=True)),
    **dict(zip("ｧｨｩｪｫｬｭｮｯ", "ｱｲｳｴｵﾔﾕﾖﾂ", strict=True)),
    # Voiced and semi-voiced marks, however they were typed (spacing, combining, half-width).
    "\u3099": "ﾞ",
    "゛": "ﾞ",
    "ﾞ": "ﾞ",
    "\u309a": "ﾟ",
    "゜": "ﾟ",
    "ﾟ": "ﾟ",
    # The long-vowel mark and the dashes people type for it or for a hyphen.
    **dict.fromkeys("ーｰ‐‑‒–—―−", "-"),
    "「": "｢",
    "」": "｣",
    "・": ".",
    "･": ".",
    "¥": "\\",
    "￥": "\\",
}

_ALLOWED = frozenset(_HALF_KANA + "ﾞﾟ" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + " ()-./｢｣,\\")


def _convert_char(char: str) -> str | None:
    """One typed character as Zengin half-width characters (one or two), or None if it has no
    equivalent."""
    if char.isspace():
        return " "
    if "\uff01" <= char <= "\uff5e":  # full-width ASCII
        char = chr(ord(char) - 0xFEE0)
    if "ぁ" <= char <= "ゖ":  # hiragana → katakana, same order 0x60 further on
        char = chr(ord(char) + 0x60)
    if char in _ALLOWED:
        return char
    if char.isascii():
        char = char.upper()
        return char if char in _ALLOWED else None
    if char in _SINGLE_CHAR_MAP:
        return _SINGLE_CHAR_MAP[char]
    # Voiced katakana decompose to base + combining mark: ガ → カ + ゛ → ｶﾞ, ヴ → ｳﾞ, パ → ﾊﾟ.
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) == 2 and decomposed[0] in _FULL_KANA:
        return _SINGLE_CHAR_MAP[decomposed[0]] + _SINGLE_CHAR_MAP[decomposed[1]]
    return None


def _to_half_width(text: str) -> str:
    """Convert without a length limit (see ``normalize_kana``)."""
    converted: list[str] = []
    refused: list[str] = []
    for char in text:
        half = _convert_char(char)
        if half is None:
            if char not in refused:
                refused.append(char)
        else:
            converted.append(half)
    if refused:
        raise ValidationError(
            _("These characters cannot be used in a bank account name: %(characters)s"),
            code="invalid_characters",
            params={"characters": " ".join(refused)},
        )
    result = re.sub(" +", " ", "".join(converted)).strip()
    if not result:
        raise ValidationError(_("Enter the name in kana."), code="empty")
    return result


def normalize_kana(text: str, *, max_length: int = 30) -> str:
    """Return ``text`` as the half-width kana a Zengin file needs, or raise ValidationError.

    Banks match the receiving account by its holder's name in half-width kana, and reject a
    whole file for one character outside their set; people type names in full-width katakana,
    hiragana or full-width letters. So we convert what has one obvious equivalent — hiragana and
    full-width katakana to half-width (voiced kana as base + ﾞ/ﾟ), small kana to large,
    letters to upper case, full-width ASCII and spaces to half-width, ー and dashes to "-",
    runs of spaces to one — and refuse the rest (kanji, emoji, …) naming the characters, so the
    person can retype them rather than have us guess.

    Legal-entity words (株式会社 → ｶ), 特定非営利活動法人 → ﾄｸﾋ) …) are not abbreviated: the
    abbreviations differ by bank and a wrong one mismatches the name. Type them as written on
    the passbook, in kana. ``max_length`` counts half-width characters, a ﾞ or ﾟ being one.
    """
    result = _to_half_width(text)
    if len(result) > max_length:
        raise ValidationError(
            _(
                "The name is %(length)d half-width characters long; at most %(max_length)d "
                "fit (a voiced mark ﾞ or ﾟ counts as one)."
            ),
            code="too_long",
            params={"length": len(result), "max_length": max_length},
        )
    return result


# --- Bank and branch codes -------------------------------------------------------------------


@cache
def _banks() -> dict[str, Any]:
    # Loading the published list takes a tenth of a second: only when first needed.
    import zengin_code

    return zengin_code.Bank.all


def _bank_and_branch(bank_code: str, branch_code: str) -> tuple[Any, Any]:
    if not re.fullmatch(r"[0-9]{4}", bank_code or ""):
        raise ValidationError(
            {"bank_code": _("Enter the bank code: exactly 4 digits.")}, code="invalid"
        )
    if not re.fullmatch(r"[0-9]{3}", branch_code or ""):
        raise ValidationError(
            {"branch_code": _("Enter the branch code: exactly 3 digits.")}, code="invalid"
        )
    bank = _banks().get(bank_code)
    if bank is None:
        raise ValidationError(
            {"bank_code": _("No bank has the code %(code)s.") % {"code": bank_code}},
            code="unknown",
        )
    branch = bank.branches.get(branch_code)
    if branch is None:
        raise ValidationError(
            {
                "branch_code": _("%(bank)s has no branch with the code %(code)s.")
                % {"bank": bank.name, "code": branch_code}
            },
            code="unknown",
        )
    return bank, branch


def bank_names(bank_code: str, branch_code: str) -> tuple[str, str]:
    """Return (bank name, branch name) in half-width kana for the file, after checking both codes
    against the published Zengin code list.

    The file's name fields hold 15 characters and the bank goes by the codes, so a longer name
    is cut to 15 rather than refused. Errors are keyed ``bank_code`` / ``branch_code`` so a form
    shows them on the right field.
    """
    bank, branch = _bank_and_branch(bank_code, branch_code)
    return (
        _to_half_width(bank.kana)[:15].rstrip(),
        _to_half_width(branch.kana)[:15].rstrip(),
    )


def bank_display_names(bank_code: str, branch_code: str) -> tuple[str, str]:
    """Return (bank name, branch name) as people read them (kanji), for pages; same checks as
    ``bank_names``."""
    bank, branch = _bank_and_branch(bank_code, branch_code)
    return bank.name, branch.name


# --- Bank business days ------------------------------------------------------------------------

_NEW_YEAR_CLOSURE = frozenset({(12, 31), (1, 1), (1, 2), (1, 3)})


def is_bank_business_day(day: date) -> bool:
    """Whether Japanese banks settle transfers on ``day``.

    Banks close on Saturdays, Sundays, public holidays (substitute holidays included) and from
    31 December to 3 January (銀行法施行令 第5条); a transfer dated on a closed day is refused.
    """
    if day.weekday() >= 5 or (day.month, day.day) in _NEW_YEAR_CLOSURE:
        return False
    import jpholiday

    return not jpholiday.is_holiday(day)


def next_bank_business_day(day: date) -> date:
    """Return ``day`` if banks are open then, otherwise the first later day they are."""
    while not is_bank_business_day(day):
        day += timedelta(days=1)
    return day


# --- The 総合振込 file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Originator:
    """The foundation as the file's sender (振込依頼人), from ``settings.ZENGIN_ORIGINATOR``."""

    requester_code: str  # 委託者コード, 10 digits, given by the bank
    name_kana: str  # 委託者名, at most 40 half-width characters
    bank_code: str
    bank_name_kana: str
    branch_code: str
    branch_name_kana: str
    account_type: str  # "1" 普通, "2" 当座, "4" 貯蓄, "9" その他
    account_number: str  # 7 digits


@dataclass(frozen=True)
class TransferLine:
    """One payment: the receiving account (its names in half-width kana) and the amount in yen."""

    bank_code: str
    bank_name_kana: str
    branch_code: str
    branch_name_kana: str
    account_type: str
    account_number: str
    holder_kana: str
    amount: int
    # At most 20 characters 0–9 A–Z, shown to the receiving CSO's bank: written as
    # 顧客コード1 (10) + 顧客コード2 (10), left-aligned.
    customer_code: str = ""


def _digits_error(value: Any, width: int, label: str) -> str | None:
    if isinstance(value, str) and re.fullmatch(rf"[0-9]{{{width}}}", value):
        return None
    return _("%(field)s must be exactly %(width)d digits.") % {"field": label, "width": width}


def _kana_field(value: Any, max_length: int, label: str, errors: list[str]) -> str:
    if not isinstance(value, str):
        errors.append(_("%(field)s must be text.") % {"field": label})
        return ""
    try:
        return normalize_kana(value, max_length=max_length)
    except ValidationError as exc:
        errors.extend(f"{label}: {message}" for message in exc.messages)
        return ""


def _account_fields(item: Originator | TransferLine, errors: list[str]) -> dict[str, str]:
    """Check the fields an originator and a line share; return the names normalised."""
    for value, width, label in (
        (item.bank_code, 4, _("Bank code")),
        (item.branch_code, 3, _("Branch code")),
        (item.account_number, 7, _("Account number")),
    ):
        if message := _digits_error(value, width, label):
            errors.append(message)
    if item.account_type not in ACCOUNT_TYPES:
        errors.append(
            _("Account type must be 1 (ordinary), 2 (current), 4 (savings) or 9 (other).")
        )
    return {
        "bank_name_kana": _kana_field(item.bank_name_kana, 15, _("Bank name"), errors),
        "branch_name_kana": _kana_field(item.branch_name_kana, 15, _("Branch name"), errors),
    }


def _checked_originator(originator: Originator, errors: list[str]) -> Originator:
    if message := _digits_error(originator.requester_code, 10, _("Requester code")):
        errors.append(message)
    names = _account_fields(originator, errors)
    name = _kana_field(originator.name_kana, 40, _("Requester name"), errors)
    return dataclasses.replace(originator, name_kana=name, **names)


def _checked_line(line: TransferLine, errors: list[str]) -> TransferLine:
    names = _account_fields(line, errors)
    holder = _kana_field(line.holder_kana, 30, _("Account holder"), errors)
    amount = line.amount
    # bool is an int in Python; a float or Decimal is never a yen amount here.
    if isinstance(amount, bool) or not isinstance(amount, int):
        errors.append(_("The amount must be a whole number of yen."))
    elif not 1 <= amount <= MAX_AMOUNT:
        errors.append(_("The amount must be between ¥1 and ¥%(max)s.") % {"max": f"{MAX_AMOUNT:,}"})
    if not isinstance(line.customer_code, str) or not re.fullmatch(
        r"[0-9A-Z]{0,20}", line.customer_code
    ):
        errors.append(_("The customer code may hold at most 20 characters 0–9 and A–Z."))
    return dataclasses.replace(line, holder_kana=holder, **names)


def _number(value: int | str, width: int) -> str:
    return str(value).rjust(width, "0")


def _text(value: str, width: int) -> str:
    return value.ljust(width, " ")


def _encode(record: str) -> bytes:
    data = record.encode(ENCODING)
    # A record of another length shifts every later field: the bank would reject the file, or
    # worse, read an amount from the wrong columns. Checked even under ``python -O``.
    if len(data) != RECORD_LENGTH:
        raise AssertionError(f"Zengin record is {len(data)} bytes, not {RECORD_LENGTH}: {record!r}")
    return data


def _header(originator: Originator, transfer_date: date) -> bytes:
    return _encode(
        "1"  # データ区分: header
        + "21"  # 種別コード: 総合振込
        + "0"  # コード区分: JIS (Shift_JIS half-width kana)
        + _number(originator.requester_code, 10)
        + _text(originator.name_kana, 40)
        + f"{transfer_date:%m%d}"  # 取組日 MMDD
        + _number(originator.bank_code, 4)
        + _text(originator.bank_name_kana, 15)
        + _number(originator.branch_code, 3)
        + _text(originator.branch_name_kana, 15)
        + originator.account_type
        + _number(originator.account_number, 7)
        + " " * 17  # ダミー
    )


def _data(line: TransferLine) -> bytes:
    return _encode(
        "2"  # データ区分: data
        + _number(line.bank_code, 4)
        + _text(line.bank_name_kana, 15)
        + _number(line.branch_code, 3)
        + _text(line.branch_name_kana, 15)
        + " " * 4  # 手形交換所番号: unused
        + line.account_type
        + _number(line.account_number, 7)
        + _text(line.holder_kana, 30)
        + _number(line.amount, 10)
        + "0"  # 新規コード: その他
        + _text(line.customer_code, 20)  # 顧客コード1 + 顧客コード2
        + "7"  # 振込指定区分: 電信振込
        + " "  # 識別表示: customer codes, not EDI information
        + " " * 7  # ダミー
    )


def _trailer(count: int, total: int) -> bytes:
    return _encode("8" + _number(count, 6) + _number(total, 12) + " " * 101)


def _end() -> bytes:
    return _encode("9" + " " * 119)


def transfer_file(
    *, originator: Originator, transfer_date: date, lines: Sequence[TransferLine]
) -> bytes:
    """Return the Zengin 総合振込 file paying ``lines`` from the foundation's account on
    ``transfer_date``: Shift_JIS, 120-byte records each followed by CRLF.

    Everything is checked before anything is written, and all problems are reported together
    (ValidationError with one message per problem, lines numbered from 1), because a bank
    refuses a whole file for one bad field and the staff member should fix them in one go.
    """
    errors: list[str] = []
    if not is_bank_business_day(transfer_date):
        errors.append(
            _("%(date)s is not a bank business day; the next one is %(next)s.")
            % {"date": transfer_date.isoformat(), "next": next_bank_business_day(transfer_date)}
        )
    originator_errors: list[str] = []
    originator = _checked_originator(originator, originator_errors)
    errors.extend(_("Originator: %(error)s") % {"error": e} for e in originator_errors)
    if not lines:
        errors.append(_("A transfer file needs at least one transfer."))
    elif len(lines) > MAX_LINES:
        errors.append(_("A transfer file holds at most %(max)d transfers.") % {"max": MAX_LINES})
    checked: list[TransferLine] = []
    for number, line in enumerate(lines, start=1):
        line_errors: list[str] = []
        checked.append(_checked_line(line, line_errors))
        errors.extend(
            _("Transfer %(number)d: %(error)s") % {"number": number, "error": e}
            for e in line_errors
        )
    if errors:
        raise ValidationError(errors)
    total = sum(line.amount for line in checked)
    if total > MAX_TOTAL:
        raise ValidationError(
            _("The transfers total ¥%(total)s; a file holds at most ¥%(max)s.")
            % {"total": f"{total:,}", "max": f"{MAX_TOTAL:,}"}
        )
    records = [
        _header(originator, transfer_date),
        *(_data(line) for line in checked),
        _trailer(len(checked), total),
        _end(),
    ]
    return b"".join(record + RECORD_SEPARATOR for record in records)


def originator_from_settings() -> Originator:
    """Return the foundation's sending account from ``settings.ZENGIN_ORIGINATOR`` (a dict with
    the ``Originator`` field names), its names normalised to half-width kana.

    Raises ImproperlyConfigured — a deployment mistake, not a user's — if it is missing or any
    field is wrong, naming what to fix.
    """
    from django.conf import settings

    raw = getattr(settings, "ZENGIN_ORIGINATOR", None)
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            "settings.ZENGIN_ORIGINATOR must be a dict with the keys "
            + ", ".join(f.name for f in dataclasses.fields(Originator))
            + " (the foundation's bank account, for Zengin transfer files)."
        )
    names = [f.name for f in dataclasses.fields(Originator)]
    missing = [name for name in names if name not in raw]
    unknown = sorted(str(key) for key in raw if key not in names)
    if missing or unknown:
        raise ImproperlyConfigured(
            "settings.ZENGIN_ORIGINATOR: "
            + "; ".join(
                part
                for part in (
                    missing and "missing " + ", ".join(missing),
                    unknown and "unknown " + ", ".join(unknown),
                )
                if part
            )
            + "."
        )
    not_text = [name for name in names if not isinstance(raw[name], str)]
    if not_text:
        raise ImproperlyConfigured(
            "settings.ZENGIN_ORIGINATOR: these must be strings: " + ", ".join(not_text) + "."
        )
    errors: list[str] = []
    originator = _checked_originator(Originator(**{name: raw[name] for name in names}), errors)
    if errors:
        raise ImproperlyConfigured("settings.ZENGIN_ORIGINATOR: " + " ".join(errors))
    return originator
