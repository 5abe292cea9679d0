"""Modified UTF-7 (RFC 3501 5.1.3) against the shared vectors."""

import json
from pathlib import Path

import pytest

from app.imap import utf7

VECTORS = json.loads(
    (Path(__file__).parent.parent / "data" / "imap" / "imap-utf7-vectors.json").read_text("utf-8")
)


def test_vector_file_has_expected_counts() -> None:
    assert len(VECTORS["valid"]) == 13
    assert len(VECTORS["invalid"]) == 10


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["mutf7"])
def test_valid_vector_encodes_and_decodes(case: dict[str, str]) -> None:
    assert utf7.encode(case["unicode"]) == case["mutf7"]
    assert utf7.decode(case["mutf7"]) == case["unicode"]


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: repr(c["mutf7"]))
def test_invalid_vector_is_rejected(case: dict[str, str]) -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.decode(case["mutf7"])


@pytest.mark.parametrize(
    "bad",
    [
        "&Jjp-",  # non-zero padding bits (canonical is &Jjo-)
        "&-&",  # unterminated after a valid &-
        "&AGEA-",  # encoded 'a' followed by NUL: 'a' printable
        "&=-",  # base64 padding character is not allowed
        "&Jj/-",  # '/' is not in the modified alphabet
        "a\x7fb",  # DEL
        "&3gA-",  # lone low surrogate
    ],
)
def test_noncanonical_forms_are_rejected(bad: str) -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.decode(bad)


def test_encoded_control_character_is_canonical() -> None:
    # U+0000 is not printable, so base64 is its only form.
    assert utf7.decode("&AAA-") == "\x00"
    assert utf7.encode("\x00") == "&AAA-"


def test_ampersand_dash_is_ampersand() -> None:
    assert utf7.decode("&-") == "&"
    assert utf7.encode("&") == "&-"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "INBOX",
        "Entwürfe",
        "日本語/台北",
        "a&b",
        "emoji 😀 mix ☺!",
        "\u00e9\u00e9\u00e9\u00e9\u00e9",
        "~/x",
    ],
)
def test_roundtrip(name: str) -> None:
    assert utf7.decode(utf7.encode(name)) == name


def test_error_carries_reason_and_position() -> None:
    with pytest.raises(utf7.UTF7Error) as info:
        utf7.decode("ok&AGE-")
    assert info.value.position == 2
    assert "printable" in info.value.reason


def test_encoding_lone_surrogate_is_an_error() -> None:
    with pytest.raises(utf7.UTF7Error):
        utf7.encode("\ud800")
