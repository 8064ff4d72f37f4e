"""A long select writes the markup WTForms' select writes, only faster."""

from flask_wtf import FlaskForm
from wtforms import SelectField

from portal.web.forms import LongSelect, form_id, options

CHOICES = [(None, "— tenant —"), (1, "acme"), (2, 'a "quoted" <b>name</b> & co'),
           (30, "台北租戶")]


class Plain(FlaskForm):
    pick = SelectField("Pick", coerce=form_id, validate_choice=False)


class Long(FlaskForm):
    pick = SelectField("Pick", coerce=form_id, validate_choice=False, widget=LongSelect())


def test_the_markup_is_the_same_as_wtforms(app):
    with app.test_request_context("/"):
        for chosen in (None, 2, 30):
            plain, long = Plain(meta={"csrf": False}), Long(meta={"csrf": False})
            for form in (plain, long):
                form.pick.choices = options(CHOICES)
                form.pick.data = chosen
            html = long.pick(class_="form-select")
            assert html == plain.pick(class_="form-select")
            assert "&lt;b&gt;name&lt;/b&gt; &amp; co" in html
            assert html.count(" selected ") == 1
            assert f'selected value="{chosen or ""}"' in html
