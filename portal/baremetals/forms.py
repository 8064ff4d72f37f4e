from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.baremetals.service import MAX_URI_LENGTH, ServerFields
from portal.i18n import _l
from portal.models import BAREMETAL_STATUSES
from portal.web.forms import form_id, options

STATUS_CHOICES = options((s, s) for s in BAREMETAL_STATUSES)


def _capacity(label: str, unit: str) -> IntegerField:
    return IntegerField(f"{label} ({unit})", default=0, validators=[
        InputRequired(f"Say the server's {label.lower()}."),
        NumberRange(0, None, "Zero or more."),
    ])


class ServerForm(FlaskForm):
    """Parses the server form; rack position, uniqueness and counters are checked by
    portal.baremetals.service. The group is set here on creation only: afterwards a
    server changes group through the move action, which keeps the counters exact."""

    name = StringField("Name", validators=[InputRequired("Give the server a name.")])
    serial = StringField("Serial", validators=[InputRequired("Give the serial number.")])
    status = SelectField("Status", choices=STATUS_CHOICES, default="active")
    rack_id = SelectField("Rack", coerce=form_id, validate_choice=False)
    rack_unit = IntegerField("Lowest unit", validators=[Optional()],
                             description="The lowest unit the server occupies (1 = bottom).")
    size_u = IntegerField("Height (U)", default=1, validators=[
        InputRequired("Say how many units."), NumberRange(1, 60, "1 to 60 U.")])
    region = StringField("Region", description="Empty: the rack's.")
    dc = StringField("DC", description="Empty: the rack's.")
    group_id = SelectField("Group", coerce=form_id, validate_choice=False)
    total_cpu = _capacity("CPU", "cores")
    total_memory = _capacity("Memory", "GiB")
    total_storage = _capacity("Storage", "GiB")
    hypervisor_uri = StringField(
        _l("Hypervisor URI"), render_kw={"maxlength": MAX_URI_LENGTH},
        description=_l("Where the libvirt driver reaches this server, e.g. "
                       "qemu+ssh://root@host/system. Empty: not managed through libvirt."))

    def fields(self, group_id: int | None = None) -> ServerFields:
        group = self.group_id.data if "group_id" in self else group_id
        return ServerFields(
            name=(self.name.data or "").strip(), serial=(self.serial.data or "").strip(),
            status=self.status.data, region=(self.region.data or "").strip(),
            dc=(self.dc.data or "").strip(), rack_id=self.rack_id.data,
            rack_unit=self.rack_unit.data if self.rack_id.data is not None else None,
            size_u=self.size_u.data, group_id=group, total_cpu=self.total_cpu.data,
            total_memory=self.total_memory.data, total_storage=self.total_storage.data,
            hypervisor_uri=(self.hypervisor_uri.data or "").strip() or None,
        )


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=STATUS_CHOICES)


class MoveForm(FlaskForm):
    group_id = SelectField("Move to group", coerce=form_id, validate_choice=False)


class ImportForm(FlaskForm):
    file = FileField("CSV file")
    text = TextAreaField("…or paste the CSV here", render_kw={"rows": 8})
