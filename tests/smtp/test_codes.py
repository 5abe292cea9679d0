import pytest

from app.smtp import codes as c
from app.smtp.codes import Reply


def test_reply_class_of_enhanced_code_follows_reply_code() -> None:
    r = Reply(c.C452_STORAGE_FULL, c.SE_PROTO5_TOO_MANY_RCPTS_3, "too many")
    assert r.enhanced == "4.5.3"
    assert r.encode() == b"452 4.5.3 too many\r\n"


def test_reply_without_enhanced_code() -> None:
    assert Reply(354, "", "go ahead").encode() == b"354 go ahead\r\n"


def test_multiline_reply_uses_dash_continuation() -> None:
    r = Reply(250, "", "mx.example\nPIPELINING\nSMTPUTF8")
    assert r.encode() == b"250-mx.example\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"


def test_multiline_reply_repeats_enhanced_code() -> None:
    assert Reply(550, "1.1", "a\nb").lines() == ["550-5.1.1 a", "550 5.1.1 b"]


def test_reply_text_cannot_inject_lines() -> None:
    wire = Reply(250, "0.0", "ok\r250 fake\x00").encode()
    assert wire.count(b"\r\n") == 1 and b"\r2" not in wire and b"\x00" not in wire


def test_long_reply_text_is_wrapped_within_512_octets() -> None:
    r = Reply(554, "0.0", " ".join(["word"] * 400))
    lines = r.lines()
    assert len(lines) > 1
    assert all(len(line.encode()) + 2 <= 512 for line in lines)
    assert all(line.startswith("554-5.0.0 ") for line in lines[:-1])
    assert lines[-1].startswith("554 5.0.0 ")


def test_long_reply_without_spaces_is_wrapped_too() -> None:
    lines = Reply(500, "", "x" * 2000).lines()
    assert all(len(line.encode()) + 2 <= 512 for line in lines)
    assert "".join(line[4:] for line in lines) == "x" * 2000


def test_empty_reply_text() -> None:
    assert Reply(250, "", "").encode() == b"250\r\n"


@pytest.mark.parametrize("code,se", [(199, ""), (600, ""), (250, "5.5.2"), (250, "x.y")])
def test_malformed_reply_is_a_programming_error(code: int, se: str) -> None:
    with pytest.raises(ValueError):
        Reply(code, se, "x")


def test_every_enhanced_constant_is_wellformed() -> None:
    for name in dir(c):
        if name.startswith("SE_"):
            Reply(250, getattr(c, name), "x")
        if name.startswith("C") and name[1:4].isdigit():
            assert getattr(c, name) == int(name[1:4])
