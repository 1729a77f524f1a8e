from tests.test_id17_revisit import world  # noqa: F401
from tests.test_id17_revisit import NID, REC, ER7, _state
from stdnum.cn import ric

M = "32092319900101125"
M += ric.calc_check_digit(M + "0")


def _a40(inst, surv_mrn, old_mrn, nid, name, n):
    return "\r".join([
        f"MSH|^~\\&|HIS|{inst}|HUREN|FUNING|2026120109000{n}||ADT^A40^ADT_A39|{inst}-A40-{n}|P|2.5.1",
        "EVN|A40|20261201090000",
        f"PID|1||{nid}^^^公安部^NNCHN~{surv_mrn}^^^{inst}^MR||{name[0]}^{name[1:]}||19900101|M",
        f"MRG|{old_mrn}^^^{inst}^MR"]).encode() + b"\r"


def test_probe_merge_across_numbers(world):
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")             # N at FNXRMYY ZY0001
    o = send("FNZXYY", "A04", "张四", M)            # M at FNXRMYY ZY0004 (wrong number? or another person)
    m1 = send("FNZYY", "A04", "张四", M)            # M's own record at FNZYY
    print("before", engine.identity.person_compartment(s), engine.identity.person_compartment(m1))
    r = http.post("/hl7v2", content=_a40("FNXRMYY", "ZY0001", "ZY0004", NID, "张三", 1), headers={"Content-Type": ER7})
    print(r.text)
    print("S", s, "O", o, "M1", m1)
    print("after N", sorted(engine.identity.person_compartment(s)))
    print("after M", sorted(engine.identity.person_compartment(m1)))
    print(http.get(f"/fhir/Patient/{o}").json())
    print(engine.identity.record(o))
    assert 0


def test_probe_fhir_merge_across_numbers(world):
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    o = send("FNZXYY", "A04", "张四", M)
    m1 = send("FNZYY", "A04", "张四", M)
    rec = http.get(f"/fhir/Patient/{o}").json()
    rec["link"] = [{"other": {"reference": f"Patient/{s}"}, "type": "replaced-by"}]
    rec["active"] = False
    r = http.put(f"/fhir/Patient/{o}", json=rec); print(r.status_code, r.text[:600])
    print("after N", sorted(engine.identity.person_compartment(s)), "S", s, "O", o, "M1", m1)
    print("after M", sorted(engine.identity.person_compartment(m1)))
    print(engine.identity.record(o))
    assert 0
