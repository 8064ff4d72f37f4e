"""The zh-TW catalog never drifts from the code: every interface string extracted from
portal/ and templates/ is in the committed template and translated, none fuzzy, and each
translation keeps its placeholders."""

from portal import i18n_catalog


def test_the_catalog_matches_the_code_and_is_complete():
    assert i18n_catalog.problems() == []


def test_pybabel_compiles_the_catalog(tmp_path):
    """A fuzzy or missing header makes `pybabel compile` (make translations, the image)
    skip the whole catalog without failing."""
    import shutil

    from babel.messages.frontend import CommandLineInterface

    target = tmp_path / "zh_Hant_TW" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(i18n_catalog.ZH_TW, target / "messages.po")
    # Its checks fail the build too (make translations): e.g. a plural translation naming
    # a placeholder that the singular msgid lacks.
    assert not CommandLineInterface().run(["pybabel", "-q", "compile", "-d", str(tmp_path)])
    assert (target / "messages.mo").stat().st_size > 1000


def test_a_translation_that_drops_a_placeholder_is_reported(tmp_path, monkeypatch):
    catalog = i18n_catalog.read(i18n_catalog.ZH_TW)
    catalog.add("Widget %(name)s made.", "已建立元件。")
    broken = tmp_path / "messages.po"
    i18n_catalog.write(catalog, broken)
    template = i18n_catalog.read(i18n_catalog.TEMPLATE)
    template.add("Widget %(name)s made.")
    pot = tmp_path / "messages.pot"
    i18n_catalog.write(template, pot)
    monkeypatch.setattr(i18n_catalog, "ZH_TW", broken)
    monkeypatch.setattr(i18n_catalog, "TEMPLATE", pot)
    found = i18n_catalog.problems()
    assert "placeholders differ: 'Widget %(name)s made.' -> '已建立元件。'" in found


def test_merging_two_branches_catalogs_keeps_both_translations(tmp_path):
    ours, theirs = i18n_catalog.read(i18n_catalog.ZH_TW), i18n_catalog.read(i18n_catalog.ZH_TW)
    ours.add("Racks", "機架")
    theirs.add("Servers", "實體機")
    theirs.add("Racks", "機櫃")  # a clash: ours wins
    a, b = tmp_path / "a.po", tmp_path / "b.po"
    i18n_catalog.write(ours, a)
    i18n_catalog.write(theirs, b)
    i18n_catalog.merge(a, b)
    merged = i18n_catalog.read(a)
    assert merged.get("Racks").string == "機架"
    assert merged.get("Servers").string == "實體機"
