"""The tax receipt (寄附金受領証明書) as a PDF, drawn with ReportLab.

The certificate is a Japanese tax document, written in Japanese whatever language the site is
shown in: its wording is fixed here (not translated) because a tax office reads it, not the
donor's browser. The fonts are ReportLab's built-in CID fonts (明朝 for text, ゴシック for
headings), so no font file is needed; PDF viewers supply the glyphs.
"""

import datetime as dt
import io
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import translation
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from accounts.formatting import format_yen
from proposals.fiscal import JAPAN

from .models import Receipt
from .receipts import RECEIPT_LANGUAGE, purpose_of

MINCHO = "HeiseiMin-W3"
GOTHIC = "HeiseiKakuGo-W5"
for _font in (MINCHO, GOTHIC):
    if _font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_font))

# Day each era began (calendar dates, not fiscal years: proposals.fiscal.era_label names 年度).
_ERAS = [
    (dt.date(2019, 5, 1), "令和"),
    (dt.date(1989, 1, 8), "平成"),
    (dt.date(1926, 12, 25), "昭和"),
]

TITLE_SINGLE = "寄附金受領証明書"
TITLE_ANNUAL = "寄附金受領証明書（年間）"
VOID_RED = colors.Color(0.8, 0.05, 0.05)
LINE_GREY = colors.Color(0.55, 0.55, 0.55)
SHADE = colors.Color(0.94, 0.94, 0.94)

DEDUCTION_NOTE = (
    "当法人は公益財団法人であり、所得税法第78条第2項第3号に規定する特定公益増進法人に該当します。"
    "当法人に対する寄附金は、個人の方は所得税の寄附金控除の対象となり、法人の方は法人税法第37条第4項"
    "の規定により損金算入の対象となります。お住まいの都道府県・市区町村が条例で指定している場合は、"
    "個人住民税の寄附金税額控除の対象にもなります。"
)
KEEP_NOTE = (
    "確定申告で寄附金控除を受ける際に必要となりますので、この証明書は大切に保管してください。"
)
ANNUAL_NOTE = (
    "この証明書は、上記の期間に受領した寄附金（返金した額を除きます）をまとめて証明するものです。"
    "同じ寄附について個別に発行した受領証明書と重ねて控除を受けることはできません。"
)


def wareki(day: dt.date) -> str:
    """A calendar date in its Japanese era.

    2026-05-01 → 令和8年5月1日; 2019-05-01 → 令和元年5月1日; 2019-04-30 → 平成31年4月30日.
    """
    for first_day, era in _ERAS:
        if day >= first_day:
            number = day.year - first_day.year + 1
            return f"{era}{'元' if number == 1 else number}年{day.month}月{day.day}日"
    raise ValueError(f"No era name for {day}")


def japanese_date(day: dt.date) -> str:
    """令和8年5月1日（2026年5月1日）: the era year, with the western year beside it."""
    return f"{wareki(day)}（{day.year}年{day.month}月{day.day}日）"


def _japan_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(JAPAN).date()


def yen_kanji(amount: int) -> str:
    """金12,345円 — how an amount is written on a Japanese receipt."""
    return f"金{amount:,}円"


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=MINCHO, fontSize=10.5, leading=16, wordWrap="CJK")
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8.5, leading=13),
        "title": ParagraphStyle(
            "title", fontName=GOTHIC, fontSize=21, leading=28, alignment=TA_CENTER
        ),
        "heading": ParagraphStyle("heading", parent=body, fontName=GOTHIC, fontSize=11.5),
        "name": ParagraphStyle("name", parent=body, fontSize=17, leading=24),
        "amount": ParagraphStyle("amount", parent=body, fontName=GOTHIC, fontSize=19, leading=26),
        "right": ParagraphStyle("right", parent=body, alignment=TA_RIGHT),
        "void": ParagraphStyle(
            "void", parent=body, fontName=GOTHIC, textColor=VOID_RED, fontSize=11, leading=17
        ),
        "foundation": ParagraphStyle("foundation", parent=body, fontName=GOTHIC, fontSize=12.5),
    }


def _text(value: str) -> str:
    """Donor-supplied text, safe inside a Paragraph's markup."""
    return escape(value or "")


def _header(receipt: Receipt, styles) -> list:
    issued_on = _japan_day(receipt.issued_at)
    rows = [
        [
            Paragraph("証明書番号", styles["body"]),
            Paragraph(receipt.display_number, styles["body"]),
        ],
        [Paragraph("発行日", styles["body"]), Paragraph(japanese_date(issued_on), styles["body"])],
    ]
    numbers = Table(rows, colWidths=[24 * mm, 62 * mm], hAlign="RIGHT")
    numbers.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE_GREY),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    title = TITLE_ANNUAL if receipt.kind == Receipt.Kind.ANNUAL else TITLE_SINGLE
    return [numbers, Spacer(1, 8 * mm), Paragraph(title, styles["title"]), Spacer(1, 6 * mm)]


def _void_notice(receipt: Receipt, styles) -> list:
    if receipt.voided_at is None:
        return []
    lines = [
        "無効（VOID）：この証明書は無効です。寄附金控除の申告には使用できません。",
        f"無効とした日：{japanese_date(_japan_day(receipt.voided_at))}",
    ]
    if receipt.void_reason:
        lines.append(f"理由：{_text(receipt.void_reason)}")
    notice = Table([[Paragraph("<br/>".join(lines), styles["void"])]], colWidths=[170 * mm])
    notice.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, VOID_RED),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return [notice, Spacer(1, 6 * mm)]


def _donor(receipt: Receipt, styles) -> list:
    address = []
    if receipt.donor_postal_code:
        address.append(f"〒{_text(receipt.donor_postal_code)}")
    if receipt.donor_address:
        address.append(_text(receipt.donor_address))
    name = Table(
        [[Paragraph(f"{_text(receipt.donor_name)}　様", styles["name"])]],
        colWidths=[105 * mm],
        hAlign="LEFT",
    )
    name.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.8, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [Paragraph("<br/>".join(address), styles["body"]), Spacer(1, 2 * mm), name]


def _amount(receipt: Receipt, styles) -> list:
    box = Table(
        [
            [
                Paragraph("寄附金額", styles["heading"]),
                Paragraph(
                    f"{yen_kanji(receipt.amount)}"
                    f'<font name="{MINCHO}" size="12">　（{format_yen(receipt.amount)}）</font>',
                    styles["amount"],
                ),
            ]
        ],
        colWidths=[32 * mm, 138 * mm],
    )
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.2, colors.black),
                ("BACKGROUND", (0, 0), (0, 0), SHADE),
                ("LINEAFTER", (0, 0), (0, 0), 0.6, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 7),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 9),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return [box]


def _details_single(receipt: Receipt, styles) -> list:
    received = japanese_date(receipt.received_on) if receipt.received_on else ""
    rows = [
        [Paragraph("受領年月日", styles["body"]), Paragraph(received, styles["body"])],
        [
            Paragraph("寄附の目的", styles["body"]),
            Paragraph(_text(receipt.purpose), styles["body"]),
        ],
    ]
    table = Table(rows, colWidths=[32 * mm, 138 * mm])
    table.setStyle(_grid_style(header=False))
    return [
        Paragraph("上記の金額を、寄附金として確かに受領いたしました。", styles["body"]),
        Spacer(1, 4 * mm),
        table,
    ]


def _details_annual(receipt: Receipt, styles) -> list:
    year = receipt.year
    period = f"{japanese_date(dt.date(year, 1, 1))}から{japanese_date(dt.date(year, 12, 31))}まで"
    summary = Table(
        [
            [Paragraph("対象期間", styles["body"]), Paragraph(period, styles["body"])],
            [
                Paragraph("寄附の目的", styles["body"]),
                Paragraph(_text(receipt.purpose), styles["body"]),
            ],
        ],
        colWidths=[32 * mm, 138 * mm],
    )
    summary.setStyle(_grid_style(header=False))
    rows = [
        [
            Paragraph("受領年月日", styles["body"]),
            Paragraph("内訳（寄附の目的）", styles["body"]),
            Paragraph("金額", styles["right"]),
        ]
    ]
    with translation.override(RECEIPT_LANGUAGE):
        for gift in receipt.gifts.select_related("project").order_by("received_at", "pk"):
            rows.append(
                [
                    Paragraph(wareki(_japan_day(gift.received_at)), styles["body"]),
                    Paragraph(_text(purpose_of(gift)), styles["small"]),
                    Paragraph(format_yen(gift.net_amount), styles["right"]),
                ]
            )
    rows.append(
        [
            Paragraph("合計", styles["heading"]),
            "",
            Paragraph(format_yen(receipt.amount), styles["right"]),
        ]
    )
    table = Table(rows, colWidths=[36 * mm, 104 * mm, 30 * mm], repeatRows=1)
    style = _grid_style(header=True)
    style.add("SPAN", (0, -1), (1, -1))
    style.add("BACKGROUND", (0, -1), (-1, -1), SHADE)
    table.setStyle(style)
    return [
        Paragraph(
            "上記の金額を、対象期間に寄附金として確かに受領いたしました。内訳は次のとおりです。",
            styles["body"],
        ),
        Spacer(1, 4 * mm),
        summary,
        Spacer(1, 4 * mm),
        table,
    ]


def _grid_style(*, header: bool) -> TableStyle:
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.5, LINE_GREY),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ]
    )
    if header:
        style.add("BACKGROUND", (0, 0), (-1, 0), SHADE)
    else:
        style.add("BACKGROUND", (0, 0), (0, -1), SHADE)
    return style


def _notes(receipt: Receipt, styles) -> list:
    notes = [DEDUCTION_NOTE, KEEP_NOTE]
    if receipt.kind == Receipt.Kind.ANNUAL:
        notes.append(ANNUAL_NOTE)
    return [Paragraph(f"※ {note}", styles["small"]) for note in notes]


def _foundation(styles) -> list:
    lines = [
        Paragraph("（証明者）", styles["small"]),
        Paragraph(_text(settings.FOUNDATION_NAME), styles["foundation"]),
        Paragraph(_text(settings.FOUNDATION_ADDRESS), styles["body"]),
        Paragraph(_text(settings.FOUNDATION_REPRESENTATIVE), styles["body"]),
        Paragraph(_text(settings.FOUNDATION_CERTIFICATION), styles["small"]),
    ]
    block = Table([[line] for line in lines], colWidths=[100 * mm], hAlign="RIGHT")
    block.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return [block]


def _page_decoration(receipt: Receipt):
    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(MINCHO, 8)
        canvas.setFillColor(LINE_GREY)
        canvas.drawRightString(
            A4[0] - 20 * mm, 12 * mm, f"証明書番号 {receipt.display_number}　{doc.page}頁"
        )
        if receipt.voided_at is not None:
            canvas.setFillColor(VOID_RED)
            canvas.setStrokeColor(VOID_RED)
            canvas.setFillAlpha(0.18)
            canvas.setStrokeAlpha(0.5)
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(35)
            canvas.setFont(GOTHIC, 110)
            canvas.drawCentredString(0, 10 * mm, "無効")
            canvas.setFont("Helvetica-Bold", 72)
            canvas.drawCentredString(0, -22 * mm, "VOID")
        canvas.restoreState()

    return draw


def render_receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as an A4 PDF in Japanese: a void receipt is marked 無効 / VOID."""
    styles = _styles()
    buffer = io.BytesIO()
    title = TITLE_ANNUAL if receipt.kind == Receipt.Kind.ANNUAL else TITLE_SINGLE
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=20 * mm,
        title=f"{title} {receipt.display_number}",
        author=settings.FOUNDATION_NAME,
        subject=receipt.display_number,
    )
    details = (
        _details_annual(receipt, styles)
        if receipt.kind == Receipt.Kind.ANNUAL
        else _details_single(receipt, styles)
    )
    story = [
        *_header(receipt, styles),
        *_void_notice(receipt, styles),
        *_donor(receipt, styles),
        Spacer(1, 7 * mm),
        *_amount(receipt, styles),
        Spacer(1, 6 * mm),
        *details,
        Spacer(1, 8 * mm),
        # The certifier and the notes stay on one page, below the amounts they certify.
        KeepTogether([*_foundation(styles), Spacer(1, 8 * mm), *_notes(receipt, styles)]),
    ]
    decoration = _page_decoration(receipt)
    document.build(story, onFirstPage=decoration, onLaterPages=decoration)
    return buffer.getvalue()
