"""portal.web.urls.url_for (the templates' url_for) builds each link's shape once and joins
ids into it: every link must be the string Flask's url_for builds, for every route of the
portal, any ids, with query arguments, under a script root, and Flask's error where Flask
raises one."""

from __future__ import annotations

import flask
import pytest
from werkzeug.routing import BuildError

from portal.web.urls import url_for

IDS = [0, 1, 7, 42, 1000, 918_273, 2**31, 2**63 - 1]


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or not rule.arguments:
            continue
        yield rule


@pytest.mark.parametrize("script_root", ["", "/portal"])
def test_every_route_links_as_flask_builds_it(app, script_root):
    routes = list(_routes(app))
    assert len(routes) > 50
    with app.test_request_context("/", base_url=f"http://portal.example{script_root}"):
        for rule in routes:
            for i, number in enumerate(IDS):
                values = {name: number + k for k, name in enumerate(sorted(rule.arguments))}
                assert url_for(rule.endpoint, **values) == flask.url_for(
                    rule.endpoint, **values), (rule, values)
                extra = {"on": "group & <co>", "page": i, "q": "tpe1 ü"}
                assert url_for(rule.endpoint, **values, **extra) == flask.url_for(
                    rule.endpoint, **values, **extra), (rule, values)


def test_links_of_one_shape_differ_only_by_their_ids(app):
    with app.test_request_context("/"):
        assert url_for("vms.detail", vm_id=5) == "/vms/5"
        assert url_for("vms.detail", vm_id=123456) == "/vms/123456"
        assert url_for("tenants.quota_edit", quota_id=9, on="group") == (
            "/tenants/quotas/9/edit?on=group")
        assert url_for("tenants.quota_edit", quota_id=9, on="tenant") == (
            "/tenants/quotas/9/edit?on=tenant")


def test_what_flask_refuses_is_refused_and_the_unusual_is_flasks(app):
    with app.test_request_context("/"):
        for values in ({"vm_id": -1}, {"vm_id": True}, {"vm_id": "x"}, {}):
            try:
                expected = flask.url_for("vms.detail", **values)
            except (BuildError, ValueError) as error:
                with pytest.raises(type(error)):
                    url_for("vms.detail", **values)
            else:
                assert url_for("vms.detail", **values) == expected
        assert url_for("vms.detail", vm_id=3, _external=True) == flask.url_for(
            "vms.detail", vm_id=3, _external=True)
        assert url_for("vms.detail", vm_id=3, _anchor="x y") == "/vms/3#x%20y"
        with pytest.raises(BuildError):
            url_for("no.such_endpoint", vm_id=3)


def test_templates_link_through_it(app):
    assert app.jinja_env.globals["url_for"] is url_for
