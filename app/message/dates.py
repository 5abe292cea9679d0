"""RFC 5322 3.3 date-time parsing (with the obsolete forms of 4.3) and formatting."""

import re
from datetime import UTC, datetime, timedelta, timezone

from app.message.errors import DateError

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 5322 4.3 obs-zone; military zones and unknown names mean -0000 (UTC).
_ZONES = {
    "ut": 0, "utc": 0, "gmt": 0, "z": 0,
    "edt": -4, "est": -5, "cdt": -5, "cst": -6, "mdt": -6, "mst": -7, "pdt": -7, "pst": -8,
}  # fmt: skip
_COMMENT = re.compile(r"\([^()]*\)")
_RFC5322 = re.compile(
    r"""\s*(?:[A-Za-z]+\s*,?\s*)?                              # day-of-week, optional
    (?P<day>\d{1,2})\s*[-\s/]?\s*(?P<mon>[A-Za-z]{3,})\.?\s*[-\s/]?\s*(?P<year>\d{2,4})
    (?:\s+|\s*,\s*|T)
    (?P<h>\d{1,2})\s*[:.]\s*(?P<m>\d{1,2})(?:\s*[:.]\s*(?P<s>\d{1,2}))?(?:\.\d+)?
    \s*(?P<zone>[+-]\s*\d{1,2}:?\d{2}|[A-Za-z]+(?:[+-]\d{1,4})?)?""",
    re.X,
)
# asctime / ctime form seen in old mail: "Mon Jan  2 15:04:05 2006"
_ASCTIME = re.compile(
    r"""\s*[A-Za-z]+\s+(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+
    (?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?\s+(?:(?P<zone>[A-Za-z]+)\s+)?(?P<year>\d{4})""",
    re.X,
)


def _zone(z: str | None) -> timezone:
    if not z:
        return UTC  # RFC 5322 4.3: unknown zone is -0000
    z = z.replace(" ", "").replace(":", "")
    if z[0] not in "+-" and ("+" in z or "-" in z):  # "GMT+0200"
        z = z[min(i for i in (z.find("+"), z.find("-")) if i >= 0) :]
    if z[0] in "+-":
        digits = z[1:]
        if len(digits) <= 2:
            digits = digits.rjust(2, "0") + "00"
        hh, mm = int(digits[:-2]), int(digits[-2:])
        if hh > 23 or mm > 59:
            return UTC
        off = timedelta(hours=hh, minutes=mm)
        return timezone(-off if z[0] == "-" else off)
    hours = _ZONES.get(z.lower())
    if hours is None:
        return UTC
    return timezone(timedelta(hours=hours))


def parse_date(text: str) -> datetime:
    """Parse an RFC 5322 date-time to an aware datetime; raises :class:`DateError`.

    Accepts the obsolete forms of RFC 5322 4.3: 2- and 3-digit years, named and
    military zones, missing seconds, comments, missing day-of-week comma; and the
    asctime form.
    """
    t = _COMMENT.sub(" ", text) if "(" in text else text
    # Single spaces and a bounded length keep the regexes linear on hostile input.
    t = " ".join(t[:1000].split())[:100]
    m = _RFC5322.match(t) or _ASCTIME.match(t)
    if m is None:
        raise DateError(text, "unrecognised date")
    mon = _MONTHS.get(m.group("mon")[:3].lower())
    if mon is None:
        raise DateError(text, "unknown month")
    year = int(m.group("year"))
    if len(m.group("year")) == 2:  # RFC 5322 4.3: 00-49 is 2000-2049, 50-99 is 1950-1999
        year += 2000 if year < 50 else 1900
    elif len(m.group("year")) == 3:  # RFC 5322 4.3: three digits add 1900
        year += 1900
    sec = int(m.group("s") or 0)
    try:
        return datetime(
            year,
            mon,
            int(m.group("day")),
            int(m.group("h")),
            int(m.group("m")),
            min(sec, 59),  # RFC 5322 3.3: a leap second (60) is clamped
            tzinfo=_zone(m.group("zone")),
        )
    except ValueError as e:
        raise DateError(text, f"invalid date: {e}") from None


def format_date(dt: datetime) -> str:
    """Format an aware datetime for a Date header (RFC 5322 3.3).

    Raises :class:`DateError` for a naive datetime.
    """
    off = dt.utcoffset()
    if off is None:
        raise DateError(str(dt), "naive datetime")
    minutes = int(off.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTH_NAMES[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
