"""Resource profiles: ``default`` and ``lowmem`` (512 MiB boards such as a Raspberry Pi).

A profile chooses the sizes that decide memory use. Each knob can be overridden one
by one in the ``[tuning]`` table of the configuration file (0 keeps the profile's
value).

``idle_release_seconds``: after a burst of work the process keeps memory it no
longer uses (SQLite page caches, free blocks in the C allocator's per-thread
arenas: ~35 MiB after filling a mailbox with 5,000 messages over IMAP). Once the
store has seen no operation for this long, the server gives it back (see
:mod:`app.memory`). A release takes a few milliseconds and happens once per idle
period; the next reads refill the caches from the operating system's page cache,
so a short delay costs little. ``lowmem`` releases sooner, memory being what such a
machine runs out of first. In the configuration file a negative value disables it.
"""

import enum
from dataclasses import dataclass, fields, replace

from app.config.schema import setting


class ProfileName(enum.StrEnum):
    DEFAULT = "default"
    LOWMEM = "lowmem"


@dataclass(frozen=True, slots=True)
class Tuning:
    """The knobs a profile sets. In the configuration file, 0 means "profile's value"."""

    store_threads: int = setting(
        "Threads that write and fsync account databases and message files.", 0
    )
    web_threads: int = setting("Threads that run the web interfaces' request handlers.", 0)
    cpu_threads: int = setting(
        "Threads for CPU-heavy work: password hashing, signing and hashing large messages.", 0
    )
    sqlite_cache_kib: int = setting("SQLite page cache per open database connection, in KiB.", 0)
    max_connections: int = setting(
        "Connections accepted at once over all listeners; more are refused.", 0
    )
    malloc_arenas: int = setting(
        "Memory arenas the C allocator may use (glibc's M_ARENA_MAX); fewer arenas keep "
        "less free memory per thread, at the cost of some contention between threads.",
        0,
    )
    idle_release_seconds: float = setting(
        "Seconds without store activity after which the server frees memory it can "
        "rebuild (SQLite caches, free allocator memory); negative disables it.",
        0.0,
    )
    max_connection_rate_per_ip: int = setting(
        "New connections a minute from one IP address (/64); three and nine times as many "
        "from its /26 (/48) and /21 (/32), as mox.",
        0,
    )
    max_connections_per_ip: int = setting(
        "Connections accepted at once from one IP address (one /64 for IPv6); three times "
        "as many from its /26 (/48) and nine times from its /21 (/32), as mox.",
        0,
    )


PROFILES: dict[ProfileName, Tuning] = {
    ProfileName.DEFAULT: Tuning(
        store_threads=4,
        web_threads=8,
        cpu_threads=2,
        sqlite_cache_kib=2048,
        max_connections=2000,
        max_connections_per_ip=30,
        max_connection_rate_per_ip=300,
        idle_release_seconds=2.0,
        malloc_arenas=1,
    ),
    ProfileName.LOWMEM: Tuning(
        store_threads=2,
        web_threads=2,
        cpu_threads=1,
        sqlite_cache_kib=512,
        max_connections=300,
        max_connections_per_ip=20,
        max_connection_rate_per_ip=300,
        idle_release_seconds=1.0,
        malloc_arenas=1,
    ),
}


def effective(profile: ProfileName, overrides: Tuning) -> Tuning:
    """The profile's knobs with the non-zero overrides applied."""
    base = PROFILES[profile]
    changed = {
        f.name: getattr(overrides, f.name) for f in fields(Tuning) if getattr(overrides, f.name)
    }
    return replace(base, **changed)
