"""Simulated failures of ``pillarbox localserve``, for testing mail software.

A local part that ends in ``temperror``, ``permerror``, a reply code ``4NN``/``5NN``
or ``timeout`` makes the transaction fail that way: at DATA, or already at
MAIL FROM when it starts with ``mailfrom`` and at RCPT TO when it starts with
``rcptto`` (``rcptto550@any.example`` is refused at RCPT with 550).
"""

import enum
import re
from dataclasses import dataclass

_ENDING = re.compile(r"(temperror|permerror|timeout|[45][0-9][0-9])$")


class Stage(enum.StrEnum):
    MAIL = "mailfrom"
    RCPT = "rcptto"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class Simulated:
    code: int  # 0 for a timeout: no reply at all
    secode: str  # enhanced code without its class digit, e.g. "0.0"
    text: str


def simulated(localpart: str, stage: Stage) -> Simulated | None:
    """The failure a local part asks for at ``stage``, or None."""
    lp = localpart.lower()
    starts = lp.startswith(Stage.MAIL.value) or lp.startswith(Stage.RCPT.value)
    if stage is Stage.DATA and starts:
        return None
    if stage is not Stage.DATA and not lp.startswith(stage.value):
        return None
    m = _ENDING.search(lp)
    if m is None:
        return None
    kind = m.group(1)
    if kind == "timeout":
        return Simulated(0, "", "")
    if kind == "temperror":
        return Simulated(451, "0.0", "simulated temporary error")
    if kind == "permerror":
        return Simulated(550, "0.0", "simulated permanent error")
    return Simulated(int(kind), "0.0", f"simulated error {kind}")
