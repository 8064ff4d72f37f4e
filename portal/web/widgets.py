"""The display widgets drawn most often — a status badge, a capacity bar, a quota bar — as
functions rather than Jinja macros (templates/_macros/ui.html exports them as
``ui.status_badge``, ``ui.capacity_bar`` and ``ui.quota_bar``). A page of servers or quotas
draws a few hundred of them, and a macro call costs several times what its markup does.
The markup is the macros' own, byte for byte (tests/web/test_widgets.py): strings from the
catalogue are markup, the values put into them are escaped, as the templates' gettext does.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from markupsafe import Markup, escape

from portal.i18n import _, figure
from portal.web.bars import capacity_bar as capacity_figures
from portal.web.bars import quota_bar as quota_figures
from portal.web.labels import status_label

# Status → tone. Tones are colour families defined in portal.css (.status-<tone>).
STATUS_TONES = {
    "active": "ok", "succeeded": "ok",
    "provisioning": "busy", "deleting": "busy", "migrating": "busy",
    "pending": "wait", "queued": "wait", "claimed": "wait",
    "maintenance": "warn",
    "offline": "off", "inactive": "off",
    "error": "bad", "failed": "bad",
    "decommissioned": "gone", "deleted": "gone", "cancelled": "gone",
}
_DOTS = {"busy": '<span class="status-dot is-pulsing" aria-hidden="true"></span>',
         "unknown": ""}
_DOT = '<span class="status-dot" aria-hidden="true"></span>'


def _fill(text: str, **values: Any) -> str:
    """A translated string as the templates' gettext uses it: markup, the values put into
    it escaped (returned as markup's text, to be joined with other such text)."""
    return str(Markup(text) % values)


def status_badge(status: Any, kind: str | None = None) -> Markup:
    """A status as a coloured badge with its translated label; kind: what the status
    belongs to, when "active" reads differently (portal/web/labels.py)."""
    key = str(status or "").lower()
    tone = STATUS_TONES.get(key, "unknown")
    label = escape(status_label(key, kind)) if status else "—"
    return Markup(f'<span class="badge status-badge status-{tone}" data-status="{escape(key)}">'
                  f'{_DOTS.get(tone, _DOT)}{label}</span>')


def _label_span(label: Any) -> str:
    return f'<span class="capacity-label">{escape(label)}</span>' if label else ""


def capacity_bar(used: Any, total: Any, label: Any = None, unit: Any = "",
                 show_free: bool = False) -> Markup:
    """"used / total unit (pct%)" over a thin bar: green < 70 %, amber < 90 %, red above;
    show_free: how much is left ("92 free / 96 cores") where lists sort by free capacity."""
    head = '<div class="capacity">\n  <div class="capacity-head">' + _label_span(label)
    if not total:
        return Markup(head + '<span class="capacity-figures text-body-secondary">—</span>'
                      "\n  </div>\n</div>")
    bar = capacity_figures(used, total)
    usage = _("Usage")  # outside the f-string: Babel does not extract from inside one
    unit_text = f" {escape(unit)}" if unit else ""
    if show_free:
        figures = (_fill(_("%(free)s free / %(total)s"), free=figure(total - used),
                      total=figure(total))
                   + unit_text + ' <span class="capacity-pct">'
                   + _fill(_("(%(pct)s%% used)"), pct=bar.pct) + "</span>")
    else:
        figures = (f"{figure(used)} / {figure(total)}{unit_text} "
                   f'<span class="capacity-pct">({bar.pct}%)</span>')
    return Markup(
        f'{head}\n    <span class="capacity-figures">{figures}</span>\n  </div>\n'
        f'  <div class="progress" role="progressbar" '
        f'aria-label="{escape(label or Markup(usage))}"\n'
        f'       aria-valuenow="{bar.width}" aria-valuemin="0" aria-valuemax="100">\n'
        f'    <div class="progress-bar bg-{bar.tone} pct-{bar.width}"></div>\n  </div>\n</div>')


def quota_bar(used: Any, request: Any, limit: Any, unit: Any = "", label: Any = None) -> Markup:
    """A quota after a request: used (solid) + this request (striped) out of limit; limit
    None means unlimited; used + request over the limit turns red and says by how much."""
    after = used + request
    unit_text = f" {escape(unit)}" if unit else ""
    # Without a request in hand (quota tables), "+ 0" is noise: the usage alone.
    plus = f" + {figure(request)}" if request else ""
    head = ('\n<div class="capacity quota">\n  <div class="capacity-head">'
            + _label_span(label))
    if limit is None:
        no_limit = _("No limit")  # outside the f-string, for Babel
        return Markup(f'{head}<span class="capacity-figures">{figure(used)}{plus}{unit_text} · '
                      f'<span class="quota-nolimit">{no_limit}</span></span>'
                      "\n  </div>\n</div>")
    bar = quota_figures(used, request, limit)
    figures = _fill(_("%(used)s of %(limit)s"), used=Markup(f"{figure(used)}{plus}"),
                 limit=figure(limit)) + unit_text
    if bar.over:
        figures += (' · <span class="quota-over">'
                    + _fill(_("over by %(amount)s"), amount=figure(after - limit))
                    + unit_text + "</span>")
    elif limit:
        figures += f' <span class="capacity-pct">({bar.pct}%)</span>'
    if label:
        in_use = Markup(_fill(_("%(label)s in use"), label=label))
        this_request = Markup(_fill(_("%(label)s, this request"), label=label))
    else:
        in_use, this_request = Markup(_("In use")), Markup(_("This request"))
    return Markup(
        f'{head}<span class="capacity-figures">{figures}</span>\n  </div>\n'
        f'  <div class="progress-stacked{" is-over" if bar.over else ""}">\n'
        f'    <div class="progress pct-{bar.used_width}" role="progressbar" '
        f'aria-label="{escape(in_use)}"\n'
        f'         aria-valuenow="{bar.used_width}" aria-valuemin="0" aria-valuemax="100">\n'
        f'      <div class="progress-bar bg-{bar.tone}"></div>\n    </div>\n'
        f'    <div class="progress pct-{bar.request_width}" role="progressbar" '
        f'aria-label="{escape(this_request)}"\n'
        f'         aria-valuenow="{bar.request_width}" aria-valuemin="0" aria-valuemax="100">\n'
        f'      <div class="progress-bar progress-bar-striped bg-{bar.tone} quota-request">'
        "</div>\n    </div>\n  </div>\n</div>")


def init_widgets(app: Flask) -> None:
    app.jinja_env.globals["status_badge_widget"] = status_badge
    app.jinja_env.globals["capacity_bar_widget"] = capacity_bar
    app.jinja_env.globals["quota_bar_widget"] = quota_bar
