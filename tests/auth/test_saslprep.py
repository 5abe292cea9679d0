import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.auth.base import AuthError
from app.auth.saslprep import saslprep

CASES = json.loads((Path(__file__).parent.parent / "data/scram/saslprep-rfc4013.json").read_text())[
    "cases"
]


@pytest.mark.parametrize(
    "case", CASES, ids=[c["input"].encode("unicode_escape").decode() for c in CASES]
)
def test_rfc4013_examples(case: dict[str, object]) -> None:
    s = "".join(chr(int(str(cp), 16)) for cp in case["input_codepoints"])  # type: ignore[attr-defined]
    if case["error"]:
        with pytest.raises(AuthError) as ei:
            saslprep(s)
        assert ei.value.kind == "saslprep"
    else:
        assert saslprep(s) == case["output"]


def test_non_ascii_space_maps_to_space() -> None:
    assert saslprep("a\u00a0b\u3000c") == "a b c"


def test_unassigned_rejected_for_stored_allowed_for_query() -> None:
    unassigned = "\u0221"  # unassigned in Unicode 3.2
    with pytest.raises(AuthError):
        saslprep("x" + unassigned)
    assert saslprep("x" + unassigned, allow_unassigned=True) == "x" + unassigned


def test_bidi_all_rtl_ok_and_mixed_rejected() -> None:
    assert saslprep("\u0627\u0628") == "\u0627\u0628"
    with pytest.raises(AuthError):
        saslprep("\u0627a\u0628")


def test_error_does_not_leak_the_input() -> None:
    with pytest.raises(AuthError) as ei:
        saslprep("secret\u0007pw")
    assert "secret" not in str(ei.value) and "0007" not in str(ei.value)


def test_printable_ascii_takes_the_short_way_with_the_same_result() -> None:
    from app.auth.saslprep_rules import prepare

    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    samples = [printable, "correct horse battery staple", "P@ss w0rd!", " lead", "~"]
    samples += list(printable)
    for s in samples:
        for allow in (False, True):
            assert saslprep(s, allow_unassigned=allow) == prepare(s, allow) == s
    # ASCII controls are not printable: they take the full procedure and are refused.
    for c in [*map(chr, range(0x20)), "\x7f"]:
        with pytest.raises(AuthError):
            saslprep("pass" + c)


def test_ascii_login_does_not_load_the_unicode_tables() -> None:
    code = (
        "import sys\n"
        "from app.auth.saslprep import saslprep\n"
        "assert saslprep('you@example.org') == 'you@example.org'\n"
        "assert saslprep('s3cret pass', allow_unassigned=True) == 's3cret pass'\n"
        "assert 'stringprep' not in sys.modules, 'loaded for ASCII'\n"
        "assert saslprep('I\\u00adX') == 'IX'\n"
        "assert 'stringprep' in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
