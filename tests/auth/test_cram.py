import hmac
import random

from app.auth.cram import CramMD5State


def test_states_finish_to_stdlib_hmac_for_many_keys() -> None:
    rng = random.Random(20240611)
    lengths = [0, 1, 55, 56, 63, 64, 65, 127, 128, 200]
    for i in range(220):
        klen = lengths[i] if i < len(lengths) else rng.randrange(0, 150)
        key = rng.randbytes(klen)
        msg = rng.randbytes(rng.randrange(0, 130))
        state = CramMD5State.from_key(key)
        assert state.hmac(msg) == hmac.new(key, msg, "md5").digest(), (klen, len(msg))


def test_rfc2195_example() -> None:
    # RFC 2195 §2: user tim, password tanstaaftanstaaf.
    state = CramMD5State.from_key(b"tanstaaftanstaaf")
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    assert state.hmac(challenge).hex() == "b913a602c7eda7a495b4e6e7334d3890"
    assert state.verify(challenge, bytes.fromhex("b913a602c7eda7a495b4e6e7334d3890"))
    assert not state.verify(challenge, bytes(16))


def test_repr_hides_states() -> None:
    assert "redacted" in repr(CramMD5State.from_key(b"k"))
