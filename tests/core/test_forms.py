"""Every form refuses control characters, blank-looking required text and far-off dates beside
the field, whatever the form forgot."""
from __future__ import annotations

from wtforms import DateField, DateTimeLocalField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired

from portal.core.forms import PortalForm


class _Note(PortalForm):
    class Meta:
        csrf = False

    title = StringField(validators=[DataRequired()])
    body = TextAreaField()
    tags = SelectMultipleField(choices=["a", "b\x00"], validate_choice=False)
    day = DateField()
    moment = DateTimeLocalField(format="%Y-%m-%dT%H:%M")


def _form(app, **data):
    from werkzeug.datastructures import MultiDict

    with app.test_request_context(method="POST", data=MultiDict(data)):
        form = _Note()
        return form, form.validate()


def test_text_with_tabs_and_line_breaks_is_fine(app):
    form, valid = _form(app, title="Plans\tfor 2027", body="Line one\r\nLine two\n")
    assert valid and form.errors == {}


def test_a_line_break_in_a_one_line_field_is_refused_beside_it(app):
    """A text input never sends one; a forged one in a name would write lines of its own
    into every email that greets the person."""
    for value in ["Eve\r\nBcc: someone@example.com", "Eve\nX", "Eve\u2028X"]:
        form, valid = _form(app, title=value, body="Line one\nLine two")
        assert not valid, repr(value)
        assert form.errors == {"title": ["Write this on one line."]}, repr(value)


def test_nul_and_other_control_characters_are_refused_beside_their_field(app):
    for value in ["a\x00b", "\x1b[31mred", "bell\x07", "\x7f", "\x0b"]:
        form, valid = _form(app, title="ok", body=value)
        assert not valid, repr(value)
        assert form.errors == {"body": ["Remove the invisible control characters from this field."]}, repr(value)


def test_every_value_of_a_multiple_choice_is_checked(app):
    form, valid = _form(app, title="ok", tags=["a", "b\x00"])
    assert not valid and "tags" in form.errors


def test_every_form_of_the_portal_is_a_portal_form():
    import importlib
    import inspect

    from flask_wtf import FlaskForm

    from portal import AREAS

    plain = []
    for area in AREAS:
        try:
            module = importlib.import_module(f"portal.{area}.forms")
        except ModuleNotFoundError:
            continue
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, FlaskForm) and value.__module__ == module.__name__:
                if not issubclass(value, PortalForm):
                    plain.append(f"{module.__name__}.{name}")
    assert plain == []


def test_dates_beyond_the_years_anyone_means_are_refused(app):
    for field, value in [("day", "9999-12-31"), ("day", "0001-01-01"), ("moment", "9999-12-31T23:59"),
                         ("moment", "1899-12-31T23:59"), ("moment", "2101-01-01T00:00")]:
        form, valid = _form(app, title="ok", **{field: value})
        assert not valid and form.errors == {field: ["Enter a date between 1900 and 2100."]}, value
    form, valid = _form(app, title="ok", day="2100-12-31", moment="1900-01-01T00:00")
    assert valid, form.errors


def test_a_required_field_of_only_invisible_characters_is_refused(app):
    for value in ["\u200b\u200b", "\u200e \u2060", "\ufeff"]:  # (no-break spaces: DataRequired strips those)
        form, valid = _form(app, title=value)
        assert not valid and form.errors == {"title": ["Enter visible text in this field."]}, repr(value)
    form, valid = _form(app, title="Zoé\u200b", body="\u200b")  # visible text; body is not required
    assert valid, form.errors


def test_a_wall_time_the_clocks_skip_is_refused_and_one_they_show_twice_is_taken(app):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from portal.core.forms import ShownByClocksIn, exists_locally

    toronto = ZoneInfo("America/Toronto")
    assert not exists_locally(datetime(2027, 3, 14, 2, 30), toronto)  # clocks go 2:00 -> 3:00
    assert exists_locally(datetime(2027, 3, 14, 3, 30), toronto)
    assert exists_locally(datetime(2027, 11, 7, 1, 30), toronto)  # shown twice (fall back): it exists

    class _Meeting(PortalForm):
        class Meta:
            csrf = False

        zone = StringField()
        moment = DateTimeLocalField(format="%Y-%m-%dT%H:%M", validators=[ShownByClocksIn(lambda f: f.zone.data)])

    from werkzeug.datastructures import MultiDict

    for zone, moment, valid in [("America/Toronto", "2027-03-14T02:30", False),
                                ("Europe/Paris", "2027-03-14T02:30", True),  # Paris changes on the 28th
                                ("Not/AZone", "2027-03-14T02:30", True)]:  # the zone's own field says so
        with app.test_request_context(method="POST", data=MultiDict({"zone": zone, "moment": moment})):
            form = _Meeting()
            assert form.validate() is valid, (zone, form.errors)


def test_a_missing_answer_names_its_field_in_english_and_in_french(app):
    form, valid = _form(app, title="")
    assert not valid and form.errors == {"title": ["\u201cTitle\u201d is required."]}
    from werkzeug.datastructures import MultiDict

    with app.test_request_context(method="POST", data=MultiDict({"title": ""}), headers={"Accept-Language": "fr"}):
        form = _Note()
        assert not form.validate()
        assert form.errors == {"title": ["Le champ \u00ab Title \u00bb est obligatoire."]}


def test_the_error_summary_of_an_empty_form_tells_its_fields_apart(client):
    from tests.conftest import csrf_token

    page = client.post("/my-data", data={"csrf_token": csrf_token(client, "/my-data")}).get_data(as_text=True)
    summary = page.split('class="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert "\u201cYour email address\u201d is required." in summary
    french = client.post("/lists/symposium-announcements/subscribe", headers={"Accept-Language": "fr"},
                         data={"csrf_token": csrf_token(client, "/lists/symposium-announcements/subscribe")})
    assert "Ce champ est requis" not in french.get_data(as_text=True)


def test_a_page_that_comes_back_with_errors_says_so_first_in_its_title(client):
    from tests.conftest import csrf_token

    def title(response) -> str:
        return response.get_data(as_text=True).split("<title>", 1)[1].split("</title>", 1)[0]

    assert not title(client.get("/my-data")).startswith("Error:")
    for path in ("/my-data", "/login"):
        response = client.post(path, data={"csrf_token": csrf_token(client, "/my-data")})
        assert response.status_code == 400 and title(response).startswith("Error: "), path
    french = client.post("/login", headers={"Accept-Language": "fr"},
                         data={"csrf_token": csrf_token(client, "/login")})
    assert title(french).startswith("Erreur : ")
