"""A small world of member hospitals for the recognition tests: resources shaped as the HL7
converters write them (local codes in ``urn:huren:code:<INSTITUTION>`` plus LOINC, deterministic
ids, the institution's Organization as performer), stored through the real repository."""

from __future__ import annotations

from typing import Any

from engine.identity import nationalid
from engine.identity.nationalid import check_character
from engine.repository.ids import deterministic_id

A, B, C = "FNXRMYY", "FNZYY", "FNYLWSY"  # shipped demo community (funing): A and B QC all, C only CBC/UA
LOINC = "http://loinc.org"
REASONS = "urn:huren:recognition-reason"


def national_id(seventeen: str) -> str:
    return seventeen + check_character(seventeen)


ALICE = national_id("32092319850101002")  # 阜宁县, 1985-01-01, female
BOB = national_id("32092319901231001")  # 阜宁县, 1990-12-31, male


class World:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.repo = engine.repository
        self._n = 0

    def _put(self, resource: dict[str, Any]) -> Any:
        return self.repo.update(resource)

    def organization(self, inst: str) -> str:
        oid = deterministic_id(inst, "Organization", inst)
        self._put({"resourceType": "Organization", "id": oid, "active": True, "name": inst,
                   "identifier": [{"system": "urn:huren:institution", "value": inst}]})
        return f"Organization/{oid}"

    def patient(self, inst: str, person: str | None, mrn: str | None = None) -> str:
        mrn = mrn or f"MRN-{person or 'none'}"
        pid = deterministic_id(inst, "Patient", mrn)
        identifiers: list[dict[str, Any]] = [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": f"urn:huren:mrn:{inst}", "value": mrn}]
        if person:
            identifiers.append({
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
                "system": "urn:oid:2.16.156.10011.1.1", "value": person})
        self._put({"resourceType": "Patient", "id": pid, "identifier": identifiers,
                   "managingOrganization": {"reference": self.organization(inst)}})
        return f"Patient/{pid}"

    @staticmethod
    def code(inst: str, local: str, display: str, loinc: str | None = None) -> dict[str, Any]:
        codings = [{"system": f"urn:huren:code:{inst}", "code": local, "display": display}]
        if loinc:
            codings.append({"system": LOINC, "code": loinc})
        return {"coding": codings, "text": display}

    def order(self, inst: str, patient: str, code: dict[str, Any], authored: str, *, placer: str | None = None,
              reasons: tuple[str, ...] = (), reason_text: str | None = None, status: str = "active") -> Any:
        self._n += 1
        placer = placer or f"ORD{self._n}"
        sr: dict[str, Any] = {
            "resourceType": "ServiceRequest", "id": deterministic_id(inst, "ServiceRequest", placer),
            "identifier": [{"system": f"urn:huren:placer:{inst}", "value": placer}],
            "status": status, "intent": "order", "code": code, "subject": {"reference": patient},
            "authoredOn": authored, "requester": {"reference": self.organization(inst)},
        }
        if reasons:
            concept: dict[str, Any] = {"coding": [{"system": REASONS, "code": r} for r in reasons]}
            if reason_text:
                concept["text"] = reason_text
            sr["reasonCode"] = [concept]
        return self._put(sr)

    def report(self, inst: str, patient: str, code: dict[str, Any], effective: str, *, order: Any = None,
               key: str | None = None, status: str = "final") -> Any:
        self._n += 1
        key = key or f"RPT{self._n}"
        dr: dict[str, Any] = {
            "resourceType": "DiagnosticReport", "id": deterministic_id(inst, "DiagnosticReport", key),
            "status": status, "code": code, "subject": {"reference": patient},
            "effectiveDateTime": effective, "issued": effective,
            "performer": [{"reference": self.organization(inst)}],
        }
        if order is not None:
            dr["basedOn"] = [{"reference": f"ServiceRequest/{order.resource['id']}"}]
        return self._put(dr)

    def imaging(self, inst: str, patient: str, modality: str, body_site: tuple[str, str], started: str, *,
                key: str | None = None, status: str = "available") -> Any:
        self._n += 1
        key = key or f"STUDY{self._n}"
        return self._put({
            "resourceType": "ImagingStudy", "id": deterministic_id(inst, "ImagingStudy", key), "status": status,
            "subject": {"reference": patient}, "started": started,
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}],
            "series": [{"uid": "1.2.840.99999." + str(self._n), "modality": {
                "system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality},
                "bodySite": {"system": "http://snomed.info/sct", "code": body_site[0], "display": body_site[1]},
                "performer": [{"actor": {"reference": self.organization(inst)}}]}],
        })


def cbc(inst: str) -> dict[str, Any]:
    return World.code(inst, {A: "XCG", B: "1001", C: "XCG"}[inst], "血常规", "58410-2")


def lft(inst: str) -> dict[str, Any]:
    return World.code(inst, {A: "GGN", B: "1020", C: "GGN"}[inst], "肝功能", "24325-3")


def test_world_ids_are_valid_national_ids() -> None:
    assert nationalid.valid_number(ALICE) and nationalid.valid_number(BOB)
