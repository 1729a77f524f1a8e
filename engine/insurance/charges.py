"""What a stored FHIR ``ChargeItem`` means for the settlement: which elements carry the money.

ChargeItems come from the HL7 billing feeds (DFT/BAR FT1 segments) and from FHIR clients alike;
both are read the same way:

- **amount** of the charge line: ``ChargeItem.priceOverride`` (R4: the total price of the line,
  which the FT1 conversion fills from the extended amount FT1-12); when absent, the extension
  ``urn:huren:StructureDefinition:charge-amount`` (``valueMoney``). The amount is the whole line:
  it is not multiplied by ``quantity``.
- **fund share** (统筹基金支付): the extension ``urn:huren:StructureDefinition:fund-share``
  (``valueMoney``); R4 ChargeItem has no element for it.
- **insurance type**: the extension ``urn:huren:StructureDefinition:insurance-type``
  (``valueCode``, a key of ``insurance_types`` in the settlement rules); without it, the type of
  the Coverage of the line's ``account`` (``Account.coverage`` → ``Coverage.type``, HL7 IN1-15),
  mapped by the rules' ``coverage_types``.
- **institution**: ``performingOrganization`` — its ``identifier`` in ``urn:huren:institution``,
  or the Organization it references, read for that identifier.
- **date**: the local date of ``occurrenceDateTime`` (or ``occurrencePeriod.start``) at the performing
  institution (its ``timezone`` in institutions.yaml, by default ``mappings.site.DEFAULT_ZONE``): as written when it
  states no offset or the local one, converted when a client wrote it in UTC or another zone
  (``2026-12-31T16:30:00Z`` is a line of 2027-01-01 in Funing).
- Only ``billable`` and ``billed`` lines count; a credit is a line with a negative amount.

Money is read as ``decimal.Decimal`` from the number's text, so ``12.30`` is exactly 12.30.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from engine.errors import Gone, NotFound
from engine.recognition.facts import local_day, local_instant
from mappings.site import DEFAULT_ZONE  # an institution's time zone when institutions.yaml says none

AMOUNT_EXT = "urn:huren:StructureDefinition:charge-amount"
FUND_SHARE_EXT = "urn:huren:StructureDefinition:fund-share"
INSURANCE_TYPE_EXT = "urn:huren:StructureDefinition:insurance-type"
INSTITUTION_SYSTEM = "urn:huren:institution"
COUNTED_STATUSES = frozenset({"billable", "billed"})


@dataclass(frozen=True)
class ChargeLine:
    ref: str
    status: str
    institution: str | None
    day: str | None  # YYYY-MM-DD as written (the institution's local date)
    amount: Decimal | None
    fund_share: Decimal | None
    insurance_type: str | None
    currency: str | None


def money(value: Any) -> Decimal | None:
    """A FHIR Money ``value`` (float, exact-text decimal or int) as a Decimal of its text."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def _ext(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    for ext in resource.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext
    return None


def institution_of(charge: dict[str, Any], organization: Callable[[str], str | None]) -> str | None:
    """The performing institution's code; ``organization(ref)`` resolves ``Organization/<id>``."""
    org = charge.get("performingOrganization") or {}
    ident = org.get("identifier") or {}
    if ident.get("system") == INSTITUTION_SYSTEM and ident.get("value"):
        return str(ident["value"])
    ref = org.get("reference")
    if isinstance(ref, str) and ref.startswith("Organization/"):
        return organization(ref)
    return None


def organization_code(resource: dict[str, Any] | None) -> str | None:
    for ident in (resource or {}).get("identifier") or ():
        if ident.get("system") == INSTITUTION_SYSTEM and ident.get("value"):
            return str(ident["value"])
    return None


class OrganizationCodes:
    """``Organization/<id>`` → its institution code, each Organization read once per report (a
    missing one answers None): the resolver ``institution_of`` and ``provider_of`` take."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository
        self._codes: dict[str, str | None] = {}

    def __call__(self, ref: str) -> str | None:
        if ref not in self._codes:
            try:
                self._codes[ref] = organization_code(self.repository.read("Organization", ref.split("/", 1)[1]))
            except (NotFound, Gone):
                self._codes[ref] = None
        return self._codes[ref]


def provider_of(encounter: dict[str, Any], organization: Callable[[str], str | None]) -> str | None:
    """The institution of an Encounter: its ``serviceProvider`` (identifier, or the Organization)."""
    provider = encounter.get("serviceProvider") or {}
    return institution_of({"performingOrganization": provider}, organization)


def context_ref(charge: dict[str, Any]) -> str | None:
    """The Encounter a charge line belongs to (``ChargeItem.context``; FT1 in a visit's DFT/BAR)."""
    ref = (charge.get("context") or {}).get("reference")
    return ref if isinstance(ref, str) and ref.startswith("Encounter/") else None


def account_refs(charge: dict[str, Any]) -> list[str]:
    return [str(a["reference"]) for a in charge.get("account") or ()
            if isinstance(a, dict) and str(a.get("reference") or "").startswith("Account/")]


def line_price(charge: dict[str, Any]) -> dict[str, Any]:
    """The Money of the whole charge line: ``priceOverride``, else the charge-amount extension's
    ``valueMoney``, else ``{}``. The one reading of a line's amount (settlement, deduction lists and
    recognition's money at stake all call it), so a line is never counted two ways."""
    price = charge.get("priceOverride")
    if not isinstance(price, dict):
        price = (_ext(charge, AMOUNT_EXT) or {}).get("valueMoney")
    return price if isinstance(price, dict) else {}


@lru_cache(maxsize=1024)
def _steady(zone: str, year: int, offset: str) -> bool:
    """Is ``offset`` (``+08:00``) ``zone``'s UTC offset all through ``year`` and two days either
    side (sampled every 12 hours; a zone's offset never changes and changes back within 12 hours)?
    Then a time of that year written with that offset is already the zone's local time, and its day
    is the one written: ``local_date`` need not convert it (moneyfix24: the conversion cost the
    settlement ~3.5 µs a line when every line has its own second, ~5 % of its CPU)."""
    if not 1 < year < 9999:
        return False
    sign = -1 if offset[0] == "-" else 1
    target = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    tz = ZoneInfo(zone)
    moment = datetime(year, 1, 1, tzinfo=UTC) - timedelta(days=2)
    last = datetime(year + 1, 1, 1, tzinfo=UTC) + timedelta(days=2)
    while moment <= last:
        if moment.astimezone(tz).utcoffset() != target:
            return False
        moment += timedelta(hours=12)
    return True


def local_date(when: str, zone: str = DEFAULT_ZONE) -> str | None:
    """The calendar day (``YYYY-MM-DD``) of a FHIR date / dateTime at an institution in ``zone``:
    a date, or a time written without an offset, is the institution's own and read as written; a
    time with an offset (``Z``, ``+09:00``) is converted to ``zone``. The year and month a
    settlement or indicator counts a line in are the hospital's, not UTC's: a line a client wrote
    at ``2026-12-31T16:30:00Z`` was made on 2027-01-01 at 00:30 in Funing (money24).

    A time whose conversion leaves the calendar's range (``9999-12-31T20:00:00Z`` is year 10000 in
    Funing) is read as written: its day is the last (or first) one there is, the edge it stands at
    (it was an OverflowError, a 500 for the whole report, moneyfix24)."""
    size = len(when)
    if size <= 16:
        return None if size < 10 else when if size == 10 else _converted(when, zone)
    key = (zone, when[:4], when[-6:])
    as_written = _AS_WRITTEN.get(key)
    if as_written is None:
        as_written = _as_written(*key)
    # written in the zone's own offset of a year it keeps it: the day as written
    return when[:10] if as_written else _converted(when, zone)


# (zone, year text, last six characters of the time) -> whether a time so written is read as written
# (``_as_written``): one dict look-up a line instead of the checks and ``_steady``'s cached call that
# cost the settlement ~1.1 µs a line (money25); bounded (a feed of odd years cannot grow it for ever)
_AS_WRITTEN: dict[tuple[str, str, str], bool] = {}


def _as_written(zone: str, year: str, tail: str) -> bool:
    """Is a time of ``year`` ending in ``tail`` (its offset, ``Z``, or no offset) read as written in
    ``zone``? Remembered only for an offset (``+08:00``): a tail without one (``Z``, a time with no
    offset, whose tail is its minutes and seconds) varies line by line and is converted anyway."""
    offset = "+00:00" if tail[-1:] == "Z" else tail
    answer = (year.isdigit() and offset[0] in "+-" and offset[3] == ":" and offset[1:3].isdigit()
              and offset[4:].isdigit() and _steady(zone, int(year), offset))
    if tail[0] in "+-":
        if len(_AS_WRITTEN) >= 4096:
            _AS_WRITTEN.clear()
        _AS_WRITTEN[(zone, year, tail)] = answer
    return answer


def _converted(when: str, zone: str) -> str:
    """``local_date`` of a time written in another offset (or of a year the zone changes its own):
    the day at the institution as the recognition facts read it (``facts.local_day``, the one owner of
    that conversion, remembered per value there); what is no FHIR time, its first ten characters."""
    day = local_day(when, zone)
    return day.isoformat() if day is not None else when[:10]


def read_line(charge: dict[str, Any], organization: Callable[[str], str | None],
              coverage_type: Callable[[list[str], str | None, str, str | None], str | None]
              = lambda refs, day, tz, when: None,
              zone: Callable[[str], str | None] = lambda code: None) -> ChargeLine:
    """``coverage_type(account refs, day, zone, time)`` answers the insurance type from the accounts'
    coverage in force on the line's local ``day`` -- at its ``time`` (the occurrence as written) where
    the Coverage's period states instants (``in_force``) -- when the line does not state it;
    ``zone(institution code)`` the institution's time zone (None: the
    site's default, ``mappings.site.DEFAULT_ZONE``), in which the line's date is read
    (``local_date``)."""
    price = line_price(charge)
    share = (_ext(charge, FUND_SHARE_EXT) or {}).get("valueMoney") or {}
    itype = (_ext(charge, INSURANCE_TYPE_EXT) or {}).get("valueCode")
    when = charge.get("occurrenceDateTime") or (charge.get("occurrencePeriod") or {}).get("start")
    institution = institution_of(charge, organization)
    tz = (zone(institution) if institution else None) or DEFAULT_ZONE
    day = local_date(when, tz) if isinstance(when, str) else None
    return ChargeLine(
        ref=f"ChargeItem/{charge.get('id')}",
        status=str(charge.get("status") or ""),
        institution=institution,
        day=day,
        amount=money(price.get("value")),
        fund_share=money(share.get("value")) if isinstance(share, dict) else None,
        insurance_type=str(itype) if itype else coverage_type(account_refs(charge), day, tz,
                                                              when if isinstance(when, str) else None),
        currency=price.get("currency") or (share.get("currency") if isinstance(share, dict) else None),
    )


def in_currency(line: ChargeLine, currency: str) -> bool:
    """Is ``line`` money in ``currency``: its currency (``read_line``: the priceOverride's, else its
    fund share's) is that one or unstated. The one rule the settlement leaves a line out by
    ("currency") and by which recognition's money at stake takes a line or not (rvmoneyleft27: the
    flag read the priceOverride alone, so a 25.00 line whose fund share said USD, left out of the
    settlement, priced the flag as CNY 25.00)."""
    return line.currency in (None, currency)


def in_force(period: Any, day: str | None, zone: str, when: str | None = None) -> bool:
    """Is a ``Coverage.period`` in force for a line of the local ``day`` (``YYYY-MM-DD``), occurring at
    ``when`` (its time as written), at an institution in ``zone``? Both ends are included (R4: a
    Period's end includes what matches it at its precision); a side not stated is open; no period,
    always. A line with no day is not checked (the settlement lists it as undated).

    A side written as a date (``2026``, ``2026-07``, ``2026-06-30``) is compared with the line's day at
    its own precision: an end of ``2026-06`` covers every day of June and none of July. A side that
    states a time (``2026-07-01T00:00:00+08:00``) is an instant, and the line's instant is compared
    with it: an end at the instant the next cover starts is that second, not the whole of 07-01 (the
    days were compared, and a line at 10:00 on 07-01 was in both covers, the first listed winning:
    review of money25). An end written to the second takes in that whole second. A line whose time
    states no hour (a date alone) is compared by days there too (its day against the side's local day):
    which part of the day it was is not known. A time without an offset is read in ``zone``."""
    if day is None or not isinstance(period, dict):
        return True
    mine_at: str | None = None
    for side, bound in (("start", period.get("start")), ("end", period.get("end"))):
        if not isinstance(bound, str) or len(bound) < 4:
            continue
        if len(bound) > 10:
            # read only here: a period of dates (IN1-12/13, the common case) costs a line nothing more
            mine_at = mine_at or (local_instant(when, zone) if when is not None and len(when) > 10 else None)
            edge_at = local_instant(bound, zone)
            if mine_at is not None and edge_at is not None:
                if side == "start" and mine_at < edge_at:
                    return False
                # an end stated to the second includes that second (.000000 to .999999)
                width = len(edge_at) - 1 if "." in bound else 19
                if side == "end" and mine_at[:width] > edge_at[:width]:
                    return False
                continue
        # a date (``2026``, ``2026-07``) is compared at its own precision; a time, by its local day
        edge = (local_date(bound, zone) or bound[:10]) if len(bound) > 10 else bound
        mine = day[:len(edge)]
        if (side == "start" and mine < edge) or (side == "end" and mine > edge):
            return False
    return True


def site_zone(site: Any) -> Callable[[str], str | None]:
    """``read_line``'s ``zone``: an institution's time zone from the site's institutions, each
    institution looked up once (make one per report, not one per line)."""
    zones: dict[str, str | None] = {}

    def zone(code: str) -> str | None:
        if code not in zones:
            inst = site.institution(code)
            zones[code] = inst.timezone if inst is not None else None
        return zones[code]
    return zone


def line_identity(charge: dict[str, Any]) -> str | None:
    """The charge line's own number: its first identifier with a value (HL7 FT1-2, the
    transaction id), scoped by the identifier's system, the performing institution and the
    patient the line names (either may be absent: a line posted through the API may name no
    institution); None with neither (a bare number says nothing of whose line it is). By it one
    line stored twice under two ids (a feed that resends it, or corrects its amount) is one line.

    Why the institution and the patient always, not the system alone: FT1-2 ``1001^HIS`` converts to
    the system ``urn:huren:id:HIS`` at every hospital, so the system names no one's sequence: a
    later line 1001 of another patient at another hospital "superseded" this one (the repeat lost
    its billed price) and the settlement counted two hospitals' lines once (a review of
    moneylast19)."""
    for ident in charge.get("identifier") or ():
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str) or not ident["value"].strip():
            continue
        org = charge.get("performingOrganization") or {}
        inst = (org.get("identifier") or {}).get("value") or org.get("reference")
        subject = (charge.get("subject") or {}).get("reference")
        if not inst and not subject:
            return None
        return f"{ident.get('system') or ''}|{inst or ''}|{subject or ''}|{ident['value'].strip()}"
    return None


def line_key(ref: str, identity: str | None, amount: Decimal | float | None) -> str:
    """Which charge line a stored ChargeItem is a version of: its number (``line_identity``) and
    its sign, else the ChargeItem itself (``ref``). The sign keeps a credit apart from the charge
    it takes back when the reversal carries the charge's number (FT1-2 kept, FT1-6 CR): put
    together, one of the two hid the other and the test cost ¥30 or ¥20 by storage order, never
    the ¥0 it cost the fund."""
    if identity is None:
        return ref
    return f"{identity}|{'credit' if amount is not None and amount < 0 else 'charge'}"


_L = TypeVar("_L")


def latest_lines(versions: Iterable[tuple[str, str, _L]]) -> list[_L]:
    """One version of each charge line: ``versions`` are ``(line_key, stored_at, line)``, and the
    one stored latest stands (a line re-sent with a corrected amount corrects it; the first one
    stored was kept before, whichever the store returned first). Ties (one write group) fall to
    the last given. The rule of both the money at stake (``Repeats._line_amount``) and the
    settlement (``settlement_report``), so the two count the same lines."""
    kept: dict[str, tuple[str, _L]] = {}
    for key, at, line in versions:
        if key not in kept or at >= kept[key][0]:
            kept[key] = (at, line)
    return [line for _, line in kept.values()]


def stored_at(charge: dict[str, Any]) -> str:
    """When this version of the ChargeItem was stored (``meta.lastUpdated``, '' when not said)."""
    value = (charge.get("meta") or {}).get("lastUpdated")
    return value if isinstance(value, str) else ""
