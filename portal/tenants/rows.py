"""A quota table's display row as a function rather than a Jinja macro
(templates/tenants/_quotas.html calls it for every row not being edited): a group's page
draws fifty rows of three quota bars, and the macro cost more than the rest of the page.
The markup is the macro's own, byte for byte (tests/tenants/test_quota_rows.py); as in
portal/web/widgets.py, strings from the catalogue are markup and the values put into them
are escaped. The row being edited (a form) stays in the template."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from portal.i18n import _, figure, format_datetime
from portal.web.urls import url_for
from portal.web.widgets import _fill, quota_bar

DIMENSIONS = ("cpu", "memory", "storage")


def _written(du: Any) -> str:
    if du.limit is None:
        return _("limit:") + ' <span class="quota-nolimit">' + _("none set") + "</span>"
    if du.written.endswith("%"):
        return _fill(_("limit: %(written)s of group = %(limit)s"), written=du.written,
                     limit=figure(du.limit))
    return _fill(_("limit: %(limit)s (absolute)"), limit=figure(du.limit))


def quota_row(u: Any, on: str, editable: bool = False) -> Markup:
    """One quota (u: a QuotaUsage, portal/tenants/quotas.py) as a table row; on: "group"
    (the row names the tenant) or "tenant" (it names the group); editable: with the
    edit and delete buttons."""
    q = u.quota
    if on == "group":
        holder_url, holder = url_for("tenants.detail", tenant_id=q.tenant_id), q.tenant.name
    else:
        holder_url, holder = url_for("groups.detail", group_id=q.group_id), q.group.name
    holder = escape(holder)
    units = {"cpu": _("cores"), "memory": "GiB", "storage": "GiB"}
    parts = [f'\n<tr id="quota-{q.id}" class="quota-row">\n'
             f'  <th scope="row" class="quota-holder"><a href="{holder_url}">{holder}</a></th>']
    for d in DIMENSIONS:
        du = u.dimensions[d]
        parts.append(
            f'\n  <td class="quota-cell" data-dimension="{d}">\n'
            f"    {quota_bar(du.used, 0, du.limit, units[d])}\n"
            f'    <div class="quota-written">{_written(du)}</div>\n  </td>')
    updated = str(escape(format_datetime(q.updated_at, "short"))) if q.updated_at else "—"
    if q.updated_by_user:
        updated += "<br>" + _fill(_("by %(user)s"), user=q.updated_by_user.username)
    parts.append(f'\n  <td class="quota-updated">{updated}</td>')
    if editable:
        edit_url = url_for("tenants.quota_edit", quota_id=q.id, on=on)
        delete_url = url_for("tenants.quota_delete", quota_id=q.id, on=on)
        label = _fill(_("Edit the quota of %(holder)s"), holder=holder)
        parts.append(
            '\n  <td class="text-end text-nowrap quota-actions">\n'
            f'    <a class="btn btn-sm btn-outline-secondary" href="{edit_url}" '
            f'hx-get="{edit_url}" data-return-focus hx-target="closest tr" '
            f'hx-swap="outerHTML" aria-label="{label}">{_("Edit")}</a>\n'
            f'    <a class="btn btn-sm btn-outline-danger" href="{delete_url}">'
            f'{_("Delete")}</a>\n  </td>')
    parts.append("\n</tr>")
    return Markup("".join(parts))
