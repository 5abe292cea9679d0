"""The streaming body hash equals the whole-body one for any body and any chunking."""

import random

import pytest

from app.mailauth.dkim_canon import (
    BodyHasher,
    BodyTooShort,
    Canon,
    body_hash,
    normalize_line_endings,
)


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 7)
        out.append(data[i : i + n])
        i += n
    return out


@pytest.mark.parametrize("canon", [Canon.SIMPLE, Canon.RELAXED])
def test_streaming_body_hash_matches_whole_body(canon: Canon) -> None:
    rng = random.Random(6376)
    alphabet = [b"a", b"b", b" ", b"\t", b"\r\n", b"\n", b"\r\n\r\n"]
    for _ in range(3000):
        body = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        length = rng.choice([None, None, rng.randint(0, 30)])
        expected: bytes | type[BodyTooShort]
        try:
            expected = body_hash(
                normalize_line_endings(b"\r\n\r\n" + body)[4:], canon, "sha256", length
            )
        except BodyTooShort:
            expected = BodyTooShort
        h = BodyHasher(canon, "sha256", length)
        for c in chunks(body, rng):
            h.feed(c)
        if expected is BodyTooShort:
            with pytest.raises(BodyTooShort):
                h.digest()
        else:
            assert h.digest() == expected, (body, length)


async def test_verify_from_a_file_equals_verify_from_bytes(tmp_path, dns_server, resolver) -> None:  # type: ignore[no-untyped-def]
    from app.mailauth import dkim
    from app.mailauth.dkim_keys import generate_ed25519, load_private_key, txt_record

    pem = generate_ed25519()
    dns_server.add("sel._domainkey.example.org", "TXT", txt_record(pem))
    body = b"".join(f"line {i} with  some   spaces \t\r\n".encode() for i in range(200_000))
    msg = b"From: a@example.org\r\nSubject: big\r\n\r\n" + body
    sel = dkim.Selector("example.org", "sel", load_private_key(pem))
    signed = dkim.sign(msg, selectors=[sel]) + msg
    path = tmp_path / "m.eml"
    path.write_bytes(signed)
    from_bytes = await dkim.verify(resolver, signed)
    from_file = await dkim.verify(resolver, path)
    assert [r.status for r in from_file] == [r.status for r in from_bytes] == [dkim.Status.PASS]
    path.write_bytes(signed.replace(b"line 199998", b"line 199999"))
    assert [r.status for r in await dkim.verify(resolver, path)] == [dkim.Status.FAIL]
