"""dept37: the recognition's department of an order's visit (``FactReader._visit_ward``) for a ward as the
converter writes it -- the sender's own (``managingOrganization``: the key as before) and one at another
member's facility (no manager: ``ward_key_of``'s hash under the visit's sender, the key with the facility)
-- CPU per call, read from a dict (the store's reads left out: the same before and after).

    .venv/bin/python bench/dept37_visit_ward.py [calls]"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace
from typing import Any

from adapters.convert.actors import ward_key
from engine.recognition.facts import FactReader
from engine.repository.ids import deterministic_id

PHYS = "http://terminology.hl7.org/CodeSystem/location-physical-type"
ORG = "urn:huren:institution"
COUNTY = {"reference": f"Organization/{deterministic_id('FNXRMYY', 'Organization', 'FNXRMYY')}",
          "identifier": {"system": ORG, "value": "FNXRMYY"}}


def _chain(facility: str, managed: bool) -> dict[tuple[str, str], dict[str, Any]]:
    ward_id = deterministic_id("FNXRMYY", "Location", ward_key(facility, "NEI"))
    ward: dict[str, Any] = {"resourceType": "Location", "id": ward_id, "name": "心内科病区", "alias": ["NEI"],
                            "physicalType": {"coding": [{"system": PHYS, "code": "wa"}]}}
    if managed:
        ward["managingOrganization"] = dict(COUNTY)
    return {
        ("Location", f"bed-{facility}"): {"resourceType": "Location", "id": f"bed-{facility}",
                                          "name": "心内科病区 301房 02床", "partOf": {"reference": f"Location/room-{facility}"},
                                          "physicalType": {"coding": [{"system": PHYS, "code": "bd"}]}},
        ("Location", f"room-{facility}"): {"resourceType": "Location", "id": f"room-{facility}", "name": "心内科病区 301房",
                                           "partOf": {"reference": f"Location/{ward_id}"},
                                           "physicalType": {"coding": [{"system": PHYS, "code": "ro"}]}},
        ("Location", ward_id): ward,
    }


MEMBERS = ("FNXRMYY", "FNZYY", "FNYLWSY", "FNFCWSY")  # the demo site's members
STORE = {**_chain("FNXRMYY", True), **_chain("FNZYY", False)}


def _visit(facility: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "serviceProvider": dict(COUNTY),
            "location": [{"location": {"reference": f"Location/bed-{facility}", "display": "心内科病区 301房 02床"}}]}


def main(calls: int) -> None:
    rules = SimpleNamespace(institutions=dict.fromkeys(MEMBERS))  # (the reader asks the rules for the members only)
    reader = FactReader(lambda t, i: STORE.get((t, i)), lambda: rules)  # type: ignore[arg-type,return-value]
    for facility, want in (("FNXRMYY", "dept|NEI|心内科病区"), ("FNZYY", "dept@FNZYY|NEI|心内科病区")):
        visit = _visit(facility)
        got = reader._visit_ward(visit)
        print(f"{facility}: {got}" + ("" if got == want else f"  (this code's key; dept37's is {want})"))
        start = time.process_time()
        for _ in range(calls):
            reader._visit_ward(visit)
        took = time.process_time() - start
        print(f"  {calls} calls: {took / calls * 1e6:.2f} us CPU a call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
