"""Resource profiles: ``default`` and ``lowmem`` (512 MiB boards such as a Raspberry Pi).

A profile chooses the sizes that decide memory use. Each knob can be overridden one
by one in the ``[tuning]`` table of the configuration file (0 keeps the profile's
value).
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
    ),
    ProfileName.LOWMEM: Tuning(
        store_threads=2,
        web_threads=2,
        cpu_threads=1,
        sqlite_cache_kib=512,
        max_connections=300,
        max_connections_per_ip=20,
        max_connection_rate_per_ip=300,
    ),
}


def effective(profile: ProfileName, overrides: Tuning) -> Tuning:
    """The profile's knobs with the non-zero overrides applied."""
    base = PROFILES[profile]
    changed = {
        f.name: getattr(overrides, f.name) for f in fields(Tuning) if getattr(overrides, f.name)
    }
    return replace(base, **changed)
