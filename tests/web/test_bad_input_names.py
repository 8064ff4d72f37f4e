"""Names people type (SPEC §7): one shared validator refuses invisible and control
characters in every name-like field, for pages and API alike, trims and NFC-normalises
what it keeps, and keeps letters of every script; descriptions are held to the API's
limits on the pages too."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Tenant, User
from tests import factories as f
from tests.api.conftest import Api, token_for
from tests.baremetals.pages import client_for, post, text
from tests.web.bad_input import estate, snapshot

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
HIDDEN = [("\u202e", "U+202E"), ("\u200b", "U+200B"), ("\u200d", "U+200D"),
          ("\x07", "U+0007"), ("\ufeff", "U+FEFF"), ("\u2066", "U+2066"), ("\u3164", "U+3164")]

# (url, form, the name-like field) — the field's value gets the hidden character.
NAME_FORMS = [
    ("/racks/new", {"name": "rack-x", "region": "r1", "dc": "dc1", "height_u": "42"}, "name"),
    ("/racks/new", {"name": "rack-x", "region": "r1", "dc": "dc1", "height_u": "42"}, "region"),
    ("/servers/new", {"name": "srv-x", "serial": "SN-X", "status": "active", "size_u": "1",
                      "total_cpu": "8", "total_memory": "8", "total_storage": "8"}, "name"),
    ("/servers/new", {"name": "srv-x", "serial": "SN-X", "status": "active", "size_u": "1",
                      "total_cpu": "8", "total_memory": "8", "total_storage": "8"}, "serial"),
    ("/groups/new", {"name": "group-x"}, "name"),
    ("/tenants/new", {"name": "tenant-x"}, "name"),
    ("/flavors/new", {"name": "flavor-x", "cpu": "2", "memory": "4", "storage": "20",
                      "generation": "1", "is_active": "y"}, "name"),
    ("/meshes/new", {"name": "mesh-x", "mesh_type": "istio", "version": "1.23",
                     "status": "active"}, "name"),
    ("/maintainers/new", {"name": "Chen Mei-ling", "account": "mlchen", "status": "active"},
     "name"),
    ("/maintainers/new", {"name": "Chen Mei-ling", "account": "mlchen", "status": "active"},
     "account"),
    ("/maintainers/groups/new", {"name": "Platform SRE"}, "name"),
    ("/vms/new", {"tenant_id": "{tenant}", "group_id": "{group}", "spec_id": "{flavor}",
                  "name": "web-01", "count": "1", "action": "create"}, "name"),
    ("/clusters/new", {"tenant_id": "{tenant}", "group_id": "{group}", "name": "k8s-x",
                       "control_planes": "1", "control_plane_flavor_id": "{flavor}",
                       "workers": "0", "action": "create"}, "name"),
]


def _ids(objects) -> dict[str, int]:
    return {name: getattr(objects, name).id for name in ("tenant", "group", "flavor")}


@pytest.mark.parametrize(("url", "data", "field"), NAME_FORMS,
                         ids=[f"{u} {field}" for u, _, field in NAME_FORMS])
def test_a_name_with_an_invisible_character_is_refused_on_the_page(app, url, data, field):
    objects = estate()
    client = client_for(app, "ops", operator=True)
    values = {k: v.format(**_ids(objects)) for k, v in data.items()}
    values[field] = values[field][:3] + RLO + values[field][3:]
    before = snapshot()
    response = post(client, url, values)
    assert response.status_code in (200, 422)
    assert "contains an invisible or control character (U+202E)" in text(response)
    assert snapshot() == before


@pytest.mark.parametrize(("char", "code"), HIDDEN)
def test_each_kind_of_hidden_character_is_named_in_the_api(app, char, code):
    token = token_for(f.user("ops", operator=True))
    before = snapshot()
    response = Api(app.test_client()).post("/tenants", token, {"name": f"acme{char}-prod"})
    assert response.status_code == 422
    assert response.get_json()["errors"]["name"] == (
        f"The tenant name contains an invisible or control character ({code}); "
        "retype it without.")
    assert snapshot() == before


API_NAMES = [
    ("/racks", {"name": "rack-x", "region": "r1", "dc": "dc1"}, "name"),
    ("/baremetal-groups", {"name": "group-x"}, "name"),
    ("/vm-specs", {"name": "flavor-x", "cpu": 2, "memory": 4, "storage": 20}, "name"),
    ("/service-meshes", {"name": "mesh-x", "mesh_type": "istio", "version": "1.23"}, "name"),
    ("/maintainers", {"name": "Chen", "account": "chen"}, "account"),
    ("/maintainer-groups", {"name": "SRE"}, "name"),
]


@pytest.mark.parametrize(("path", "body", "field"), API_NAMES, ids=[p for p, _, _ in API_NAMES])
def test_the_api_refuses_the_same_names_through_the_same_services(app, path, body, field):
    token = token_for(f.user("ops", operator=True))
    before = snapshot()
    body = {**body, field: body[field][:2] + "\u200b" + body[field][2:]}
    response = Api(app.test_client()).post(path, token, body)
    assert response.status_code == 422, response.get_json()
    assert "invisible or control character (U+200B)" in response.get_json()["detail"]
    assert snapshot() == before


def test_names_in_every_script_stay_valid_and_are_trimmed_and_normalised(any_app):
    client = client_for(any_app, "ops", operator=True)
    response = post(client, "/tenants/new", {"name": "  研發中心  "})
    assert response.status_code == 302
    token = token_for(f.user("bot", operator=True))
    decomposed = "Cafe\u0301"  # e + COMBINING ACUTE ACCENT, as some keyboards send it
    assert Api(any_app.test_client()).post("/tenants", token,
                                           {"name": decomposed}).status_code == 201
    names = set(db.session.scalars(select(Tenant.name)))
    assert names == {"研發中心", "Caf\u00e9"}


def test_a_username_with_a_hidden_character_is_refused(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", f"ad{RLO}min", "--password", "a-long-enough-passphrase-7"])
    assert result.exit_code != 0
    assert "invisible or control character (U+202E)" in result.output
    assert db.session.scalars(select(User)).all() == []


# Lengths: the API's limits hold on the pages too --------------------------------------

LONG_TEXT = [
    ("/tenants/new", {"name": "tenant-x"}, "description", 10_000),
    ("/groups/new", {"name": "group-x"}, "description", 10_000),
    ("/flavors/new", {"name": "flavor-x", "cpu": "2", "memory": "4", "storage": "20",
                      "generation": "1", "is_active": "y"}, "description", 10_000),
    ("/meshes/new", {"name": "mesh-x", "mesh_type": "istio", "version": "1.23",
                     "status": "active"}, "description", 10_000),
    ("/maintainers/groups/new", {"name": "Platform SRE"}, "description", 10_000),
    ("/racks/new", {"name": "rack-x", "region": "r1", "dc": "dc1", "height_u": "42"},
     "network_notes", 20_000),
    ("/clusters/new", {"tenant_id": "{tenant}", "group_id": "{group}", "name": "k8s-x",
                       "control_planes": "1", "control_plane_flavor_id": "{flavor}",
                       "workers": "0", "action": "create"}, "description", 2_000),
]


@pytest.mark.parametrize(("url", "data", "field", "limit"), LONG_TEXT,
                         ids=[u for u, *_ in LONG_TEXT])
def test_text_beyond_the_api_limit_is_refused_on_the_page(app, url, data, field, limit):
    objects = estate()
    client = client_for(app, "ops", operator=True)
    values = {k: v.format(**_ids(objects)) for k, v in data.items()}
    values[field] = "x" * (limit + 1)
    before = snapshot()
    response = post(client, url, values)
    assert response.status_code in (200, 422)
    assert f"at most {limit:,} characters (this one has {limit + 1:,})" in text(response)
    assert snapshot() == before


def test_the_character_and_length_refusals_read_chinese_in_zh_tw(app):
    """portal/text.py's two sentences, which every name-like field shares, in the reader's
    language: the field's own word, the code point, the limit with grouping."""
    token = token_for(f.user("ops", operator=True))
    api = Api(app.test_client())
    zh = {"Accept-Language": "zh-TW"}
    before = snapshot()
    hidden = api.post("/tenants", token, {"name": f"acme{RLO}-prod"}, headers=zh)
    long = api.post("/tenants", token, {"name": "acme", "description": "x" * 10_001},
                    headers=zh)
    assert hidden.status_code == long.status_code == 422
    assert hidden.get_json()["errors"]["name"] == (
        "租戶名稱含有看不見的字元或控制字元（U+202E）；請去掉後重新輸入。")
    # The API's own length check (pydantic) answers in the reader's language as well.
    assert long.get_json()["errors"]["description"] == "最多 10000 個字元。"
    assert snapshot() == before
    english = api.post("/tenants", token, {"name": "acme", "description": "x" * 10_001})
    assert english.get_json()["errors"]["description"] == (
        "String should have at most 10000 characters")


def test_the_length_refusal_on_a_page_reads_chinese_in_zh_tw(app):
    client = client_for(app, "ops", operator=True)
    before = snapshot()
    response = post(client, "/tenants/new", {"name": "acme", "description": "x" * 10_001},
                    headers={"Accept-Language": "zh-TW"})
    assert response.status_code in (200, 422)
    assert "說明最多 10,000 個字元（目前有 10,001 個）。" in text(response)
    assert snapshot() == before
