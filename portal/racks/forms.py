from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from portal.racks.service import MAX_ASN, RackFields


class RackForm(FlaskForm):
    """Parses the rack form; uniqueness and servers that would stick out are checked by
    portal.racks.service."""

    name = StringField("Name", validators=[InputRequired("Give the rack a name.")])
    region = StringField("Region", validators=[InputRequired("Say which region.")])
    dc = StringField("DC", validators=[InputRequired("Say which datacenter.")])
    location = StringField("Location", description="Room, row, position: free text.")
    height_u = IntegerField("Height (U)", default=42,
                            validators=[InputRequired("Say how many units."),
                                        NumberRange(1, 60, "A rack is 1 to 60 U high.")])
    bgp_asn = IntegerField("BGP ASN", validators=[
        Optional(), NumberRange(1, MAX_ASN, f"An ASN is between 1 and {MAX_ASN}.")])
    network_notes = TextAreaField("Network notes", render_kw={"rows": 5},
                                  description="BGP peers, ToR switches, VLANs…")

    def fields(self) -> RackFields:
        return RackFields(
            name=(self.name.data or "").strip(), region=(self.region.data or "").strip(),
            dc=(self.dc.data or "").strip(), location=(self.location.data or "").strip(),
            height_u=self.height_u.data, bgp_asn=self.bgp_asn.data,
            network_notes=(self.network_notes.data or "").strip(),
        )
