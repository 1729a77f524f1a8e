"""``DuplicateFlag``: a suspected duplicate test, not payable (or a justified re-test), as stored.

One per performed test that repeated a recognisable result; its id is the id of the DetectedIssue
that carries the same evidence in FHIR. Stored in ``recognition_flags`` as a flat document so the
report can filter and page it on both storage backends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from engine.insurance.tiers import fen_text, stored_fen

# flagged: open, not payable (or a reason contradicted by records, for review); upheld / overturned:
# an auditor's decision; justified: re-test with a reason the payer accepts (reported, payable);
# self_pay: allowed, not payable by the fund; reported: recognisable only through a wider scope or
# optional by grade (counts for the rate, nothing at stake); void: no longer a repeat
STATUSES = ("flagged", "upheld", "overturned", "justified", "self_pay", "reported", "void")


@dataclass(frozen=True)
class DuplicateFlag:
    id: str
    status: str
    key: str  # the performed test: institution|person|item|day
    order: str | None  # ServiceRequest/... of the repeat
    result: str  # the repeated result: the one its billed charge line names (the deduction's lookup)
    prior: str  # the recognisable prior result (its test's report, else its first entry)
    person: str | None
    patient: str | None
    item: str
    item_name: str
    category: str
    institution: str  # the repeating (ordering) institution
    prior_institution: str
    day: date  # of the repeated result
    order_day: date
    prior_day: date
    window_days: int
    price: Decimal  # at stake, at the ordering institution; stored as its text to the fen (``fen_text``)
    currency: str
    reason: str | None = None
    reason_text: str | None = None
    reviews: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    identified: str = ""
    analytes: tuple[str, ...] = ()  # the repeated analytes of a panel item
    partial: bool = False  # only some of the ordered analytes repeat the prior result
    effect: str | None = None  # the reason's effect under the payer's policy
    contradicted: str | None = None  # "reason contradicted by records: ..." (the flag stays, for review)
    basis: str = "community"  # the scope the repeat falls in (community, an HR scope) or "optional"
    price_source: str = "catalogue"  # or "charge": a billed charge line
    hr: tuple[str, ...] = ()  # HR scopes the prior result carries
    # reasons first recorded after the result was decided on: not part of the decision (DOMAIN.md,
    # the reason recorded at order time stands), shown to the auditor
    late_reasons: tuple[str, ...] = ()
    late_reason_text: str | None = None
    # what the evidence compares (``engine.recognition.pairs``): each repeated analyte's entry beside
    # the prior entry of the same analyte ({"analyte", "result", "prior"}; one pair of analyte None for
    # a whole item), and the analytes the repeat did that no prior covered. None: a flag an earlier
    # release stored, without pairs (``pairs.of_flag`` says so)
    pairs: tuple[dict[str, Any], ...] | None = None
    unpaired: tuple[str, ...] = ()

    def as_doc(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "_id": d.pop("id"), "status": d["status"], "key": d["key"], "order": d["order"], "result": d["result"],
            "prior": d["prior"], "person": d["person"], "patient": d["patient"], "item": d["item"],
            "item_name": d["item_name"], "category": d["category"], "inst": d["institution"],
            "prior_inst": d["prior_institution"], "day": self.day.isoformat(), "order_day": self.order_day.isoformat(),
            "prior_day": self.prior_day.isoformat(), "window": d["window_days"], "price": fen_text(self.price),
            "currency": d["currency"], "reason": d["reason"], "reason_text": d["reason_text"],
            "reviews": [dict(r) for r in self.reviews], "identified": d["identified"],
            "analytes": list(self.analytes), "partial": self.partial, "effect": self.effect,
            "contradicted": self.contradicted, "basis": self.basis, "price_source": self.price_source,
            "hr": list(self.hr), "late_reasons": list(self.late_reasons), "late_reason_text": self.late_reason_text,
            **({"pairs": [dict(p) for p in self.pairs], "unpaired": list(self.unpaired)} if self.pairs is not None else {}),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DuplicateFlag:
        return cls(
            id=doc["_id"], status=doc["status"], key=doc.get("key", ""), order=doc.get("order"), result=doc["result"],
            prior=doc["prior"], person=doc.get("person"), patient=doc.get("patient"), item=doc["item"],
            item_name=doc.get("item_name", ""), category=doc.get("category", ""), institution=doc["inst"],
            prior_institution=doc["prior_inst"], day=date.fromisoformat(doc["day"]),
            order_day=date.fromisoformat(doc.get("order_day") or doc["day"]),
            prior_day=date.fromisoformat(doc["prior_day"]), window_days=int(doc.get("window") or 0),
            price=stored_fen(doc.get("price")), currency=doc.get("currency", ""), reason=doc.get("reason"),
            reason_text=doc.get("reason_text"), reviews=tuple(doc.get("reviews") or ()),
            identified=doc.get("identified", ""), analytes=tuple(doc.get("analytes") or ()),
            partial=bool(doc.get("partial")), effect=doc.get("effect"), contradicted=doc.get("contradicted"),
            basis=doc.get("basis") or "community", price_source=doc.get("price_source") or "catalogue",
            hr=tuple(doc.get("hr") or ()), late_reasons=tuple(doc.get("late_reasons") or ()),
            late_reason_text=doc.get("late_reason_text"),
            pairs=tuple(dict(p) for p in doc["pairs"]) if doc.get("pairs") is not None else None,
            unpaired=tuple(doc.get("unpaired") or ()),
        )


# Every field a stored flag row may hold: ``as_doc``'s, and those its writers add -- ``reviewed`` (a review's count,
# ``Reviews._review_once``), ``repriced`` (``repricing._reprice``), ``void_reason`` (``Repeats._void``). A
# compare-and-set on the row as read (``RecognitionState._cas_flag``) names the ones the row read lacks as absent,
# so that a row another writer added one to since is not the version read (tests/test_flag44b_cas.py checks the
# list against ``as_doc``).
ROW_FIELDS: tuple[str, ...] = (
    "status", "key", "order", "result", "prior", "person", "patient", "item", "item_name", "category", "inst",
    "prior_inst", "day", "order_day", "prior_day", "window", "price", "currency", "reason", "reason_text", "reviews",
    "identified", "analytes", "partial", "effect", "contradicted", "basis", "price_source", "hr", "late_reasons",
    "late_reason_text", "pairs", "unpaired", "reviewed", "repriced", "void_reason",
)
