from app.message.encoded import (
    decode_charset,
    decode_words,
    encode_word,
    parse_content_type,
    parse_disposition,
    parse_params,
)


def test_q_and_b_words() -> None:
    assert decode_words("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=") == "Keld Jørn Simonsen"
    assert decode_words("=?utf-8?B?w6k=?=") == "é"


def test_rfc2047_section8_examples() -> None:
    # RFC 2047 8: whitespace between adjacent encoded words is not displayed
    assert decode_words("(=?ISO-8859-1?Q?a?=)") == "(a)"
    assert decode_words("(=?ISO-8859-1?Q?a?= b)") == "(a b)"
    assert decode_words("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)") == "(ab)"
    assert decode_words("(=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-1?Q?b?=)") == "(ab)"
    assert decode_words("(=?ISO-8859-1?Q?a_b?=)") == "(a b)"
    assert decode_words("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)") == "(a b)"


def test_multibyte_char_split_over_words() -> None:
    # "é" is c3 a9; split over two B words
    assert decode_words("=?utf-8?b?ww==?= =?utf-8?b?qQ==?=") == "é"
    assert decode_words("=?utf-8?q?=C3?= =?utf-8?q?=A9?=") == "é"


def test_unknown_charset_tolerated() -> None:
    assert decode_words("=?x-nonsense?q?abc?=") == "abc"  # valid UTF-8 bytes
    assert decode_words("=?x-nonsense?q?=FF?=") == "=?x-nonsense?q?=FF?="
    assert decode_words("no words here") == "no words here"
    assert decode_words("=?utf-8?q?broken") == "=?utf-8?q?broken"


def test_rfc2231_language_in_charset() -> None:
    assert decode_words("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore"


def test_encode_word_roundtrip() -> None:
    s = "Grüße aus Köln, " * 5
    assert decode_words(encode_word(s)) == s
    assert encode_word("plain") == "plain"


def test_rfc2231_continuations_and_charset() -> None:
    assert parse_params(
        '; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"'
    ) == (("url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"),)
    assert parse_params("; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A") == (
        ("title", "This is ***fun***"),
    )
    assert parse_params(
        "; title*0*=us-ascii'en'This%20is%20even%20more%20; "
        'title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn\'t it!"'
    ) == (("title", "This is even more ***fun*** isn't it!"),)
    assert parse_params("; filename*=utf-8''%E2%82%AC.txt; filename=fallback.txt") == (
        ("filename", "€.txt"),
    )


def test_params_quoting_comments_and_garbage() -> None:
    assert parse_content_type('text/plain; charset="us-ascii" (Plain text)') == (
        "text",
        "plain",
        (("charset", "us-ascii"),),
    )
    assert parse_content_type("TEXT/HTML;CHARSET=UTF-8;;") == (
        "text",
        "html",
        (("charset", "UTF-8"),),
    )
    assert parse_params('; a="x\\"y;z"; junk; b = 2 ; a=dup') == (("a", 'x"y;z'), ("b", "2"))
    assert parse_params('; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="') == (("name", "résumé.pdf"),)
    assert parse_content_type("text") is None
    assert parse_content_type("text/pl ain") is None


def test_disposition() -> None:
    assert parse_disposition('Attachment; filename="a b.txt"; size=3') == (
        "attachment",
        (("filename", "a b.txt"), ("size", "3")),
    )


def test_decode_charset() -> None:
    assert decode_charset("é".encode("iso-8859-1"), "ISO-8859-1") == "é"
    assert decode_charset("é".encode(), "us-ascii") == "é"  # mislabelled UTF-8
    assert decode_charset(b"x", "no-such-charset") is None
    assert decode_charset("中".encode("gb2312"), "GB2312") == "中"
