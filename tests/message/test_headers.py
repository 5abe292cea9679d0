from app.message.headers import parse_header, scan, split_header, unfold


def test_fields_offsets_and_body_start() -> None:
    data = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nbody\r\n"
    h = parse_header(data)
    assert [f.name for f in h.fields] == ["Subject", "From"]
    assert h.fields[1].offset == data.index(b"From")
    assert h.body == data.index(b"body")
    assert h.get("SUBJECT") == "hi"
    assert h.get_raw("from") == b" a@b.example"


def test_folded_value_is_unfolded() -> None:
    h = parse_header(b"Subject: a\r\n\tlong\r\n  subject\r\n\r\n")
    assert h.get("subject") == "a\tlong  subject"
    assert h.get_raw("subject") == b" a\r\n\tlong\r\n  subject"


def test_lf_only_input() -> None:
    data = b"To: x@y.example\nSubject: s\n\nbody\n"
    h = parse_header(data)
    assert h.get("subject") == "s"
    assert data[h.body :] == b"body\n"


def test_garbage_lines_are_skipped() -> None:
    data = b"From x@y Mon Jan 1\r\nSubject: ok\r\nno colon here\r\n continuation of garbage\r\nTo: t@e.example\r\n\r\n"
    h = parse_header(data)
    assert [f.name for f in h.fields] == ["Subject", "To"]
    assert h.get("to") == "t@e.example"


def test_obsolete_space_before_colon() -> None:
    assert parse_header(b"Subject : old style\r\n\r\n").get("subject") == "old style"


def test_eight_bit_utf8_and_latin1_fallback() -> None:
    h = parse_header("Subject: café\r\nX-L: ".encode() + b"caf\xe9\r\n\r\n")
    assert h.get("subject") == "café"
    assert h.get("x-l") == "café"


def test_multiple_fields_and_get_all() -> None:
    h = parse_header(b"Received: a\r\nReceived: b\r\n\r\n")
    assert h.get("received") == "a"
    assert h.get_all("Received") == ["a", "b"]
    assert "received" in h and "x" not in h


def test_no_body_and_empty_header() -> None:
    h = parse_header(b"Subject: x")
    assert h.get("subject") == "x" and h.body == len(b"Subject: x")
    h = parse_header(b"\r\nbody")
    assert h.fields == () and h.body == 2
    assert split_header(b"A: b\r\n\r\nc") == (b"A: b\r\n\r\n", 8)


def test_stop_at_boundary_line() -> None:
    data = b"Content-Type: text/plain\r\n--b\r\nX: y\r\n\r\n"
    h, stopped = scan(data, 0, None, lambda p: data.startswith(b"--b", p))
    assert stopped and h.body == data.index(b"--b")
    assert [f.name for f in h.fields] == ["Content-Type"]


def test_unfold() -> None:
    assert unfold(b" a\r\n b\r\n") == "a b"
