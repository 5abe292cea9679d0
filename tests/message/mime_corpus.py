"""Shared helpers for the message tests: the MIME corpora in tests/data/mime."""

from pathlib import Path

MIME = Path(__file__).resolve().parent.parent / "data" / "mime"


def corpus_files() -> list[Path]:
    """Every message file of both corpora (licence/readme files excluded)."""
    return sorted(
        p
        for p in MIME.rglob("*")
        if p.is_file() and p.suffix != ".md" and not p.name.startswith(("NOTICE", "LICENSE"))
    )


def corpus(name: str) -> bytes:
    """One corpus message by file name."""
    (path,) = [p for p in corpus_files() if p.name == name]
    return path.read_bytes()
