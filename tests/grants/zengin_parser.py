"""An independent reader for Zengin 総合振込 files, written from the 全銀協 layout (1-based byte
columns) rather than from ``grants.zengin``, so the tests check the writer against the spec and
not against itself. Raises ``ValueError`` on anything malformed."""

from dataclasses import dataclass, field

RECORD_BYTES = 120

# (name, first column, last column), 1-based and inclusive, as the bank sheets print them.
HEADER_LAYOUT = [
    ("data_kind", 1, 1),
    ("kind_code", 2, 3),
    ("code_kind", 4, 4),
    ("requester_code", 5, 14),
    ("requester_name", 15, 54),
    ("transfer_mmdd", 55, 58),
    ("bank_code", 59, 62),
    ("bank_name", 63, 77),
    ("branch_code", 78, 80),
    ("branch_name", 81, 95),
    ("account_type", 96, 96),
    ("account_number", 97, 103),
    ("dummy", 104, 120),
]
DATA_LAYOUT = [
    ("data_kind", 1, 1),
    ("bank_code", 2, 5),
    ("bank_name", 6, 20),
    ("branch_code", 21, 23),
    ("branch_name", 24, 38),
    ("clearing_house", 39, 42),
    ("account_type", 43, 43),
    ("account_number", 44, 50),
    ("holder", 51, 80),
    ("amount", 81, 90),
    ("new_code", 91, 91),
    ("customer_code_1", 92, 101),
    ("customer_code_2", 102, 111),
    ("transfer_kind", 112, 112),
    ("edi_flag", 113, 113),
    ("dummy", 114, 120),
]
TRAILER_LAYOUT = [
    ("data_kind", 1, 1),
    ("count", 2, 7),
    ("total", 8, 19),
    ("dummy", 20, 120),
]
END_LAYOUT = [("data_kind", 1, 1), ("dummy", 2, 120)]


@dataclass
class ParsedFile:
    header: dict[str, str]
    records: list[dict[str, str]] = field(default_factory=list)
    trailer_count: int = 0
    trailer_total: int = 0
    raw_records: list[bytes] = field(default_factory=list)


def _split(record: bytes, layout: list[tuple[str, int, int]]) -> dict[str, str]:
    covered = sum(last - first + 1 for _, first, last in layout)
    if covered != RECORD_BYTES:
        raise ValueError(f"layout covers {covered} bytes")
    # Byte slicing first, then decoding: half-width kana are one byte each in Shift_JIS, and a
    # field boundary must never fall inside a character.
    return {name: record[first - 1 : last].decode("shift_jis") for name, first, last in layout}


def _number(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} is not a zero-padded number: {text!r}")
    return int(text)


def parse_transfer_file(data: bytes) -> ParsedFile:
    """Read a 総合振込 file whose records are each followed by CRLF."""
    if not data.endswith(b"\r\n"):
        raise ValueError("the file does not end with CRLF")
    raw = data[:-2].split(b"\r\n")
    for index, record in enumerate(raw, start=1):
        if len(record) != RECORD_BYTES:
            raise ValueError(f"record {index} is {len(record)} bytes")
        if b"\r" in record or b"\n" in record:
            raise ValueError(f"record {index} holds a stray line break")
    kinds = [record[:1] for record in raw]
    if len(raw) < 4 or kinds[0] != b"1" or kinds[-2] != b"8" or kinds[-1] != b"9":
        raise ValueError(f"record kinds out of order: {kinds!r}")
    if any(kind != b"2" for kind in kinds[1:-2]):
        raise ValueError(f"data records expected between header and trailer: {kinds!r}")

    header = _split(raw[0], HEADER_LAYOUT)
    if header["kind_code"] != "21" or header["code_kind"] != "0":
        raise ValueError(f"not a JIS 総合振込 header: {header!r}")
    records = [_split(record, DATA_LAYOUT) for record in raw[1:-2]]
    for record in records:
        record["amount_yen"] = str(_number(record["amount"], "amount"))
    trailer = _split(raw[-2], TRAILER_LAYOUT)
    end = _split(raw[-1], END_LAYOUT)
    if end["dummy"].strip(" "):
        raise ValueError("the end record is not blank")
    return ParsedFile(
        header=header,
        records=records,
        trailer_count=_number(trailer["count"], "count"),
        trailer_total=_number(trailer["total"], "total"),
        raw_records=raw,
    )
