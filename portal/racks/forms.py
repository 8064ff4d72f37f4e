from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.i18n import _l
from portal.racks.service import MAX_ASN, RackFields


class RackForm(FlaskForm):
    """Parses the rack form; uniqueness and servers that would stick out are checked by
    portal.racks.service."""

    name = StringField(_l("Name"), validators=[InputRequired(_l("Give the rack a name."))])
    region = StringField(_l("Region"), validators=[InputRequired(_l("Say which region."))])
    dc = StringField(_l("DC"), validators=[InputRequired(_l("Say which datacenter."))])
    location = StringField(_l("Location"), description=_l("Room, row, position: free text."))
    height_u = IntegerField(_l("Height (U)"), default=42,
                            validators=[InputRequired(_l("Say how many units.")),
                                        NumberRange(1, 60, _l("A rack is 1 to 60 U high."))])
    bgp_asn = IntegerField(_l("BGP ASN"), validators=[
        Optional(), NumberRange(1, MAX_ASN, _l("An ASN is between 1 and %(max)s.",
                                               max=MAX_ASN))])
    network_notes = TextAreaField(_l("Network notes"), render_kw={"rows": 5},
                                  description=_l("BGP peers, ToR switches, VLANs…"))

    def fields(self) -> RackFields:
        return RackFields(
            name=(self.name.data or "").strip(), region=(self.region.data or "").strip(),
            dc=(self.dc.data or "").strip(), location=(self.location.data or "").strip(),
            height_u=self.height_u.data, bgp_asn=self.bgp_asn.data,
            network_notes=(self.network_notes.data or "").strip(),
        )
