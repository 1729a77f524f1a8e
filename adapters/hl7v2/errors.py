"""``HL7Error``: a problem with an HL7 v2 message, located precisely enough for an ERR segment.

Raised by the parser and converters; the ingest pipeline turns it into an ACK with MSA-1 AE or AR
and an ERR segment (ERR-2 location, ERR-3 HL7 table 0357 code, ERR-4 severity, ERR-8 user message),
and puts the raw message in the quarantine with the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

# HL7 table 0357 (message error condition codes) used by huren
MESSAGE_ACCEPTED = "0"
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
DUPLICATE_KEY_IDENTIFIER = "205"
APPLICATION_RECORD_LOCKED = "206"
APPLICATION_INTERNAL_ERROR = "207"


@dataclass(frozen=True)
class Tally:
    """What the operator's fidelity view (``/admin/fidelity``) counts a warning under, stated where the
    warning is made and stored as fields of its conversion-warning row (``engine.messages``): the
    view's count (``kept_apart``, ``taken_over``, ``member_contradicted``) and its key (the assigning
    authority, or the member institution, the warning is about). Counting by parsing the warning's
    text broke with any change of its wording (identity34)."""

    count: str
    key: str
    # the institution whose operator is to see it, when not the message's (the member whose record
    # another member's registration contradicts: ``persons``, identity34); "" the message's own
    institution: str = ""
    # that institution's own records ("Patient/id") the warning is about, listed on its row for its
    # operator to open and correct (idfix34: a count alone named no record); never another's
    records: tuple[str, ...] = ()
    # the row's text when ``institution`` is another's: the ERR text is worded for the sender, the row
    # is read by that institution's operator (Chinese first, as the view's advice; idfix34)
    text: str = ""


@dataclass
class HL7Error(Exception):
    """``ack_code`` is AE (application error: fix and resend) or AR (rejected: bad envelope, unknown sender)."""

    message: str
    segment: str = ""
    sequence: int | None = None  # 1-based occurrence of the segment in the message
    field: int | None = None
    component: int | None = None
    code: str = APPLICATION_INTERNAL_ERROR
    severity: str = "E"  # E error, W warning, I information (HL7 table 0516)
    ack_code: str = "AE"
    # 1-based repetition of the field (ERR-2's ERL.4); None: the first or only one (v2.5.1 2.15.5.2)
    repetition: int | None = None
    # a warning the operator's fidelity view counts by kind and key (``Tally``); None: counted as a warning only
    tally: Tally | None = None
    # a warning that may be why the message is then refused (PID-21's mother's ID number failing its check: the
    # newborn's rule names nobody, and the result under the mother's visit is refused at PV1-19): carried into the
    # AE's ERR list beside the refusal (``engine.ingest``), so the sender is told the real cause (rv39d LOW 8)
    with_refusal: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def location(self) -> str:
        """``PID-3.1`` style, for logs, quarantine reasons and OperationOutcome diagnostics."""
        where = self.segment
        if self.field is not None:
            where += f"-{self.field}"
            if self.component is not None:
                where += f".{self.component}"
        return where

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message


class NotInTable(ValueError):
    """A coded value its table lacks (HL7 table 0357 code 103), raised by a converter that leaves the value
    out: the rule that read it warns the sender (ERR severity W at segment^sequence^field^component, the
    value in ERR-8) as it does for a value of the wrong data type (102). Left out with an AA and no word,
    PID-8 ``Q`` (not in table 0001) was never reported to the sender (hl7conf27; hl7left28)."""

    code = TABLE_VALUE_NOT_FOUND
