"""DKIM verification and signing (RFC 6376, 8301, 8463) against vectors and ourselves."""

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import dkim
from app.mailauth.dkim_canon import (
    Canon,
    canon_body,
    canon_header,
    select_headers,
    split_message,
)
from app.mailauth.dkim_keys import DKIMKeyError, load_private_key, parse_key_record
from app.mailauth.dkim_sig import TagError, parse_tags, without_b_value

DATA = Path(__file__).resolve().parent.parent / "data" / "dkim"
PY = DATA / "dkimpy"
NOW = 1_700_000_000.0
MSG = (
    b"From: Joe <joe@example.org>\r\n"
    b"To: Suzie <suzie@example.net>\r\n"
    b"Subject: dinner  \r\n"
    b"\tplans\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Hi.  \r\n\r\nWe lost the game.\r\n\r\n\r\n"
)


def add_key(server: LoopbackDNSServer, selector: str, domain: str, value: str | list[str]) -> None:
    server.add(f"{selector}._domainkey.{domain}", "TXT", value)


def signer(pem: bytes, **kw: object) -> dkim.Selector:
    return dkim.Selector("example.org", "sel", load_private_key(pem), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return dkim.generate_rsa(2048)


@pytest.fixture(scope="module")
def ed_pem() -> bytes:
    return dkim.generate_ed25519()


# -- canonicalisation -------------------------------------------------------------


def test_rfc6376_canonicalization_example() -> None:
    case = json.loads((DATA / "rfc6376-canonicalization.json").read_text())
    msg = case["message"].encode()
    headers, off = split_message(msg)
    assert [h.name for h in headers] == ["A", "B"]
    relaxed = b"".join(canon_header(h.raw, Canon.RELAXED) for h in headers)
    simple = b"".join(canon_header(h.raw, Canon.SIMPLE) for h in headers)
    assert relaxed == case["relaxed_header"].encode()
    assert simple == case["simple_header"].encode()
    assert canon_body(msg[off:], Canon.RELAXED) == case["relaxed_body"].encode()
    assert canon_body(msg[off:], Canon.SIMPLE) == case["simple_body"].encode()
    assert canon_body(b"", Canon.RELAXED) == case["empty_body"]["relaxed"].encode()
    assert canon_body(b"", Canon.SIMPLE) == case["empty_body"]["simple"].encode()


def test_body_canonicalization_edges() -> None:
    assert canon_body(b"a", Canon.SIMPLE) == b"a\r\n"
    assert canon_body(b"a", Canon.RELAXED) == b"a\r\n"
    assert canon_body(b" \t \r\n\r\n", Canon.RELAXED) == b""
    assert canon_body(b"\r\n\r\n", Canon.SIMPLE) == b"\r\n"
    assert canon_body(b"x \t y \t\r\n", Canon.RELAXED) == b"x y\r\n"


def test_header_lookup_is_bottom_up_and_oversigning_selects_nothing() -> None:
    headers, _ = split_message(b"X: 1\r\nY: a\r\nX: 2\r\n\r\n")
    picked = select_headers(headers, ["x", "X", "x", "y"])
    assert [h.raw for h in picked] == [b"X: 2\r\n", b"X: 1\r\n", b"Y: a\r\n"]


def test_b_value_removal_keeps_bh() -> None:
    raw = b"DKIM-Signature: bh=abc; b=de\r\n f; d=x.example\r\n"
    assert without_b_value(raw) == b"DKIM-Signature: bh=abc; b=; d=x.example\r\n"


def test_tag_list_rules() -> None:
    assert parse_tags(" a = 1 ; b=x y;") == {"a": "1", "b": "x y"}
    with pytest.raises(TagError):
        parse_tags("a=1; a=2")  # RFC 6376 3.2: duplicates invalidate the list
    with pytest.raises(TagError):
        parse_tags("1a=1")


# -- vectors -------------------------------------------------------------------------


def rfc8463_records(server: LoopbackDNSServer) -> None:
    for line in (DATA / "rfc8463" / "rfc8463-A2-dns.txt").read_text().splitlines():
        name, _, rest = line.split(" ", 2)
        server.add(name, "TXT", rest.strip().strip('"'))


async def test_rfc8463_both_signatures_pass(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    rfc8463_records(dns_server)
    msg = (DATA / "rfc8463" / "rfc8463-A3-signed.eml").read_bytes()
    results = await dkim.verify(resolver, msg, now=NOW)
    assert [(r.algorithm, r.status, r.trusted) for r in results] == [
        ("ed25519-sha256", dkim.Status.PASS, True),
        ("rsa-sha256", dkim.Status.PASS, True),
    ]
    assert results[0].selector == "brisbane" and results[0].domain == "football.example.com"


def test_rfc8463_ed25519_seed_key_signs_like_the_rfc() -> None:
    key = load_private_key((DATA / "rfc8463" / "rfc8463-A1-ed25519-seed.b64").read_bytes())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" in dkim.txt_record(key)
    rsa_key = load_private_key((DATA / "rfc8463" / "rfc8463-A1-rsa-private.pem").read_bytes())
    assert isinstance(rsa_key, rsa.RSAPrivateKey)


def football(server: LoopbackDNSServer, test_txt: str = "test.txt") -> None:
    add_key(server, "test", "football.example.com", (PY / test_txt).read_text().strip())
    add_key(
        server,
        "brisbane",
        "football.example.com",
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    )


async def test_dkimpy_rfc6376_signed_message_passes(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    football(dns_server)
    results = await dkim.verify(resolver, (PY / "rfc6376.signed.msg").read_bytes(), now=NOW)
    assert [r.status for r in results] == [dkim.Status.PASS, dkim.Status.PASS]
    # dkimpy 1.1.8 does not verify this one either (checked by hand with dkim.verify).
    results = await dkim.verify(resolver, (PY / "rfc6376.signed.no_t.msg").read_bytes(), now=NOW)
    assert [r.status for r in results] == [dkim.Status.FAIL]


async def test_dkimpy_defective_key_is_permerror(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    # dkimpy's dnsfunc6: a p= that is not a valid public key.
    add_key(
        dns_server,
        "test",
        "football.example.com",
        "k=rsa; p=MFwwDQYJKoZIhvNAQEBBQADSwAwSAJBANmBe10IgY+u7h3enWTukkqtUD5PR52T"
        "b/mPfjC0QJTocVBq6Za/PlzfV+Py92VaCak19F4WrbVTK5Gg5tW220MCAwEAAQ==",
    )
    results = await dkim.verify(resolver, (PY / "rfc6376.signed.rsa.msg").read_bytes(), now=NOW)
    assert [r.status for r in results] == [dkim.Status.PERMERROR]


async def test_dkimpy_bad_domain_is_permerror(resolver: Resolver) -> None:
    results = await dkim.verify(resolver, (PY / "test.message.baddomain").read_bytes(), now=NOW)
    assert [r.status for r in results] == [dkim.Status.PERMERROR]


async def test_exim_ed25519_message(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    add_key(dns_server, "sed", "test.ex", (PY / "eximtest.dns").read_text().strip())
    results = await dkim.verify(resolver, (PY / "ed25519test2.msg").read_bytes(), now=NOW)
    assert [r.status for r in results] == [dkim.Status.PASS]


@pytest.mark.parametrize(
    ("record", "status"),
    [
        ("test.txt", dkim.Status.PASS),
        ("test2.txt", dkim.Status.PASS),  # no k=: rsa is the default
        ("test_bad.txt", dkim.Status.PERMERROR),  # damaged key: not a valid RSA key
        ("badk.txt", dkim.Status.PERMERROR),  # unknown k=
        ("badversion.txt", dkim.Status.PERMERROR),  # not DKIM1: no key record
    ],
)
async def test_dkimpy_key_records(
    dns_server: LoopbackDNSServer, resolver: Resolver, record: str, status: dkim.Status
) -> None:
    key = load_private_key((PY / "test.private").read_bytes())
    msg = (PY / "test.message").read_bytes()
    sel = dkim.Selector("example.com", "test", key)
    signed = dkim.sign(msg, selectors=[sel], now=NOW) + msg
    add_key(dns_server, "test", "example.com", (PY / record).read_text().strip())
    results = await dkim.verify(resolver, signed, now=NOW)
    assert [r.status for r in results] == [status], results


async def test_dkimpy_keys_load_and_verify(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    cases = [
        ("1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt", "a"),  # PKCS#1 p=
        ("2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt", "b"),
    ]
    for keyfile, txt, sel in cases:
        key = load_private_key((PY / keyfile).read_bytes())
        add_key(dns_server, sel, "example.org", (PY / txt).read_text().strip())
        signed = dkim.sign(MSG, selectors=[dkim.Selector("example.org", sel, key)], now=NOW)
        results = await dkim.verify(resolver, signed + MSG, now=NOW)
        assert [r.status for r in results] == [dkim.Status.PASS], (keyfile, results)


# -- sign/verify round trips and statuses ------------------------------------------------


async def test_sign_verify_rsa_and_ed25519(
    dns_server: LoopbackDNSServer, resolver: Resolver, rsa_pem: bytes, ed_pem: bytes
) -> None:
    add_key(dns_server, "r", "example.org", dkim.txt_record(rsa_pem))
    add_key(dns_server, "e", "example.org", dkim.txt_record(ed_pem))
    sels = [
        dkim.Selector("example.org", "r", load_private_key(rsa_pem), expiration=3600),
        dkim.Selector("example.org", "e", load_private_key(ed_pem)),
    ]
    headers = dkim.sign(MSG, selectors=sels, now=NOW)
    assert headers.count(b"DKIM-Signature:") == 2
    assert all(len(line) <= 78 for line in headers.split(b"\r\n"))
    assert b"x=1700003600;" in headers
    results = await dkim.verify(resolver, headers + MSG, now=NOW)
    assert [(r.status, r.algorithm, r.trusted) for r in results] == [
        (dkim.Status.PASS, "rsa-sha256", True),
        (dkim.Status.PASS, "ed25519-sha256", True),
    ]
    assert results[0].key_bits == 2048
    # Expired later on: RFC 6376 6.1.1.
    later = await dkim.verify(resolver, headers + MSG, now=NOW + 7200)
    assert later[0].status is dkim.Status.PERMERROR and "expired" in later[0].reason
    assert later[1].status is dkim.Status.PASS


def test_default_headers_are_oversigned(rsa_pem: bytes) -> None:
    headers = dkim.sign(MSG, selectors=[signer(rsa_pem)], now=NOW).decode()
    h = "".join(re.search(r"[; ]h=([^;]*);", headers).group(1).split())  # type: ignore[union-attr]
    assert h.split(":") == [
        "From", "From", "To", "To", "Cc", "Bcc", "Reply-To", "References",
        "In-Reply-To", "Subject", "Subject", "Date", "Date", "Message-Id",
        "Message-Id", "Content-Type",
    ]  # fmt: skip


async def test_added_from_or_subject_breaks_oversigned_signature(
    dns_server: LoopbackDNSServer, resolver: Resolver, rsa_pem: bytes
) -> None:
    add_key(dns_server, "sel", "example.org", dkim.txt_record(rsa_pem))
    sig = dkim.sign(MSG, selectors=[signer(rsa_pem)], now=NOW)
    tampered = sig + b"Subject: buy now\r\n" + MSG
    assert (await dkim.verify(resolver, tampered, now=NOW))[0].status is dkim.Status.FAIL
    body = sig + MSG.replace(b"game", b"match")
    res = await dkim.verify(resolver, body, now=NOW)
    assert res[0].status is dkim.Status.FAIL and "body hash" in res[0].reason
    # Not over-signed: a second From added on top leaves the signature passing, but
    # it is no longer trusted (two From fields, the top one unsigned).
    plain = dkim.sign(MSG, selectors=[signer(rsa_pem, oversign=False)], now=NOW)
    twofrom = await dkim.verify(resolver, b"From: evil@example.com\r\n" + plain + MSG, now=NOW)
    assert twofrom[0].status is dkim.Status.PASS
    assert not twofrom[0].trusted and not twofrom[0].covers_from


def test_sign_refuses_zero_or_two_from_fields(rsa_pem: bytes) -> None:
    with pytest.raises(dkim.SignError):
        dkim.sign(b"To: a@example.org\r\n\r\nx\r\n", selectors=[signer(rsa_pem)])
    with pytest.raises(dkim.SignError):
        dkim.sign(b"From: a@x.org\r\nFrom: b@x.org\r\n\r\nx\r\n", selectors=[signer(rsa_pem)])


def test_sign_refuses_mismatched_algorithm(rsa_pem: bytes) -> None:
    with pytest.raises(dkim.SignError):
        dkim.sign(MSG, selectors=[signer(rsa_pem, algorithm=dkim.Algorithm.ED25519_SHA256)])
    with pytest.raises(dkim.SignError):
        dkim.sign(MSG, selectors=[signer(rsa_pem, algorithm=dkim.Algorithm.RSA_SHA1)])


def _resign(msg: bytes, key: rsa.RSAPrivateKey, tags: str, hash_name: str = "sha256") -> bytes:
    """A hand-made relaxed/relaxed signature with extra or changed tags."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from app.mailauth.dkim_canon import body_hash, relaxed_header

    headers, off = split_message(msg)
    length = None
    if "l=" in tags:
        length = min(
            int(tags.split("l=")[1].split(";")[0]), len(canon_body(msg[off:], Canon.RELAXED))
        )
    bh = base64.b64encode(body_hash(msg[off:], Canon.RELAXED, hash_name, length)).decode()
    field = f"DKIM-Signature: v=1; d=example.org; s=sel; c=relaxed/relaxed; {tags}; bh={bh}; b="
    data = b"".join(relaxed_header(h.raw) for h in select_headers(headers, ["from", "subject"]))
    h_field = field.replace("; bh=", "; h=from:subject; bh=")
    data += relaxed_header(h_field.encode()).removesuffix(b"\r\n")
    algo = hashes.SHA1() if hash_name == "sha1" else hashes.SHA256()
    b = base64.b64encode(key.sign(data, padding.PKCS1v15(), algo)).decode()
    return (h_field + b + "\r\n").encode() + msg


async def test_l_and_sha1_pass_but_are_not_trusted(
    dns_server: LoopbackDNSServer, resolver: Resolver, rsa_pem: bytes
) -> None:
    add_key(dns_server, "sel", "example.org", dkim.txt_record(rsa_pem))
    key = load_private_key(rsa_pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    limited = _resign(MSG, key, "a=rsa-sha256; l=6")
    res = (await dkim.verify(resolver, limited + b"appended\r\n", now=NOW))[0]
    assert res.status is dkim.Status.PASS and res.body_length_limited and not res.trusted
    sha1 = (await dkim.verify(resolver, _resign(MSG, key, "a=rsa-sha1", "sha1"), now=NOW))[0]
    assert sha1.status is dkim.Status.PASS and sha1.algorithm == "rsa-sha1"
    assert not sha1.trusted and "8301" in sha1.reason
    too_long = (await dkim.verify(resolver, _resign(MSG, key, "a=rsa-sha256; l=6000"), now=NOW))[0]
    assert too_long.status is dkim.Status.FAIL


async def test_key_record_problems(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    # cryptography cannot make 512-bit keys any more: publish the ARC suite's 512-bit
    # public key for a 1024-bit signer; the size check comes before the signature's.
    small = load_private_key(dkim.generate_rsa(1024))
    small_p = (
        "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAIWmlgix/84GJ+dfgjm7LTc9EPdfkftlgiPpCq4/kbDAZmU0Vv"
        "YKDljjleJ1dfvS+CGy9U/kk1tG3EeEvb82xAcCAwEAAQ=="
    )
    ed = ed25519.Ed25519PrivateKey.generate()
    cases = {
        "small": (small, "v=DKIM1; k=rsa; p=" + small_p, dkim.Status.PERMERROR),  # RFC 8301
        "revoked": (ed, "v=DKIM1; k=ed25519; p=", dkim.Status.PERMERROR),
        "wrongk": (ed, "v=DKIM1; k=rsa; " + dkim.txt_record(ed).split("; ", 2)[2], dkim.Status.PERMERROR),
        "hashes": (ed, dkim.txt_record(ed) + "; h=sha1", dkim.Status.PERMERROR),
        "service": (ed, dkim.txt_record(ed) + "; s=tlsrpt", dkim.Status.PERMERROR),
        "testing": (ed, dkim.txt_record(ed) + "; t=y", dkim.Status.PASS),
        "missing": (ed, "", dkim.Status.PERMERROR),
        "twice": (ed, "", dkim.Status.TEMPERROR),
        "servfail": (ed, "", dkim.Status.TEMPERROR),
    }  # fmt: skip
    for name, (_, txt, _) in cases.items():
        if txt:
            add_key(dns_server, name, "example.org", txt)
    add_key(
        dns_server,
        "twice",
        "example.org",
        [dkim.txt_record(ed), dkim.txt_record(dkim.generate_ed25519())],
    )
    dns_server.servfail("servfail._domainkey.example.org")
    for name, (key, _, status) in cases.items():
        sel = dkim.Selector("example.org", name, key)
        signed = dkim.sign(MSG, selectors=[sel], now=NOW) + MSG
        res = await dkim.verify(resolver, signed, now=NOW)
        assert res[0].status is status, (name, res)
    # A failure with a key in testing mode counts as no signature (RFC 6376 3.6.1 t=y).
    bad = dkim.sign(MSG, selectors=[dkim.Selector("example.org", "testing", ed)], now=NOW)
    res = await dkim.verify(resolver, bad + MSG + b"more\r\n", now=NOW)
    assert res[0].status is dkim.Status.NONE and res[0].testing


async def test_signature_parameter_problems(
    dns_server: LoopbackDNSServer, resolver: Resolver, rsa_pem: bytes
) -> None:
    add_key(dns_server, "sel", "example.org", dkim.txt_record(rsa_pem))
    key = load_private_key(rsa_pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    good = _resign(MSG, key, "a=rsa-sha256")
    assert (await dkim.verify(resolver, good, now=NOW))[0].status is dkim.Status.PASS
    variants = [
        (b"h=from:subject", b"h=subject"),  # From not signed
        (b"v=1;", b"v=2;"),
        (b"a=rsa-sha256", b"a=rsa-md5"),
        (b"d=example.org", b"d=org"),
        (b"c=relaxed/relaxed", b"c=fancy"),
        (b"s=sel;", b"s=sel; i=joe@example.com;"),  # i= outside d=
        (b"s=sel;", b"s=sel; q=http/well-known;"),
        (b"s=sel;", b"s=sel; s=other;"),  # duplicate tag
        (b"bh=", b"bh=AAAA"),  # bad body hash length
    ]
    for old, new in variants:
        res = await dkim.verify(resolver, good.replace(old, new, 1), now=NOW)
        assert res[0].status is dkim.Status.PERMERROR, (new, res)
    # Timestamps: x= before t= is invalid.
    res = await dkim.verify(resolver, _resign(MSG, key, "a=rsa-sha256; t=200; x=100"), now=NOW)
    assert res[0].status is dkim.Status.PERMERROR


async def test_identity_and_strict_flag(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    add_key(dns_server, "sel", "example.org", dkim.txt_record(ed) + "; t=s")
    assert parse_key_record(dkim.txt_record(ed) + "; t=s").strict_identity
    signed = dkim.sign(MSG, selectors=[dkim.Selector("example.org", "sel", ed)], now=NOW)
    res = await dkim.verify(resolver, signed + MSG, now=NOW)
    assert res[0].status is dkim.Status.PASS and res[0].identity == "@example.org"


async def test_unsigned_and_too_many_signatures(
    dns_server: LoopbackDNSServer, resolver: Resolver, ed_pem: bytes
) -> None:
    assert await dkim.verify(resolver, MSG, now=NOW) == []
    add_key(dns_server, "sel", "example.org", dkim.txt_record(ed_pem))
    one = dkim.sign(MSG, selectors=[signer(ed_pem)], now=NOW)
    res = await dkim.verify(resolver, one * 3 + MSG, now=NOW, max_signatures=2)
    assert [r.status for r in res] == [dkim.Status.PASS, dkim.Status.PASS, dkim.Status.NEUTRAL]


async def test_bare_lf_message_and_big_body_in_executor(
    dns_server: LoopbackDNSServer, resolver: Resolver, ed_pem: bytes
) -> None:
    import concurrent.futures

    add_key(dns_server, "sel", "example.org", dkim.txt_record(ed_pem))
    big = MSG + b"x" * 100 + b"\r\n" * 3 + (b"line  of text \r\n" * 80_000)
    signed = dkim.sign(big, selectors=[signer(ed_pem)], now=NOW) + big
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        res = await dkim.verify(resolver, signed, now=NOW, executor=pool)
    assert res[0].status is dkim.Status.PASS
    lf = signed.replace(b"\r\n", b"\n")
    assert (await dkim.verify(resolver, lf, now=NOW))[0].status is dkim.Status.PASS


async def test_authentic_key_record(
    dns_server: LoopbackDNSServer, resolver: Resolver, ed_pem: bytes
) -> None:
    add_key(dns_server, "sel", "example.org", dkim.txt_record(ed_pem))
    dns_server.set_authentic("example.org", True)
    signed = dkim.sign(MSG, selectors=[signer(ed_pem)], now=NOW) + MSG
    assert (await dkim.verify(resolver, signed, now=NOW))[0].authentic
    dns_server.set_authentic("example.org", False)
    resolver.clear_cache()
    assert not (await dkim.verify(resolver, signed, now=NOW))[0].authentic


# -- keys and selectors ---------------------------------------------------------------


def test_generated_keys_and_txt_records() -> None:
    pem = dkim.generate_rsa(1024)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    rec = parse_key_record(dkim.txt_record(pem))
    assert rec.key_type == "rsa" and rec.bits == 1024
    ed = dkim.generate_ed25519()
    rec = parse_key_record(dkim.txt_record(ed))
    assert rec.key_type == "ed25519" and dkim.txt_record(ed).startswith("v=DKIM1; k=ed25519; p=")
    with pytest.raises(DKIMKeyError):
        dkim.generate_rsa(512)
    with pytest.raises(DKIMKeyError):
        load_private_key(b"not a key")
    # PKCS#1 PEM as written by older tools.
    assert isinstance(load_private_key((PY / "test.private").read_bytes()), rsa.RSAPrivateKey)


def test_selectors_for_domain_walks_up(ed_pem: bytes) -> None:
    key = load_private_key(ed_pem)
    a = dkim.Selector("example.org", "a", key)
    b = dkim.Selector("sub.example.org", "b", key)
    table = {"example.org": [a], "Sub.Example.org.": [b]}
    assert dkim.selectors_for_domain("x.sub.example.org", table) == [b]
    assert dkim.selectors_for_domain("other.example.org", table) == [a]
    assert dkim.selectors_for_domain("EXAMPLE.ORG", table) == [a]
    assert dkim.selectors_for_domain("example.net", table) == ()
