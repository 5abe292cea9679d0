"""Authentication-Results rendering and removal of forged fields (RFC 8601)."""

from app.mailauth import authres
from app.mailauth.authres import MethodResult, Property


def test_one_field_one_result_per_line() -> None:
    h = authres.header(
        "mx.example.org",
        [
            MethodResult("iprev", "pass", (Property("policy", "iprev", "192.0.2.1"),)),
            MethodResult("spf", "pass", (Property("smtp", "mailfrom", "user@example.com"),)),
            MethodResult(
                "dkim", "pass",
                (Property("header", "d", "example.com"), Property("header", "s", "sel"),
                 Property("header", "a", "ed25519-sha256")),
            ),
            MethodResult("dmarc", "pass", (Property("header", "from", "example.com"),)),
            MethodResult("arc", "pass"),
        ],
    )  # fmt: skip
    assert h == (
        "Authentication-Results: mx.example.org;\r\n"
        "\tiprev=pass policy.iprev=192.0.2.1;\r\n"
        "\tspf=pass smtp.mailfrom=user@example.com;\r\n"
        "\tdkim=pass header.d=example.com header.s=sel header.a=ed25519-sha256;\r\n"
        "\tdmarc=pass header.from=example.com;\r\n"
        "\tarc=pass\r\n"
    )


def test_values_are_quoted_when_needed() -> None:
    assert authres.quote_value("user@example.com") == "user@example.com"
    assert authres.quote_value("@example.com") == "@example.com"
    assert authres.quote_value("2001:db8::1") == '"2001:db8::1"'
    assert authres.quote_value('a "b" c') == '"a \\"b\\" c"'
    assert authres.quote_value("x\r\ny") == '"x  y"'
    m = MethodResult(
        "spf", "fail", (Property("smtp", "mailfrom", "a b@x.example"),), reason="not permitted"
    )
    assert m.render() == 'spf=fail reason="not permitted" smtp.mailfrom="a b@x.example"'


def test_no_results_is_none() -> None:
    assert authres.header("mx.example", []) == "Authentication-Results: mx.example; none\r\n"


def test_authserv_id_parsing() -> None:
    assert authres.authserv_id(" (comment (nested)) MX.Example.org.; spf=pass") == "mx.example.org"
    assert authres.authserv_id(' "mx.example.org" 1; none') == "mx.example.org"
    assert authres.authserv_id("mx.example.org;spf=pass") == "mx.example.org"


def test_remove_ours_drops_forged_fields_only() -> None:
    msg = (
        b"Received: from x\r\n"
        b"Authentication-Results: mx.example.org;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n"
        b"authentication-results: (forged) MX.EXAMPLE.ORG; dkim=pass\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.org; in the body\r\n"
    )
    assert len(authres.find_ours(msg, "mx.example.org")) == 2
    out, n = authres.remove_ours(msg, "mx.example.org")
    assert n == 2
    assert out == (
        b"Received: from x\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.org; in the body\r\n"
    )


def test_remove_ours_handles_bare_lf_and_no_body() -> None:
    out, n = authres.remove_ours(b"Authentication-Results: mx.example; none\nX: y\n", "mx.example")
    assert (out, n) == (b"X: y\n", 1)
