from flask import Blueprint, render_template
from flask_login import current_user

from portal.auth.access import can, get_or_404, requires
from portal.i18n import _, _l
from portal.meshes import service
from portal.meshes.forms import MeshForm
from portal.meshes.lists import meshes
from portal.models import ServiceMesh
from portal.web import list_page
from portal.web.crud import Crud

bp = Blueprint("meshes", __name__, url_prefix="/meshes")
crud = Crud("mesh", _l("Service meshes"), "meshes", "mesh_id", service.MeshInvalid,
            new_title=_l("New service mesh"), create_label=_l("Create mesh"))


@bp.route("/")
@requires("meshes")
def list():  # noqa: A001
    return list_page(meshes, "meshes/list.html")


@bp.route("/<int:mesh_id>")
@requires("meshes")
def detail(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    return render_template("meshes/detail.html", mesh=mesh, editable=can("meshes", "write"),
                           **service.mesh_overview(mesh))


@bp.route("/new", methods=["GET", "POST"])
@requires("meshes", "write")
def new():
    form = MeshForm()
    return crud.form_page(form, None, lambda: service.create_mesh(form.data, current_user),
                          lambda mesh: _("Service mesh %(name)s created.", name=mesh.name))


@bp.route("/<int:mesh_id>/edit", methods=["GET", "POST"])
@requires("meshes", "write")
def edit(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    form = MeshForm(obj=mesh)
    return crud.form_page(form, mesh, lambda: service.update_mesh(mesh, form.data, current_user),
                          lambda mesh: _("Service mesh %(name)s saved.", name=mesh.name))


@bp.route("/<int:mesh_id>/delete", methods=["GET", "POST"])
@requires("meshes", "write")
def delete(mesh_id: int):
    mesh = get_or_404(ServiceMesh, mesh_id)
    return crud.delete_page(mesh, lambda: service.delete_mesh(mesh, current_user),
                            _("Service mesh %(name)s deleted.", name=mesh.name), "mesh")
