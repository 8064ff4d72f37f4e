"""The English-leak finder itself: what it reports and what it leaves alone."""

from tests.i18n.leaks import english_left, readable_text


def test_it_reports_interface_english_and_read_attributes():
    html = """<h1>機架</h1><button type="submit">Delete</button>
    <input type="search" placeholder="Search names"><input type="submit" value="Save">
    <a href="/x" title="Open the rack" aria-label="機架">x</a>"""
    assert english_left(html) == ["Delete", "Search", "names", "Save", "Open", "the", "rack"]


def test_data_code_scripts_hidden_parts_and_allowed_terms_are_not_interface_text():
    html = """<td>tpe1-r01</td><td>Platform team</td><code>flask --app wsgi</code>
    <script>var x = "Delete";</script><span translate="no">Chen Mei-ling</span>
    <p hidden>Loading</p><td>8 CPU · 32 GiB</td><td>https://hooks.example/ci</td>"""
    assert english_left(html, data={"tpe1-r01", "Platform team"}) == []


def test_readable_text_keeps_the_order_of_the_page():
    assert readable_text("<p>一</p><p title='two'>三</p>").split("\n") == ["一", "two", "三"]
