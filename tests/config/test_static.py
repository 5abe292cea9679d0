"""Static configuration: loading, every error with its dotted path, the annotated example."""

from pathlib import Path

import pytest

from app.config import static
from app.config.profiles import PROFILES, ProfileName
from app.config.schema import ConfigError


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        static.parse(text)
    return {p.path: p.message for p in e.value.problems}


def test_annotated_example_is_valid_and_documents_every_section() -> None:
    text = static.example()
    cfg = static.parse(text)
    assert cfg.hostname == "mail.example.com"
    for section in (
        "[log]",
        "[dns]",
        "[limits]",
        "[quota]",
        "[tuning]",
        "[listeners.public]",
        "[listeners.public.smtp]",
        "[listeners.public.tls]",
    ):
        assert section in text
    # every setting line is preceded by its description
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            assert lines[i - 1].startswith("# "), line


def test_every_error_is_reported_with_its_path() -> None:
    got = problems(
        'hostname = "bad..host"\nprofile = "huge"\n'
        "limits = { max_recipients = -1, nonsense = 1 }\n"
        '[listeners.x]\nips = ["1.2.3"]\nsmtp = { enabled = "yes" }\n'
        '[dns]\nservers = ["not an ip"]\n'
    )
    assert set(got) == {
        "hostname",
        "data_dir",
        "profile",
        "limits.nonsense",
        "limits.max_recipients",
        "listeners.x.ips[0]",
        "listeners.x.smtp.enabled",
        "dns.servers[0]",
    }
    assert got["data_dir"] == "required setting is missing"
    assert "lowmem" in got["profile"]


def test_toml_syntax_error_is_reported() -> None:
    assert "not valid TOML" in problems("hostname = \n")[""]


def test_two_services_on_one_port_conflict() -> None:
    got = problems(
        'hostname = "h.example"\ndata_dir = "d"\n'
        '[listeners.a]\nips = ["127.0.0.1"]\nsmtp = {enabled = true, port = 2525}\n'
        '[listeners.b]\nips = ["127.0.0.1"]\nimap = {enabled = true, port = 2525}\n'
    )
    assert "listeners.b.imap" in got


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    f = tmp_path / "etc" / "p.toml"
    f.parent.mkdir()
    f.write_text('hostname = "h.example"\ndata_dir = "../var"\n')
    assert static.load(f).data_path == (tmp_path / "var").resolve()


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        static.load(tmp_path / "missing.toml")


def test_profile_sets_knobs_and_overrides_win() -> None:
    base = 'hostname = "h.example"\ndata_dir = "d"\n'
    low = static.parse(base + 'profile = "lowmem"\n')
    assert low.tuned == PROFILES[ProfileName.LOWMEM]
    assert low.tuned.store_threads < PROFILES[ProfileName.DEFAULT].store_threads
    over = static.parse(base + 'profile = "lowmem"\n[tuning]\nweb_threads = 5\n')
    assert over.tuned.web_threads == 5
    assert over.tuned.sqlite_cache_kib == PROFILES[ProfileName.LOWMEM].sqlite_cache_kib


def test_standard_ports_are_used_when_port_is_zero() -> None:
    cfg = static.parse(
        'hostname = "h.example"\ndata_dir = "d"\n[listeners.p]\nsubmission = {enabled = true}\n'
    )
    assert cfg.listeners["p"].port("submission") == 587
