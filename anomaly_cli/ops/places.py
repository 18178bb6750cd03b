"""Where a school is, read from its UDISE code.

The UDISE (Unified District Information System for Education) school code has 11 digits::

    27 25 12 001 04
    |  |  |  |   `- school serial within the village (2)
    |  |  |  `----- village / ward (3)
    |  |  `-------- block (2)
    |  `----------- district (2)
    `-------------- state (2; 27 is Maharashtra)

What this module relies on, and nothing more: an 11-digit code's first 2 digits name the state,
the first 4 the district and the first 6 the block (district and block numbers are only unique
within their parent, so the keys are prefixes, never the 2-digit parts alone). It carries no table
of names: the page shows codes (``27-25``, ``27-25-12``), which is what state staff use in UDISE+.
Checked against public descriptions of the code, not the UDISE+ master list; a code names the
district the school was registered in and is kept when a district is split, so the page's
district is the code's district.

A code that does not parse (missing, not 11 digits after stripping spaces and dashes, a leading
zero state, an old 10-digit DISE code...) is never dropped or guessed at: its school key is the
code itself as stored and its district and block are :data:`UNPARSED` (counted apart on the page,
so a data problem stays visible instead of being folded into a real district).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: District / block key of a school whose code does not parse.
UNPARSED = "?"
#: Key of a result without any UDISE code.
MISSING = "(none)"
_DIGITS = re.compile(r"^[0-9]{11}$")


@dataclass(frozen=True)
class Place:
    """A school's place: ``school`` is the normalised code (or the raw value when it does not parse)."""

    school: str
    state: str
    district: str
    block: str
    parsed: bool

    @property
    def district_label(self) -> str:
        """``27-25`` (state-district), or :data:`UNPARSED`."""
        return f"{self.district[:2]}-{self.district[2:]}" if self.parsed else UNPARSED

    @property
    def block_label(self) -> str:
        """``27-25-12`` (state-district-block), or :data:`UNPARSED`."""
        return f"{self.block[:2]}-{self.block[2:4]}-{self.block[4:]}" if self.parsed else UNPARSED


def parse_udise(code: object) -> Place:
    """The :class:`Place` of a stored ``source.udise`` value (any type; never raises)."""
    if code is None or (isinstance(code, str) and not code.strip()):
        return Place(MISSING, UNPARSED, UNPARSED, UNPARSED, False)
    raw = str(code).strip()
    digits = re.sub(r"[\s-]", "", raw)
    if not _DIGITS.match(digits) or digits.startswith("00"):
        return Place(raw, UNPARSED, UNPARSED, UNPARSED, False)
    return Place(digits, digits[:2], digits[:4], digits[:6], True)
