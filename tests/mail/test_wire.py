"""The bytes delivery writes parse back, with the stdlib's strict parser, to what the row held."""
from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from email.headerregistry import Address

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portal.mail.wire import WireAttachment, WireMessage, encode_header, render_wire

# Text a template could produce: any printable unicode, with line breaks, no control characters.
text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x00"),
               max_size=300)
body = st.lists(text, max_size=6).map("\n".join)
name = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)


def parse(data: bytes):
    return BytesParser(policy=policy.default).parsebytes(data)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=text, body_text=body, body_html=body, display_name=name, filename=name,
       content=st.binary(max_size=2000))
# A long name with no-break spaces: split over encoded-words *and* whitespace-collapsed.
@example(subject="", body_text="", body_html="", display_name="00" + "\xa0" * 9 + "\U00010000" * 5,
         filename="", content=b"")
def test_any_text_survives_the_round_trip(subject, body_text, body_html, display_name, filename, content):
    message = WireMessage(
        from_address="Groupe de travail de l'Ontario <no-reply@owg.example.ca>",
        to_address=str(Address(display_name=display_name, addr_spec="reader@example.ca")),
        subject=subject, body_text=body_text, body_html=body_html,
        message_id="<abc123@owg.example.ca>", date=datetime(2026, 11, 26, 15, 30, tzinfo=UTC),
        attachments=[WireAttachment(filename or "file.bin", "application/octet-stream", content)],
    )
    data = render_wire(message)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    parsed = parse(data)
    assert parsed.defects == []
    assert parsed["Subject"] == " ".join(subject.split())
    assert parsed["Message-ID"] == "<abc123@owg.example.ca>"
    assert parsed["To"].addresses[0].addr_spec == "reader@example.ca"
    shown = parsed["To"].addresses[0].display_name
    if len(display_name.encode()) <= 39:
        assert " ".join(shown.split()) == " ".join(display_name.split())
    else:  # split into several encoded-words; the stdlib parser puts a space between them
        # (header values collapse every run of whitespace, NBSP included, as in the branch above)
        assert "".join(shown.split()) == "".join(display_name.split())
    expected_text = body_text if body_text.endswith("\n") else body_text + "\n"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == expected_text.replace("\r\n", "\n").replace("\r", "\n")
    if body_html:
        assert parsed.get_body(("html",)) is not None
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_payload(decode=True) == content


def test_header_values_cannot_inject_headers():
    data = render_wire(WireMessage(
        from_address="no-reply@owg.example.ca", to_address="reader@example.ca",
        subject="Hello\r\nBcc: victim@example.com", body_text="x", message_id="<a@b>",
        date=datetime(2026, 1, 1, tzinfo=UTC), headers={"X-Note": "a\nBcc: other@example.com", "Bcc": "x@y"},
    ))
    parsed = parse(data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.com"


def test_long_urls_are_folded_but_never_encoded():
    url = "https://portal.example.ca/lists/unsubscribe/" + "A" * 80
    line = encode_header("List-Unsubscribe", f"<{url}>, <mailto:unsubscribe@owg.example.ca>")
    assert "=?" not in line
    assert line == f"List-Unsubscribe: <{url}>,\r\n <mailto:unsubscribe@owg.example.ca>\r\n"
