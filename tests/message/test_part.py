"""MIME tree parsing: corpora, hand-checked structures, malformed input, limits, JSON."""

import pytest

from app.message.errors import StructureError
from app.message.fixup import crlf
from app.message.part import Part, parse, parse_strict
from tests.message.mime_corpus import corpus, corpus_files

FILES = corpus_files()


def test_corpora_are_present() -> None:
    assert len(FILES) >= 60


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_parses_and_round_trips(path: object) -> None:
    data = path.read_bytes()  # type: ignore[attr-defined]
    for d in (data, crlf(data)):
        p = parse(d)
        assert Part.from_json(p.to_json()) == p
        for q in p.walk():
            assert 0 <= q.header_start <= q.body_start <= q.end
            if q.message is None or q.encoding in ("", "7bit", "8bit", "binary"):
                assert q.end <= len(d)


def _lf_crlf_shapes(name: str) -> None:
    """The tree shape does not depend on LF vs CRLF line ends."""

    def shape(p: Part) -> object:
        return (p.media_type, p.lines, [shape(c) for c in p.parts], p.message and shape(p.message))

    data = corpus(name)
    assert shape(parse(data)) == shape(parse(crlf(data)))


def test_multipart_mixed_with_attachment() -> None:
    data = corpus("msg_07.txt")
    p = parse(data)
    assert p.media_type == "multipart/mixed" and p.param("boundary") == "BOUNDARY"
    text, gif = p.parts
    assert text.media_type == "text/plain" and text.param("charset") == "us-ascii"
    assert data[text.body_start : text.end] == b"Hi there,\n\nThis is the dingus fish.\n"
    assert text.lines == 3
    assert gif.media_type == "image/gif" and gif.encoding == "base64"
    assert gif.disposition == "attachment" and gif.filename() == "dingusfish.gif"
    assert gif.param("name") == "dingusfish.gif"
    assert data[gif.end : gif.end + 13] == b"\n--BOUNDARY--"  # the CRLF belongs to the boundary
    assert gif.size == gif.end - gif.body_start
    assert p.envelope is not None and p.envelope.subject == "Here is your dingus fish"
    _lf_crlf_shapes("msg_07.txt")


def test_nested_multipart_with_rfc2231_filename() -> None:
    p = parse(corpus("mail_test_5"))
    assert p.media_type == "multipart/alternative"
    plain, related = p.parts
    assert plain.media_type == "text/plain" and plain.encoding == "quoted-printable"
    assert related.media_type == "multipart/related"
    kinds = [c.media_type for c in related.parts]
    assert kinds[:2] == ["text/html", "image/jpeg"] and kinds.count("image/png") >= 3
    jpeg = related.parts[1]
    # RFC 2231 continuations with percent-encoded UTF-8 (filename*0*= ... *3*=)
    assert jpeg.filename() == "mailingassets_d68799cd6301c7f5731a3c42946e528bcb78eb84.jpg"
    assert jpeg.disposition == "inline"
    _lf_crlf_shapes("mail_test_5")


def test_encoded_word_subject() -> None:
    p = parse(corpus("mail_test_5"))
    assert p.envelope is not None
    assert p.envelope.subject is not None and p.envelope.subject.startswith("=?ISO-8859-1?Q?")
    assert p.envelope.decoded_subject() == "Je prépare mon été zéro complexe !"


def test_rfc2231_boundary_and_params() -> None:
    p = parse(corpus("msg_33.txt"))
    assert p.media_type == "multipart/signed"
    assert p.param("boundary") == "EeQfGwPcQSOJBaQU"
    assert p.param("protocol") == "application/pgp-signature"
    assert p.param("micalg") == "pgp-md5"
    assert [c.media_type for c in p.parts] == ["text/plain", "text/plain"]
    assert p.parts[0].param("charset") == "us-ascii"


def test_message_rfc822_top_level() -> None:
    data = corpus("msg_46.txt")
    p = parse(data)
    assert p.media_type == "message/rfc822"
    inner = p.message
    assert inner is not None and inner.envelope is not None
    assert inner.header_start == p.body_start and inner.end == p.end
    assert inner.media_type == "text/plain" and inner.param("charset") == "ISO-8859-15"
    assert inner.envelope.message_id == "<4B66B890.4070408@teconcept.de>"
    (frm,) = inner.envelope.from_
    assert (frm.name, frm.mailbox, frm.host) == ("Dr. Sender", "sender", "example.net")
    assert p.lines == data[p.body_start :].count(b"\n")


def test_digest_children_default_to_message_rfc822() -> None:
    p = parse(corpus("msg_02.txt"))
    digest = p.parts[2]
    assert digest.media_type == "multipart/digest"
    for c in digest.parts:
        assert c.media_type == "message/rfc822"
        assert c.message is not None and c.message.envelope is not None
    assert digest.parts[0].message is not None
    assert digest.parts[0].message.envelope is not None
    assert digest.parts[0].message.envelope.subject == "[Ppp] testing #1"


def test_missing_close_boundary_is_best_effort() -> None:
    data = corpus("mail_test_17")
    p = parse(data)
    assert p.media_type == "multipart/mixed"
    (alt,) = p.parts
    assert [c.media_type for c in alt.parts] == ["text/plain", "text/html"]
    assert alt.end == p.end == len(data)
    with pytest.raises(StructureError) as e:
        parse_strict(data)
    assert e.value.limit == "" and "close" in e.value.reason


def test_boundary_never_found_gives_octet_stream() -> None:
    p = parse(corpus("msg_31.txt"))  # boundary=BOUNDARY_ but lines say --BOUNDARY
    assert p.media_type == "application/octet-stream" and p.parts == ()
    assert p.param("boundary") == "BOUNDARY_"


MSG = (
    b"From: a@b.example\r\n"
    b"Subject: t\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"one\r\ntwo\r\n"
    b"--outer \r\n"
    b"Content-Type: multipart/alternative; boundary=outer-inner\r\n"
    b"\r\n"
    b"--outer-inner\r\n"
    b"\r\n"
    b"plain\r\n"
    b"--outer-inner\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>html</p>\r\n"
    b"--outer-inner--\r\n"
    b"inner epilogue\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)


def test_synthetic_offsets_exact() -> None:
    p = parse_strict(MSG)
    text, alt, msg = p.parts
    assert MSG[text.header_start : text.body_start] == b"Content-Type: text/plain\r\n\r\n"
    assert MSG[text.body_start : text.end] == b"one\r\ntwo"
    assert text.lines == 2
    plain, html = alt.parts
    assert plain.media_type == "text/plain" and MSG[plain.body_start : plain.end] == b"plain"
    assert MSG[html.body_start : html.end] == b"<p>html</p>"
    assert MSG[alt.end : alt.end + 9] == b"\r\n--outer"
    assert msg.message is not None
    assert msg.message.envelope is not None and msg.message.envelope.subject == "inner"
    assert MSG[msg.message.body_start : msg.message.end] == b"inner body"
    assert p.end == len(MSG) and p.body_start == MSG.index(b"preamble")
    assert p.envelope is not None and p.envelope.from_[0].mailbox == "a"


def test_lf_only_message() -> None:
    lf = MSG.replace(b"\r\n", b"\n")
    p = parse_strict(lf)
    assert lf[p.parts[0].body_start : p.parts[0].end] == b"one\ntwo"
    assert [c.media_type for c in p.parts[1].parts] == ["text/plain", "text/html"]


def test_limits_strict_and_tolerant() -> None:
    with pytest.raises(StructureError) as e:
        parse_strict(MSG, max_parts=3)
    assert e.value.limit == "parts"
    p = parse(MSG, max_parts=3)
    assert sum(1 for _ in p.walk()) <= 4
    with pytest.raises(StructureError) as e:
        parse_strict(MSG, max_depth=1)
    assert e.value.limit == "depth"
    p = parse(MSG, max_depth=1)
    assert p.parts[1].media_type == "application/octet-stream" and p.parts[1].parts == ()


def test_deep_nesting_is_bounded() -> None:
    depth = 500
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    p = parse(head + b"\r\nleaf\r\n")
    d = 0
    while p.parts:
        p = p.parts[0]
        d += 1
    assert d <= 50
    with pytest.raises(StructureError):
        parse_strict(head)


def test_many_parts_bounded() -> None:
    body = b"--x\r\n\r\na\r\n" * 20000 + b"--x--\r\n"
    p = parse(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + body)
    assert len(p.parts) < 10_000


def test_defaults_and_header_fields() -> None:
    data = (
        b"Content-Type: TEXT/Plain; Charset=UTF-8\r\n"
        b"Content-Transfer-Encoding: Quoted-Printable\r\n"
        b"Content-ID: <cid@x>\r\n"
        b"Content-Description: desc\r\n"
        b"Content-Language: en, de\r\n"
        b"Content-Location: http://x.example/\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"Content-Disposition: INLINE; filename=a.txt\r\n"
        b"\r\nx=3Dy\r\n"
    )
    p = parse_strict(data)
    assert (p.type, p.subtype, p.params) == ("text", "plain", (("charset", "UTF-8"),))
    assert p.encoding == "quoted-printable" and p.id == "<cid@x>" and p.description == "desc"
    assert p.language == ("en", "de") and p.location == "http://x.example/"
    assert p.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ==" and p.disposition == "inline"
    assert p.filename() == "a.txt"
    q = parse(b"Subject: none\r\n\r\nbody")
    assert (q.media_type, q.encoding, q.lines, q.size) == ("text/plain", "", 1, 4)


def test_bad_content_type() -> None:
    data = b"Content-Type: garbage\r\n\r\nx"
    assert parse(data).media_type == "application/octet-stream"
    with pytest.raises(StructureError):
        parse_strict(data)


def test_part_header_running_into_boundary() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/x-a\r\n--b--\r\n"
    p = parse(data)
    (a,) = p.parts
    assert a.media_type == "text/x-a" and a.size == 0


def test_base64_embedded_message() -> None:
    import base64

    inner = b"Subject: enc\r\n\r\nhello\r\n"
    data = (
        b"Content-Type: message/global\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(inner)
    )
    p = parse(data)
    assert p.message is not None and p.message.envelope is not None
    assert p.message.envelope.subject == "enc"
    assert p.message.end == len(inner)  # offsets index the decoded body


def test_empty_and_garbage_input() -> None:
    for data in [b"", b"\r\n", b"\x00\xff" * 10, b"--", b"Content-Type: multipart/mixed\r\n\r\n"]:
        p = parse(data)
        assert Part.from_json(p.to_json()) == p


def test_from_json_rejects_garbage() -> None:
    for bad in ["", "[]", "{}", '{"t":1}', '{"t":"a","s":"b","o":[1,2]}', "nul"]:
        with pytest.raises(StructureError):
            Part.from_json(bad)
