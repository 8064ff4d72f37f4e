from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.baremetals.lists import STATUS_LABELS
from portal.baremetals.service import MAX_URI_LENGTH, ServerFields
from portal.i18n import _l
from portal.models import BAREMETAL_STATUSES
from portal.web.forms import form_id, options

STATUS_CHOICES = options((s, STATUS_LABELS.get(s, s)) for s in BAREMETAL_STATUSES)


def _capacity(label, missing) -> IntegerField:
    return IntegerField(label, default=0, validators=[
        InputRequired(missing), NumberRange(0, None, _l("Zero or more.")),
    ])


class ServerForm(FlaskForm):
    """Parses the server form; rack position, uniqueness and counters are checked by
    portal.baremetals.service. The group is set here on creation only: afterwards a
    server changes group through the move action, which keeps the counters exact."""

    name = StringField(_l("Name"), validators=[InputRequired(_l("Give the server a name."))])
    serial = StringField(_l("Serial"),
                         validators=[InputRequired(_l("Give the serial number."))])
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="active")
    rack_id = SelectField(_l("Rack"), coerce=form_id, validate_choice=False)
    rack_unit = IntegerField(_l("Lowest unit"), validators=[Optional()],
                             description=_l("The lowest unit the server occupies "
                                            "(1 = bottom)."))
    size_u = IntegerField(_l("Height (U)"), default=1, validators=[
        InputRequired(_l("Say how many units.")), NumberRange(1, 60, _l("1 to 60 U."))])
    region = StringField(_l("Region"), description=_l("Empty: the rack's."))
    dc = StringField(_l("DC"), description=_l("Empty: the rack's."))
    group_id = SelectField(_l("Group"), coerce=form_id, validate_choice=False)
    total_cpu = _capacity(_l("CPU (cores)"), _l("Say the server's CPU cores."))
    total_memory = _capacity(_l("Memory (GiB)"), _l("Say the server's memory."))
    total_storage = _capacity(_l("Storage (GiB)"), _l("Say the server's storage."))
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
    status = SelectField(_l("Status"), choices=STATUS_CHOICES)


class MoveForm(FlaskForm):
    group_id = SelectField(_l("Move to group"), coerce=form_id, validate_choice=False)


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"))
    text = TextAreaField(_l("…or paste the CSV here"), render_kw={"rows": 8})
