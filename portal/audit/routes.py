from flask import Blueprint

from portal.audit import presenter
from portal.audit.lists import day_arg, events
from portal.auth.access import requires
from portal.models import AuditEvent
from portal.web import list_page

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.app_template_filter("audit_changes")
def _audit_changes(event: AuditEvent, links: presenter.Links | None = None) -> list:
    return presenter.change_texts(event, links)


@bp.app_template_filter("audit_sentence")
def _audit_sentence(event: AuditEvent, links: presenter.Links | None = None):
    return presenter.sentence(event, links)


@bp.app_template_filter("audit_field")
def _audit_field(name: str) -> str:
    return presenter.field_label(name)


@bp.app_template_global("audit_object_url")
def _audit_object_url(event: AuditEvent) -> str | None:
    return presenter.object_url(event)


@bp.app_template_global("audit_links")
def _audit_links(events_shown) -> presenter.Links:
    """The names and pages the shown events refer to: one query for the whole page."""
    return presenter.references(events_shown)


@bp.route("/")
@requires("audit")
def list():  # noqa: A001
    return list_page(events, "audit/list.html", since=day_arg("from"), until=day_arg("to"))
