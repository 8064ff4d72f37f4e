"""Keeping the zh-TW catalog in step with the code: `python -m portal.i18n_catalog CMD`.

  update   re-extract every interface string into messages.pot and bring the zh-TW
           catalog in line (new strings empty, vanished ones dropped); then translate the
           empty ones (docs/glossary.zh-TW.md has the terms) — `make test` fails until done
  check    what `make test` checks: the template matches the code, every entry is
           translated, none is fuzzy, placeholders agree
  merge OURS THEIRS
           after a git merge that conflicted in the .po: the union of both sides'
           translations (ours wins on a clash), written to OURS; run `update` next

Extraction is deterministic (no locations, sorted, no header), so the template changes
only when a string does, and two branches' catalogs merge by entry.
"""

from __future__ import annotations

import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DIR = ROOT / "portal" / "translations"
TEMPLATE = CATALOG_DIR / "messages.pot"
ZH_TW = CATALOG_DIR / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"
EXTRACT_ARGS = [
    "extract", "-F", str(CATALOG_DIR / "babel.cfg"),
    "-k", "_l", "-k", "_n:1,2", "-k", "_ln:1,2", "-k", "lazy_pgettext:1c,2",
    "--add-comments=TRANSLATORS:", "--no-location", "--sort-output", "--omit-header",
    "--no-wrap",
    # Babel skips folders starting with "_" by default: templates/_macros holds strings too.
    "--ignore-dirs=.* __pycache__",
]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|\{(\w*)\}")


def extract(output: Path) -> None:
    CommandLineInterface().run(["pybabel", "-q", *EXTRACT_ARGS, "-o", str(output), str(ROOT)])


def read(path: Path) -> Catalog:
    """The template is read without a locale: its plural entries have two forms, which
    Chinese (one form) would warn about on every run."""
    with path.open("rb") as handle:
        return read_po(handle, locale=None if path.suffix == ".pot" else "zh_Hant_TW")


FIXED_DATE = datetime(2026, 12, 3, tzinfo=UTC)


def write(catalog: Catalog, path: Path, header: bool = True) -> None:
    """Sorted, without locations; the header is fixed (no dates that change at each run)
    and not fuzzy — `pybabel compile` skips a catalog whose header is fuzzy, or missing."""
    catalog.fuzzy = False
    catalog.project, catalog.version = "resource-portal", ""
    catalog.creation_date = catalog.revision_date = FIXED_DATE
    catalog.last_translator = catalog.language_team = "Resource Portal team"
    catalog.msgid_bugs_address = ""
    catalog.header_comment = ("# Traditional Chinese (Taiwan) interface of the Resource Portal.\n"
                              "# Terms: docs/glossary.zh-TW.md. After changing strings: "
                              "`make extract`, translate, `make test`.")
    with path.open("wb") as handle:
        write_po(handle, catalog, omit_header=not header, no_location=True, sort_output=True,
                 width=0, ignore_obsolete=True)


def update() -> None:
    extract(TEMPLATE)
    template, current = read(TEMPLATE), read(ZH_TW)
    current.update(template, no_fuzzy_matching=True)
    write(current, ZH_TW)


def merge(ours: Path, theirs: Path) -> None:
    mine, other = read(ours), read(theirs)
    for message in other:
        if not message.id or not all(_strings(message)):
            continue
        existing = mine.get(message.id)
        if existing is None:
            mine[message.id] = message
        elif not all(_strings(existing)):
            existing.string = message.string
    write(mine, ours)


def _strings(message) -> tuple[str, ...]:
    value = message.string
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _ids(message) -> tuple[str, ...]:
    value = message.id
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def problems() -> list[str]:
    """Everything that would make the zh-TW interface drift from the code."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        extract(fresh)
        if fresh.read_bytes() != TEMPLATE.read_bytes():
            found.append("messages.pot is not what the code says: run "
                         "`python -m portal.i18n_catalog update` and translate")
    template, catalog = read(TEMPLATE), read(ZH_TW)
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    for message in catalog:
        if not message.id:
            continue
        key = _ids(message)[0]
        if key not in wanted:
            found.append(f"not in the template (obsolete): {key!r}")
            continue
        if message.fuzzy:
            found.append(f"fuzzy: {key!r}")
        if not all(_strings(message)):
            found.append(f"untranslated: {key!r}")
            continue
        expected = set().union(*(placeholders(i) for i in _ids(message)))
        for text in _strings(message):
            if placeholders(text) != expected:
                found.append(f"placeholders differ: {key!r} -> {text!r}")
    have = {_ids(m)[0] for m in catalog if m.id}
    found.extend(f"missing from the catalog: {key!r}" for key in sorted(wanted - have))
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "update":
        update()
        missing = [p for p in problems() if p.startswith(("untranslated", "missing"))]
        print(f"{len(missing)} string(s) to translate in {ZH_TW.relative_to(ROOT)}")
        return 0
    if command == "check":
        found = problems()
        print("\n".join(found) or "catalog complete")
        return 1 if found else 0
    if command == "merge" and len(argv) == 3:
        merge(Path(argv[1]), Path(argv[2]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
