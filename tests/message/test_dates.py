"""RFC 5322 3.3 dates and the obsolete forms of 4.3."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.message.dates import format_date, parse_date
from app.message.errors import DateError


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Fri, 21 Nov 1997 09:55:06 -0600", datetime(1997, 11, 21, 9, 55, 6, tzinfo=tz(-6))),
        ("Tue, 1 Jul 2003 10:52:37 +0200", datetime(2003, 7, 1, 10, 52, 37, tzinfo=tz(2))),
        # RFC 5322 A.6.2 / 4.3: obsolete 2-digit year, named zone, no seconds
        ("21 Nov 97 09:55 EST", datetime(1997, 11, 21, 9, 55, tzinfo=tz(-5))),
        ("Thu, 13 Feb 69 23:32 -0330 (Newfoundland Time)",
         datetime(1969, 2, 13, 23, 32, tzinfo=tz(-3.5))),
        ("1 Jan 49 00:00:00 GMT", datetime(2049, 1, 1, tzinfo=UTC)),
        ("1 Jan 50 00:00:00 UT", datetime(1950, 1, 1, tzinfo=UTC)),
        ("1 Jan 100 00:00:00 +0000", datetime(2000, 1, 1, tzinfo=UTC)),  # 3 digits: +1900
        ("Sat, 13 Mar 2010 11:29 Z", datetime(2010, 3, 13, 11, 29, tzinfo=UTC)),
        ("Sat, 13 Mar 2010 11:29:00 A", datetime(2010, 3, 13, 11, 29, tzinfo=UTC)),  # military
        ("Mon, 2 Jan 2006 15:04:05 PDT", datetime(2006, 1, 2, 15, 4, 5, tzinfo=tz(-7))),
        ("Mon,2 Jan 2006 15:04:05", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),  # no zone
        ("  Mon ,  02  Jan  2006  15 : 04 : 05  +0100 ",
         datetime(2006, 1, 2, 15, 4, 5, tzinfo=tz(1))),
        ("Mon, 2 January 2006 15:04:05 GMT+0200", datetime(2006, 1, 2, 15, 4, 5, tzinfo=tz(2))),
        ("Wed Jun 30 21:49:08 1993", datetime(1993, 6, 30, 21, 49, 8, tzinfo=UTC)),  # asctime
        ("Sat, 31 Dec 2016 23:59:60 +0000", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_parse(text: str, want: datetime) -> None:
    got = parse_date(text)
    assert got == want and got.utcoffset() == want.utcoffset()


@pytest.mark.parametrize("text", ["", "yesterday", "32 Jan 2020 00:00 +0000", "1 Foo 2020 1:00"])
def test_invalid(text: str) -> None:
    with pytest.raises(DateError) as e:
        parse_date(text)
    assert e.value.text == text


def test_format_round_trip() -> None:
    dt = datetime(2006, 1, 2, 15, 4, 5, tzinfo=tz(-7))
    assert format_date(dt) == "Mon, 02 Jan 2006 15:04:05 -0700"
    assert parse_date(format_date(dt)) == dt
    assert format_date(datetime(2020, 5, 1, tzinfo=tz(5.5))).endswith("+0530")


def test_format_naive_is_error() -> None:
    with pytest.raises(DateError):
        format_date(datetime(2020, 1, 1))
