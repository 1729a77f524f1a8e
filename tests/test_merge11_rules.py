"""The merge rules' kinds, followers and explicit deletes, on the shipped rules (merge11).

The end-to-end tests (``test_merge11_kinds.py``, ``test_merge11_null.py``) send messages; these pin
the edges a message rarely reaches: a name that says how it is written, a writer that may not
change a value (its components stay with the stored value), a delete the message overrides.
"""

from __future__ import annotations

from engine.merge_rules import REPRESENTATION, Delete, Said, shipped


def patient(**elements: object) -> dict:
    return {"resourceType": "Patient", "id": "p1", **elements}


def test_a_name_that_states_its_representation_is_that_kind() -> None:
    kana = {"family": "ヤマダ", "extension": [{"url": REPRESENTATION, "valueCode": "SYL"}]}
    kanji = {"family": "山田"}
    romaji = {"family": "YAMADA"}
    stored = patient(name=[kanji, kana, romaji])
    new_kana = {"family": "ヤマモト", "extension": [{"url": REPRESENTATION, "valueCode": "SYL"}]}
    out = shipped().combine(stored, patient(name=[new_kana]), "ADT").resource
    assert out["name"] == [kanji, new_kana, romaji]


def test_two_entries_of_one_kind_replace_the_stored_ones_of_that_kind() -> None:
    stored = patient(telecom=[{"system": "phone", "value": "1", "use": "home"},
                              {"system": "email", "value": "a@b.cn", "use": "home"},
                              {"system": "phone", "value": "2", "use": "home"}])
    incoming = [{"system": "phone", "value": "3", "use": "home"}, {"system": "phone", "value": "4", "use": "home"}]
    out = shipped().combine(stored, patient(telecom=incoming), "ADT").resource
    assert out["telecom"] == [*incoming, {"system": "email", "value": "a@b.cn", "use": "home"}]


def test_a_fhir_client_still_replaces_the_whole_list() -> None:
    stored = patient(name=[{"family": "王", "text": "王"}, {"family": "WANG"}])
    out = shipped().combine(stored, patient(name=[{"family": "王", "text": "王"}]), "api").resource
    assert out["name"] == [{"family": "王", "text": "王"}]


def observation(**elements: object) -> dict:
    return {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "ABO"}, **elements}


def test_components_stay_with_a_value_the_writer_could_not_change() -> None:
    rules = shipped()
    a, b = {"coding": [{"code": "A"}]}, {"coding": [{"code": "B"}]}
    stored = observation(valueCodeableConcept=a, component=[{"code": {"text": "ABO"}, "valueCodeableConcept": b}])
    # the patient index may only fill what is absent: its value is not stored, nor its (absent) components
    out = rules.combine(stored, observation(valueCodeableConcept=b), "index").resource
    assert out["valueCodeableConcept"] == a and out["component"] == stored["component"]
    # a feed stating the same value again states its components: none now
    out = rules.combine(stored, observation(valueCodeableConcept=a), "ORU").resource
    assert "component" not in out


def test_a_delete_gives_way_to_what_the_message_states_again() -> None:
    rules = shipped()
    home = {"system": "phone", "value": "1", "use": "home"}
    work = {"system": "phone", "value": "2", "use": "work"}
    new_work = {"system": "phone", "value": "3", "use": "work"}
    stored = patient(telecom=[home, work], maritalStatus={"text": "已婚"})
    with rules.saying({"Patient/p1": Said(deletes=(Delete("telecom", (("use", ("work",)),)), Delete("maritalStatus")))}):
        out = rules.combine(stored, patient(telecom=[new_work]), "ADT").resource
        other = rules.combine(patient(id="p2", maritalStatus={"text": "x"}), patient(id="p2"), "ADT").resource
    assert out["telecom"] == [home, new_work] and "maritalStatus" not in out
    assert other["maritalStatus"] == {"text": "x"}  # another resource: untouched
    # outside the message's write, nothing is deleted
    assert rules.combine(stored, patient(), "ADT").resource["maritalStatus"] == {"text": "已婚"}


def test_a_name_without_a_use_is_the_name_a_later_message_states_with_one() -> None:
    """An order message's PID-5 often has no XPN-7: the registration's official name of the same
    writing replaces it (no second 王建国 beside the first), and the pinyin one stays."""
    plain = {"family": "王", "given": ["建国"], "text": "王建国"}
    pinyin = {"family": "WANG", "given": ["JIANGUO"], "use": "official"}
    official = {**plain, "use": "official"}
    out = shipped().combine(patient(name=[plain, pinyin]), patient(name=[official]), "ADT").resource
    assert out["name"] == [official, pinyin]
