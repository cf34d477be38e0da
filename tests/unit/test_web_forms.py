"""The one reader of every page's posted form: no CSRF token among the fields, and a textarea's
CRLF line breaks (as every browser sends them) as the newlines the API's text fields accept."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from api.schemas.gates import NoteIn
from web.pages import form_fields, validation_reasons


def test_a_posted_form_has_no_csrf_token_and_newlines_for_crlf() -> None:
    fields = form_fields(FormData([("csrftoken", "t"), ("note", "一行目\r\n二行目"), ("n", "3")]))
    assert fields == {"note": "一行目\n二行目", "n": "3"}
    NoteIn(note=fields["note"])  # the API's text field takes it


def test_validation_reasons_name_each_field_as_the_api_does() -> None:
    class Body(BaseModel):
        days: int

    try:
        Body.model_validate({"days": "x"})
    except ValidationError as err:
        assert validation_reasons(err).startswith("days: Input should be a valid integer")
    else:
        raise AssertionError("not refused")
