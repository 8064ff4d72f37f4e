"""The new / edit / delete pages of one area, over its service (SPEC 8.1).

One `Crud` per blueprint says how the area's pages are named and linked; its two methods
are the bodies of the three routes, the business rules staying in the area's service:

    crud = Crud("rack", _l("Racks"), "racks", "rack_id", RackInvalid,
                new_title=_l("New rack"), create_label=_l("Create rack"))

    def edit(rack_id):
        rack = get_or_404(Rack, rack_id)
        form = RackForm(obj=rack)
        return crud.form_page(form, rack, lambda: service.update_rack(rack, form.fields()),
                              lambda r: _("Rack %(name)s saved.", name=r.name))

The templates are `<folder>/form.html` and `<folder>/confirm_delete.html`, both extending
`_crud_form.html`, which receives `crud`, `obj` (None on "new"), `form` or `refusal`, and
the object under the area's own name (`rack`) as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from portal.extensions import db
from portal.web.forms import show_errors


@dataclass(frozen=True)
class Crud:
    var: str                    # the object's name in the templates: "rack"
    plural: Any                 # the list's crumb: _l("Racks")
    blueprint: str              # "racks": endpoints racks.list / racks.detail, templates racks/
    id_arg: str                 # the detail route's argument: "rack_id"
    invalid: type[Exception]    # the service's refusal, with .errors {field: message}
    new_title: Any = ""         # _l("New rack")
    create_label: Any = ""      # _l("Create rack")
    flash_rest: bool = False    # errors of no field are flashed (pages without form errors)
    refuse_on_page: bool = False  # a refused delete stays on the confirm page (409)

    def list_url(self) -> str:
        return url_for(f"{self.blueprint}.list")

    def url(self, obj: Any) -> str:
        """The object's page, or the list when there is no object."""
        if obj is None:
            return self.list_url()
        return url_for(f"{self.blueprint}.detail", **{self.id_arg: obj.id})

    def render(self, page: str, obj: Any, **context: Any) -> str:
        return render_template(f"{self.blueprint}/{page}", crud=self, obj=obj,
                               **{self.var: obj}, **context)

    def form_page(self, form: Any, obj: Any, save: Callable[[], Any],
                  message: Callable[[Any], str], answer: Callable[[Any], Any] | None = None,
                  **context: Any):
        """GET: the form. POST: save() (on "new" returning the object made), flash
        message(object) and go to its page, or return answer(object) where the page
        answered is another (a webhook's secret is shown once, never through a redirect);
        refused: the form again with the reasons, 422."""
        if form.validate_on_submit():
            try:
                created = save()
            except self.invalid as refused:
                db.session.rollback()
                show_errors(form, refused.errors, flash_rest=self.flash_rest)
            else:
                saved = obj if obj is not None else created
                flash(message(saved), "success")
                return answer(saved) if answer is not None else redirect(self.url(saved))
        status = 422 if request.method == "POST" else 200
        return self.render("form.html", obj, form=form, **context), status

    def delete_page(self, obj: Any, delete: Callable[[], Any], message: str, key: str,
                    **context: Any):
        """GET: the question. POST: delete(), flash the message and go to the list; refused
        (errors[key]): on the confirm page with 409 (the template's `refused` block: by
        default the reason and a way back), or flashed on the object's page."""
        if request.method == "POST":
            try:
                delete()
            except self.invalid as refused:
                db.session.rollback()
                if self.refuse_on_page:
                    return self.render("confirm_delete.html", obj,
                                       refusal=refused.errors[key], **context), 409
                flash(refused.errors[key], "error")
                return redirect(self.url(obj))
            flash(message, "success")
            return redirect(self.list_url())
        return self.render("confirm_delete.html", obj, refusal=None, **context)
