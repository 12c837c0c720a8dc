"""The Japanese catalogue is complete: every translatable string in the code has a translation."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
CATALOGUE = BASE / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def _entries(po_text: str) -> dict[tuple[str, str], list[str]]:
    """msgid (with msgctxt) → msgstr parts, from a .po file. Skips the header entry."""
    entries: dict[tuple[str, str], list[str]] = {}
    fuzzy = False
    ctxt = msgid = None
    msgstrs: list[str] = []
    current = None

    def flush():
        if msgid:
            entries[(ctxt or "", msgid)] = [*msgstrs, "#fuzzy"] if fuzzy else msgstrs

    for line in [*po_text.splitlines(), ""]:
        if not line.strip():
            flush()
            fuzzy, ctxt, msgid, msgstrs, current = False, None, None, [], None
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith("msgctxt "):
            ctxt, current = _unquote(line[8:]), "ctxt"
        elif line.startswith("msgid "):
            msgid, current = _unquote(line[6:]), "id"
        elif line.startswith("msgid_plural "):
            current = "plural"
        elif line.startswith("msgstr"):
            msgstrs.append(_unquote(line.split(" ", 1)[1]))
            current = "str"
        elif line.startswith('"'):
            if current == "ctxt":
                ctxt += _unquote(line)
            elif current == "id":
                msgid += _unquote(line)
            elif current == "str":
                msgstrs[-1] += _unquote(line)
    return entries


def _unquote(s: str) -> str:
    return s.strip()[1:-1]


def test_every_japanese_entry_is_translated_and_not_fuzzy():
    entries = _entries(CATALOGUE.read_text(encoding="utf-8"))
    assert entries, "the Japanese catalogue is empty"
    untranslated = [
        msgid for (_, msgid), strs in entries.items() if "#fuzzy" in strs or not all(strs)
    ]
    assert untranslated == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext's xgettext")
def test_catalogue_holds_every_string_in_the_code(tmp_path):
    # Extract afresh from a copy of the sources and compare the msgids with the committed file.
    copy = tmp_path / "src"
    shutil.copytree(
        BASE,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "node_modules",
            "staticfiles",
            "media",
            "test-artifacts",
            "*.sqlite3",
            "__pycache__",
            "vendor",
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "-l",
            "ja",
            "--no-obsolete",
            "-v",
            "0",
            "--ignore",
            "tests/*",
            "--ignore",
            "bench/*",
        ],
        cwd=copy,
        check=True,
    )
    fresh = set(_entries((copy / "locale/ja/LC_MESSAGES/django.po").read_text(encoding="utf-8")))
    committed = set(_entries(CATALOGUE.read_text(encoding="utf-8")))
    assert sorted(fresh - committed) == []
