"""grants.zengin: kana normalisation, bank codes, bank business days and the 総合振込 file.

The file is checked three ways: against records built here field by field (with the columns
written out by hand), against a stored golden file, and by reading it back with an independent
parser (tests/grants/zengin_parser.py) written from the 全銀協 layout.
"""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from grants.zengin import (
    Originator,
    TransferLine,
    bank_display_names,
    bank_names,
    is_bank_business_day,
    next_bank_business_day,
    normalize_kana,
    originator_from_settings,
    transfer_file,
)

from .zengin_parser import parse_transfer_file

GOLDEN = Path(__file__).parent / "data" / "zengin_transfer.txt"


# --- Kana ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("やまだ　たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),  # hiragana, full-width space
        ("ヤマダ タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("ｶﾞｷﾞｸﾞ", "ｶﾞｷﾞｸﾞ"),  # already half-width: unchanged
        ("ガギグゲゴ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ"),  # voiced → base + ﾞ
        ("パピプペポ", "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ"),  # semi-voiced → base + ﾟ
        ("ヴ", "ｳﾞ"),
        ("ゔぁいおりん", "ｳﾞｱｲｵﾘﾝ"),  # hiragana ゔ and small ぁ
        ("カ\u3099", "ｶﾞ"),  # combining voiced mark
        ("カ゛", "ｶﾞ"),  # spacing voiced mark
        ("ァィゥェォ", "ｱｲｳｴｵ"),  # small kana made large
        ("ッャュョヮヵヶ", "ﾂﾔﾕﾖﾜｶｹ"),
        ("ｧｨｩｪｫｬｭｮｯ", "ｱｲｳｴｵﾔﾕﾖﾂ"),  # half-width small kana too
        ("キャッシュ", "ｷﾔﾂｼﾕ"),
        ("サトー", "ｻﾄ-"),  # long vowel mark → hyphen
        ("ｻﾄｰ", "ｻﾄ-"),
        ("ハイフン－ダッシュ―マイナス−", "ﾊｲﾌﾝ-ﾀﾞﾂｼﾕ-ﾏｲﾅｽ-"),
        ("ＡＢＣ　１２３", "ABC 123"),  # full-width ASCII
        ("npo abc", "NPO ABC"),  # lower-case → upper
        ("ｔａｒｏ", "TARO"),
        ("  ヤマダ   　タロウ  ", "ﾔﾏﾀﾞ ﾀﾛｳ"),  # spaces collapsed and trimmed
        ("（カ）サガミ", "(ｶ)ｻｶﾞﾐ"),  # full-width brackets
        ("「サガ」．／，", "｢ｻｶﾞ｣./,"),
        ("ｻｶﾞ･ﾐﾗｲ", "ｻｶﾞ.ﾐﾗｲ"),  # middle dot → full stop
        ("¥￥\\", "\\\\\\"),  # yen signs: byte 0x5C, which Python reads as "\"
        ("ヲ", "ｦ"),
        # Legal-entity words are spelt out, not abbreviated.
        ("トクテイヒエイリカツドウホウジン　サガ", "ﾄｸﾃｲﾋｴｲﾘｶﾂﾄﾞｳﾎｳｼﾞﾝ ｻｶﾞ"),
        ("いっぱんしゃだんほうじん　みらい", "ｲﾂﾊﾟﾝｼﾔﾀﾞﾝﾎｳｼﾞﾝ ﾐﾗｲ"),
    ],
)
def test_normalize_kana(typed, expected):
    assert normalize_kana(typed) == expected


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("山田　タロウ", ["山", "田"]),  # kanji
        ("ヤマダ😀", ["😀"]),  # emoji
        ("ヤマダ＆タロウ", ["＆"]),  # a symbol outside the Zengin set
        ("サトウ〜", ["〜"]),
        ("ゝ", ["ゝ"]),  # iteration mark: no half-width equivalent
        ("株式会社山山", ["株", "式", "会", "社", "山"]),  # each named once
    ],
)
def test_normalize_kana_names_the_refused_characters(typed, refused):
    with pytest.raises(ValidationError) as exc:
        normalize_kana(typed)
    assert exc.value.code == "invalid_characters"
    (message,) = exc.value.messages
    for char in refused:
        assert message.count(char) == 1


@pytest.mark.parametrize("typed", ["", "   ", "　　"])
def test_normalize_kana_refuses_an_empty_name(typed):
    with pytest.raises(ValidationError) as exc:
        normalize_kana(typed)
    assert exc.value.code == "empty"


def test_normalize_kana_counts_voiced_marks_towards_the_limit():
    assert normalize_kana("ア" * 30) == "ｱ" * 30
    assert normalize_kana("ガ" * 15) == "ｶﾞ" * 15  # 30 half-width characters
    with pytest.raises(ValidationError) as exc:
        normalize_kana("ガ" * 15 + "ア")
    assert exc.value.code == "too_long"
    assert "31" in exc.value.messages[0]
    assert "30" in exc.value.messages[0]
    assert normalize_kana("ア" * 40, max_length=40) == "ｱ" * 40
    with pytest.raises(ValidationError, match="6"):
        normalize_kana("アイウエオカ", max_length=5)


def test_normalized_names_are_single_bytes_in_shift_jis():
    name = normalize_kana("ガパヴ（）－．／「」，¥ ＡＺ０９ヲン")
    assert len(name.encode("shift_jis")) == len(name)


# --- Bank and branch codes -------------------------------------------------------------------


def test_bank_names_for_a_real_bank_and_branch():
    assert bank_names("0190", "001") == ("ﾆｼﾆﾂﾎﾟﾝｼﾃｲ", "ﾃﾝｼﾞﾝ")
    assert bank_names("0190", "003") == ("ﾆｼﾆﾂﾎﾟﾝｼﾃｲ", "ｶｽｶﾞﾊﾞﾙ")
    assert bank_names("0005", "001") == ("ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", "ﾎﾝﾃﾝ")
    assert bank_display_names("0190", "001") == ("西日本シティ", "天神")


def test_bank_names_cut_long_names_to_the_15_the_file_holds(monkeypatch):
    # The published list has no name over 15 half-width characters today; a future one may.
    from types import SimpleNamespace

    import grants.zengin

    branch = SimpleNamespace(name="長い名前の支店", kana="ダイイチブガイチヨウキヨウドウクミアイ")
    bank = SimpleNamespace(name="長い銀行", kana="ガギグゲゴザジズゼゾ", branches={"123": branch})
    monkeypatch.setattr(grants.zengin, "_banks", lambda: {"9876": bank})
    assert bank_names("9876", "123") == ("ｶﾞｷﾞｸﾞｹﾞｺﾞｻﾞｼﾞｽ", "ﾀﾞｲｲﾁﾌﾞｶﾞｲﾁﾖｳｷﾖ")  # 15 each
    assert bank_display_names("9876", "123") == ("長い銀行", "長い名前の支店")


def test_every_published_name_converts():
    import zengin_code

    for bank in zengin_code.Bank.all.values():
        for branch_code in list(bank.branches)[:1]:
            bank_names(bank.code, branch_code)
        for branch in bank.branches.values():
            normalize_kana(branch.kana, max_length=99)


@pytest.mark.parametrize(
    ("bank_code", "branch_code", "field"),
    [
        ("9999", "001", "bank_code"),  # no such bank
        ("0190", "999", "branch_code"),  # no such branch at that bank
        ("190", "001", "bank_code"),  # too short
        ("01900", "001", "bank_code"),  # too long
        ("01a0", "001", "bank_code"),  # not digits
        ("０１９０", "001", "bank_code"),  # full-width digits
        ("", "001", "bank_code"),
        ("0190", "01", "branch_code"),
        ("0190", "0001", "branch_code"),
        ("0190", "0O1", "branch_code"),
        ("0190", "", "branch_code"),
    ],
)
def test_bank_names_refuse_bad_codes_on_the_right_field(bank_code, branch_code, field):
    for lookup in (bank_names, bank_display_names):
        with pytest.raises(ValidationError) as exc:
            lookup(bank_code, branch_code)
        assert set(exc.value.message_dict) == {field}
        assert exc.value.message_dict[field][0]


# --- Bank business days ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (date(2027, 1, 13), True),  # Wednesday
        (date(2027, 1, 16), False),  # Saturday
        (date(2027, 1, 17), False),  # Sunday
        (date(2027, 1, 11), False),  # 成人の日 (a Monday)
        (date(2026, 11, 3), False),  # 文化の日 (a Tuesday)
        (date(2026, 5, 6), False),  # 振替休日 for 憲法記念日 (a Wednesday)
        (date(2026, 5, 7), True),
        (date(2025, 12, 31), False),  # 31 December, a Wednesday
        (date(2026, 12, 31), False),  # a Thursday
        (date(2026, 1, 1), False),  # 元日, a Thursday
        (date(2025, 1, 2), False),  # a Thursday
        (date(2025, 1, 3), False),  # a Friday
        (date(2026, 1, 2), False),  # a Friday
        (date(2025, 1, 6), True),
        (date(2027, 1, 4), True),  # Monday after New Year
    ],
)
def test_is_bank_business_day(day, open_):
    assert is_bank_business_day(day) is open_


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 1, 13), date(2027, 1, 13)),  # open: the day itself
        (date(2026, 12, 30), date(2026, 12, 30)),
        (date(2026, 12, 31), date(2027, 1, 4)),  # New Year closure, then a weekend
        (date(2027, 1, 1), date(2027, 1, 4)),
        (date(2027, 1, 9), date(2027, 1, 12)),  # Saturday, Sunday, 成人の日
        (date(2026, 5, 2), date(2026, 5, 7)),  # Golden Week: Sat, Sun, 3 holidays, 振替休日
    ],
)
def test_next_bank_business_day(day, expected):
    assert next_bank_business_day(day) == expected


# --- The 総合振込 file ---------------------------------------------------------------------------

ORIGINATOR = Originator(
    requester_code="0123456789",
    name_kana="ｺｳｴｷｻﾞｲﾀﾞﾝﾎｳｼﾞﾝ ｼﾋﾞﾂｸﾌｱﾝﾄﾞ",
    bank_code="0190",
    bank_name_kana="ﾆｼﾆﾂﾎﾟﾝｼﾃｲ",
    branch_code="001",
    branch_name_kana="ﾃﾝｼﾞﾝ",
    account_type="1",
    account_number="1234567",
)
TRANSFER_DATE = date(2027, 1, 4)  # the first business day of 2027
LINES = [
    TransferLine(
        bank_code="0190",
        bank_name_kana="ﾆｼﾆﾂﾎﾟﾝｼﾃｲ",
        branch_code="003",
        branch_name_kana="ｶｽｶﾞﾊﾞﾙ",
        account_type="1",
        account_number="0012345",
        # As typed: full-width, with voiced kana and a full-width space.
        holder_kana="トクテイヒエイリカツドウホウジン　サガ",
        amount=1_500_000,
        customer_code="G2027000001",
    ),
    TransferLine(
        bank_code="0005",
        bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ",
        branch_code="001",
        branch_name_kana="ﾎﾝﾃﾝ",
        account_type="2",
        account_number="7654321",
        holder_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        amount=250_000,
    ),
    TransferLine(
        bank_code="0009",
        bank_name_kana="ﾐﾂｲｽﾐﾄﾓ",
        branch_code="005",
        branch_name_kana="ｶｽｶﾍﾞ",
        account_type="4",
        account_number="0000001",
        holder_kana="NPO ﾐﾗｲﾉﾓﾘ",
        amount=1,
        customer_code="1234567890ABCDEFGHIJ",
    ),
]


def _record(*fields: tuple[str, int]) -> bytes:
    """Join (value, width) pairs after checking each value has exactly its width."""
    for value, width in fields:
        assert len(value) == width, (value, width)
    record = "".join(value for value, _ in fields).encode("shift_jis")
    assert len(record) == 120
    return record


def expected_file() -> bytes:
    """The file built by hand, field by field, with the widths from the 全銀協 layout."""
    header = _record(
        ("1", 1),  # 1 データ区分
        ("21", 2),  # 2–3 種別コード: 総合振込
        ("0", 1),  # 4 コード区分: JIS
        ("0123456789", 10),  # 5–14 委託者コード
        ("ｺｳｴｷｻﾞｲﾀﾞﾝﾎｳｼﾞﾝ ｼﾋﾞﾂｸﾌｱﾝﾄﾞ" + " " * 14, 40),  # 15–54 委託者名 (26 + 14)
        ("0104", 4),  # 55–58 取組日 MMDD
        ("0190", 4),  # 59–62 仕向銀行番号
        ("ﾆｼﾆﾂﾎﾟﾝｼﾃｲ" + " " * 5, 15),  # 63–77 仕向銀行名 (10 + 5)
        ("001", 3),  # 78–80 仕向支店番号
        ("ﾃﾝｼﾞﾝ" + " " * 10, 15),  # 81–95 仕向支店名 (5 + 10)
        ("1", 1),  # 96 預金種目: 普通
        ("1234567", 7),  # 97–103 口座番号
        (" " * 17, 17),  # 104–120 ダミー
    )
    data = [
        _record(
            ("2", 1),  # 1 データ区分
            ("0190", 4),  # 2–5 被仕向銀行番号
            ("ﾆｼﾆﾂﾎﾟﾝｼﾃｲ" + " " * 5, 15),  # 6–20 銀行名
            ("003", 3),  # 21–23 支店番号
            ("ｶｽｶﾞﾊﾞﾙ" + " " * 8, 15),  # 24–38 支店名 (7 + 8)
            ("    ", 4),  # 39–42 手形交換所番号: unused
            ("1", 1),  # 43 預金種目
            ("0012345", 7),  # 44–50 口座番号
            ("ﾄｸﾃｲﾋｴｲﾘｶﾂﾄﾞｳﾎｳｼﾞﾝ ｻｶﾞ" + " " * 8, 30),  # 51–80 受取人名 (22 + 8)
            ("0001500000", 10),  # 81–90 振込金額
            ("0", 1),  # 91 新規コード
            ("G202700000", 10),  # 92–101 顧客コード1
            ("1" + " " * 9, 10),  # 102–111 顧客コード2
            ("7", 1),  # 112 振込指定区分: 電信
            (" ", 1),  # 113 識別表示
            (" " * 7, 7),  # 114–120 ダミー
        ),
        _record(
            ("2", 1),
            ("0005", 4),
            ("ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" + " " * 2, 15),  # 13 + 2
            ("001", 3),
            ("ﾎﾝﾃﾝ" + " " * 11, 15),
            ("    ", 4),
            ("2", 1),  # 当座
            ("7654321", 7),
            ("ﾔﾏﾀﾞ ﾀﾛｳ" + " " * 22, 30),  # 8 + 22
            ("0000250000", 10),
            ("0", 1),
            (" " * 10, 10),
            (" " * 10, 10),
            ("7", 1),
            (" ", 1),
            (" " * 7, 7),
        ),
        _record(
            ("2", 1),
            ("0009", 4),
            ("ﾐﾂｲｽﾐﾄﾓ" + " " * 8, 15),
            ("005", 3),
            ("ｶｽｶﾍﾞ" + " " * 10, 15),
            ("    ", 4),
            ("4", 1),  # 貯蓄
            ("0000001", 7),
            ("NPO ﾐﾗｲﾉﾓﾘ" + " " * 20, 30),
            ("0000000001", 10),
            ("0", 1),
            ("1234567890", 10),
            ("ABCDEFGHIJ", 10),
            ("7", 1),
            (" ", 1),
            (" " * 7, 7),
        ),
    ]
    trailer = _record(
        ("8", 1),  # 1 データ区分
        ("000003", 6),  # 2–7 合計件数
        ("000001750001", 12),  # 8–19 合計金額: 1,500,000 + 250,000 + 1
        (" " * 101, 101),  # 20–120 ダミー
    )
    end = _record(("9", 1), (" " * 119, 119))
    return b"".join(record + b"\r\n" for record in [header, *data, trailer, end])


def test_transfer_file_matches_the_hand_built_records():
    assert transfer_file(originator=ORIGINATOR, transfer_date=TRANSFER_DATE, lines=LINES) == (
        expected_file()
    )


def test_transfer_file_matches_the_golden_file():
    golden = GOLDEN.read_bytes()
    assert golden == expected_file()
    assert transfer_file(originator=ORIGINATOR, transfer_date=TRANSFER_DATE, lines=LINES) == golden


def test_transfer_file_reads_back():
    data = transfer_file(originator=ORIGINATOR, transfer_date=TRANSFER_DATE, lines=LINES)
    assert data.count(b"\r\n") == 6
    assert all(len(record) == 120 for record in data.split(b"\r\n")[:-1])
    data.decode("shift_jis")

    parsed = parse_transfer_file(data)
    header = parsed.header
    assert header["requester_code"] == ORIGINATOR.requester_code
    assert header["requester_name"].rstrip() == ORIGINATOR.name_kana
    assert header["transfer_mmdd"] == "0104"
    assert header["bank_code"] == "0190"
    assert header["bank_name"].rstrip() == "ﾆｼﾆﾂﾎﾟﾝｼﾃｲ"
    assert header["branch_code"] == "001"
    assert header["branch_name"].rstrip() == "ﾃﾝｼﾞﾝ"
    assert (header["account_type"], header["account_number"]) == ("1", "1234567")

    assert parsed.trailer_count == len(LINES) == len(parsed.records)
    assert parsed.trailer_total == sum(line.amount for line in LINES)
    for record, line in zip(parsed.records, LINES, strict=True):
        assert record["bank_code"] == line.bank_code
        assert record["bank_name"].rstrip() == line.bank_name_kana
        assert record["branch_code"] == line.branch_code
        assert record["branch_name"].rstrip() == line.branch_name_kana
        assert record["account_type"] == line.account_type
        assert record["account_number"] == line.account_number
        assert record["holder"].rstrip() == normalize_kana(line.holder_kana)
        assert int(record["amount_yen"]) == line.amount
        assert (record["customer_code_1"] + record["customer_code_2"]).rstrip() == (
            line.customer_code
        )
        assert (record["new_code"], record["transfer_kind"], record["edi_flag"]) == ("0", "7", " ")


def test_transfer_file_with_the_largest_amount():
    line = LINES[1]
    biggest = TransferLine(**{**line.__dict__, "amount": 9_999_999_999})
    parsed = parse_transfer_file(
        transfer_file(originator=ORIGINATOR, transfer_date=TRANSFER_DATE, lines=[biggest])
    )
    assert parsed.records[0]["amount"] == "9999999999"
    assert parsed.trailer_total == 9_999_999_999


def _line(**changes) -> TransferLine:
    return TransferLine(**{**LINES[1].__dict__, **changes})


def _refused(*, lines=None, transfer_date=TRANSFER_DATE, originator=ORIGINATOR) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        transfer_file(
            originator=originator,
            transfer_date=transfer_date,
            lines=[_line()] if lines is None else lines,
        )
    return exc.value.messages


@pytest.mark.parametrize("day", [date(2027, 1, 9), date(2027, 1, 11), date(2026, 12, 31)])
def test_transfer_file_refuses_a_day_banks_are_closed(day):
    (message,) = _refused(transfer_date=day)
    assert day.isoformat() in message


def test_transfer_file_refuses_no_lines():
    assert len(_refused(lines=[])) == 1


@pytest.mark.parametrize("amount", [0, -5, 1.5, 1000.0, True, False, Decimal(100), "100", None])
def test_transfer_file_refuses_bad_amounts(amount):
    (message,) = _refused(lines=[_line(amount=amount)])
    assert "1" in message  # numbered: "Transfer 1: …"


def test_transfer_file_refuses_an_amount_over_ten_digits():
    (message,) = _refused(lines=[_line(amount=10_000_000_000)])
    assert "9,999,999,999" in message


def test_transfer_file_refuses_a_total_over_twelve_digits():
    (message,) = _refused(lines=[_line(amount=9_999_999_999)] * 101)
    assert "1,009,999,999,899" in message


@pytest.mark.parametrize("number", ["123456", "12345678", "12a4567", "１２３４５６７", "", None])
def test_transfer_file_refuses_a_bad_account_number(number):
    assert len(_refused(lines=[_line(account_number=number)])) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"bank_code": "190"},
        {"branch_code": "1"},
        {"account_type": "3"},
        {"holder_kana": "山田"},
        {"holder_kana": "ア" * 31},
        {"bank_name_kana": "ア" * 16},
        {"customer_code": "abc"},
        {"customer_code": "1" * 21},
    ],
)
def test_transfer_file_refuses_bad_fields(changes):
    assert len(_refused(lines=[_line(**changes)])) == 1


def test_transfer_file_reports_every_problem_with_its_line():
    messages = _refused(
        lines=[_line(), _line(amount=0), _line(account_number="1")],
        transfer_date=date(2027, 1, 10),
    )
    assert len(messages) == 3
    assert "2027-01-10" in messages[0]
    assert "2" in messages[1]
    assert "3" in messages[2]


def test_transfer_file_refuses_a_bad_originator():
    from dataclasses import replace

    assert len(_refused(originator=replace(ORIGINATOR, requester_code="12345"))) == 1
    assert len(_refused(originator=replace(ORIGINATOR, name_kana="財団"))) == 1
    assert len(_refused(originator=replace(ORIGINATOR, name_kana="ア" * 41))) == 1


# --- Settings --------------------------------------------------------------------------------

SETTING = {
    "requester_code": "0123456789",
    "name_kana": "コウエキザイダンホウジン　シビックファンド",  # as typed: normalised on read
    "bank_code": "0190",
    "bank_name_kana": "ﾆｼﾆﾂﾎﾟﾝｼﾃｲ",
    "branch_code": "001",
    "branch_name_kana": "ﾃﾝｼﾞﾝ",
    "account_type": "1",
    "account_number": "1234567",
}


def test_originator_from_settings(settings):
    settings.ZENGIN_ORIGINATOR = SETTING
    assert originator_from_settings() == ORIGINATOR


def test_originator_from_settings_missing(settings):
    del settings.ZENGIN_ORIGINATOR
    with pytest.raises(ImproperlyConfigured, match="ZENGIN_ORIGINATOR"):
        originator_from_settings()
    settings.ZENGIN_ORIGINATOR = None
    with pytest.raises(ImproperlyConfigured, match="ZENGIN_ORIGINATOR"):
        originator_from_settings()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"account_number": None}, "account_number"),
        ({"requester_code": "12345"}, "10"),
        ({"name_kana": "財団"}, "財"),
        ({"account_type": "5"}, "1（普通）"),
        ({"iban": "x"}, "iban"),
    ],
)
def test_originator_from_settings_invalid(settings, changes, named):
    settings.ZENGIN_ORIGINATOR = {**SETTING, **changes}
    with pytest.raises(ImproperlyConfigured, match=named):
        originator_from_settings()


def test_originator_from_settings_missing_key(settings):
    settings.ZENGIN_ORIGINATOR = {k: v for k, v in SETTING.items() if k != "branch_code"}
    with pytest.raises(ImproperlyConfigured, match="missing branch_code"):
        originator_from_settings()
