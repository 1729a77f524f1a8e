"""wards37: the recognition's department of an order's visit (``FactReader._visit_ward``), now walking
by ``engine.wards.wards_of``: CPU per call over a converter-made bed -> room -> ward chain, read from a
dict (the store's reads left out: they are the same before and after).

    .venv/bin/python bench/wards37_visit_ward.py [calls]"""

from __future__ import annotations

import sys
import time

from engine.recognition.facts import FactReader

PHYS = "http://terminology.hl7.org/CodeSystem/location-physical-type"
STORE = {
    ("Location", "bed"): {"resourceType": "Location", "id": "bed", "name": "心内科病区 301房 02床",
                          "partOf": {"reference": "Location/room"},
                          "physicalType": {"coding": [{"system": PHYS, "code": "bd"}]}},
    ("Location", "room"): {"resourceType": "Location", "id": "room", "name": "心内科病区 301房",
                           "partOf": {"reference": "Location/ward"},
                           "physicalType": {"coding": [{"system": PHYS, "code": "ro"}]}},
    # (the sender's own ward, as the converter writes it: with its manager -- a ward without one is at
    # another facility, dept37's ``_ward_facility``)
    ("Location", "ward"): {"resourceType": "Location", "id": "ward", "name": "心内科病区", "alias": ["NEI"],
                           "managingOrganization": {"reference": "Organization/county"},
                           "physicalType": {"coding": [{"system": PHYS, "code": "wa"}]}},
}
VISIT = {"resourceType": "Encounter", "location": [{"location": {"reference": "Location/bed",
                                                                 "display": "心内科病区 301房 02床"}}]}


def main(calls: int) -> None:
    reader = FactReader(lambda t, i: STORE.get((t, i)), lambda: None)  # type: ignore[arg-type,return-value]
    assert reader._visit_ward(VISIT) == "dept|NEI|心内科病区"
    start = time.process_time()
    for _ in range(calls):
        reader._visit_ward(VISIT)
    took = time.process_time() - start
    print(f"{calls} calls: {took / calls * 1e6:.2f} us CPU a call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
