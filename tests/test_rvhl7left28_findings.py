"""Review of hl7left28 (twenty-eighth round, rvhl7left28): findings as plain failing tests, real HL7 v2
bytes over POST /hl7v2 (FastAPI's TestClient) into one real engine (SQLite).

* W 103 "table value not found" given for values the HL7 table holds (AL1-2 ``MC``, ORC-1 ``XR``,
  ORC-7.6 ``PRN``, FT1-6 ``CO``), the table misnamed (TQ1-9 reads table 0485, not 0027), a v2.4
  structure (``RDE_O01``) warned against v2.5's table 0354;
* the HTTP ``charset`` gate lets through Python codecs that are no text encoding (``rot13``,
  ``base64``, ``undefined``) and keeps another spelling than the one it checked;
* the fidelity report counts one dropped value twice.

Tables checked against the v2 tables as FHIR publishes them (hl7.org/fhir v2-0017, v2-0027, v2-0119,
v2-0127, v2-0485; v2.4 table 0354 names RDE_O01 for RDE^O01).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines as errs
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401  (the module's engine and client)


def msh(control: str, msh9: str, version: str = "2.5.1", facility: str = "FNXRMYY") -> str:
    return f"MSH|^~\\&|HIS|{facility}|HUREN|FNYGT|20261201091500||{msh9}|{control}|P|{version}\r"


def pid(control: str, sex: str = "M", name: str = "张^三") -> str:
    return f"PID|1||RV{control}^^^FNXRMYY^MR||{name}||19850412|{sex}\r"


# --- 1. W 103 on values the table holds --------------------------------------------------------------

def test_al1_2_mc_is_in_table_0127_and_not_warned(http: TestClient) -> None:
    """MED. AL1-2 ``MC`` (miscellaneous contraindication) is in HL7 table 0127; ``allergy_type`` maps it
    (intolerance), but the second rule on the same field (``allergy_category``) lacks it and now tells
    the sender ``'MC' is not in HL7 table 0127`` (ERR 103 W at AL1^1^2). The once-check (``engine._said``)
    only folds two rules that both miss the value."""
    ack = post(http, msh("MC1", "ADT^A04^ADT_A01") + "EVN|A04|20261201\r" + pid("MC1")
               + "PV1|1|O\rAL1|1|MC|^阿司匹林\r")
    assert ack_code_of(ack) == "AA", ack
    assert errs(ack) == [], ack


@pytest.mark.parametrize("control, text, where, table", [
    # ORC-1 XR "changed as requested" (table 0119); ORC-5 IP decides the status anyway
    ("X1", msh("X1", "RDE^O11^RDE_O11") + pid("X1") + "PV1|1|I\rORC|XR|X1^HIS|||IP\r"
     "RXE|^BID|A1^阿莫西林^L|250||mg\r", "ORC^1^1", "0119"),
    # ORC-7.6 PRN "as needed" (table 0027 itself)
    ("P1", msh("P1", "ORM^O01^ORM_O01") + pid("P1") + "PV1|1|O\rORC|NW|P1^HIS|||||^^^^^PRN\r"
     "OBR|1|P1^HIS||GLU^血糖^L|||20261201\r", "ORC^1^7^^6", "0027"),
    # FT1-6 CO "co-payment" (table 0017, from v2.4)
    ("F1", msh("F1", "DFT^P03^DFT_P03") + "EVN|P03|20261201\r" + pid("F1") + "PV1|1|O\r"
     "FT1|1|T-1||20261201||CO|DRUG-7^头孢^L||1|1||40.00&CNY\r", "FT1^1^6", "0017"),
])
def test_a_value_its_hl7_table_holds_is_not_answered_table_value_not_found(
        http: TestClient, control: str, text: str, where: str, table: str) -> None:
    """MED. ERR-3 103 is "table value not found"; ERR-8 says ``'XR' is not in HL7 table 0119``. These
    values are in the table: huren's vocabulary has no FHIR code for them (or, ORC-1, no status to take
    from them), which is not the sender's error. Senders act on ACK ERRs (a feed's interface analyst
    is sent chasing a correct value); the wording or code must not claim the table lacks it."""
    ack = post(http, text)
    assert ack_code_of(ack) == "AA", ack
    claimed = [e for e in errs(ack) if f"|{where}|" in e and "103^" in e and f"table {table}" in e]
    assert claimed == [], ack


def test_tq1_9_names_its_own_table_0485(http: TestClient) -> None:
    """LOW. TQ1-9 (priority, CWE) reads HL7 table 0485 (extended priority codes: S, A, R, P, C, T, PRN,
    TM<n>, ...), not 0027: ``hl7_table_of`` maps a vocabulary to one table, and ``request_priority``
    serves ORC-7.6/OBR-27.6 (0027) and TQ1-9 (0485) alike; the ACK names the wrong table."""
    ack = post(http, msh("T1", "OMG^O19^OMG_O19") + pid("T1") + "PV1|1|O\rORC|NW|T1^HIS\r"
               "TQ1|1||||||||ZZ\rOBR|1|T1^HIS||GLU^血糖^L|||20261201\r")
    (err,) = [e for e in errs(ack) if "|TQ1^1^9" in e]
    assert "0485" in err and "0027" not in err, err


def test_a_v24_rde_o01_with_its_own_structure_is_not_warned(http: TestClient) -> None:
    """MED. v2.4's table 0354 gives RDE^O01 the structure RDE_O01 (v2.5 renamed the event O11);
    ``event_structures.yaml`` maps RDE_O01 -> RDE_O11 for the template, and ``structure_warning``
    reads that map as table 0354, so every v2.3/2.4 pharmacy order sent correctly is told
    ``MSH-9.3 'RDE_O01' is not the structure of RDE^O01`` (ERR 103 at MSH^1^9)."""
    ack = post(http, msh("R1", "RDE^O01^RDE_O01", "2.4") + pid("R1") + "PV1|1|I\rORC|NW|R1^HIS|||IP\r"
               "RXE|^BID|A1^阿莫西林^L|250||mg\r")
    assert ack_code_of(ack) == "AA", ack
    assert errs(ack) == [], ack


def test_case_is_read_by_one_rule_for_every_id_field(http: TestClient) -> None:
    """LOW, one rule in two places. ``code_id`` (ID) reads a value in any case (PID-8 ``f`` is female),
    ``_coding_from_vocab`` (ID_CODING/ID_CONCEPT) does not: PV1-2 ``i`` is now told 103 "not in table
    0004" while PID-8 ``f`` is read. Either both are read or both are warned."""
    ack = post(http, msh("K1", "ADT^A04^ADT_A01") + "EVN|A04|20261201\r" + pid("K1", sex="f") + "PV1|1|i\r")
    warned = {e.split("|")[2] for e in errs(ack)}
    assert ("PID^1^8" in warned) == ("PV1^1^2" in warned), ack


# --- 2. the HTTP charset ---------------------------------------------------------------------------

@pytest.mark.parametrize("charset", ["rot13", "base64", "undefined"])
def test_a_charset_that_is_no_text_encoding_is_refused_415(engine: Engine, http: TestClient,
                                                          charset: str) -> None:
    """MED. The 415 gate asks ``codec_for``, which takes any name ``codecs.lookup`` knows, binary
    transforms included. ``rot13``/``base64`` then decode nothing (LookupError), the body is read as
    UTF-8 and, the charset being "declared", ``undeclared_gb`` is skipped: GB 18030 ``钱伟`` (valid
    UTF-8 too) is stored as mojibake with an AA, where no charset at all is refused AE. ``undefined``
    raises UnicodeError in ``charsets.decode``: AE 207 "internal error, resend later" and the raw
    message not kept."""
    c = f"U{charset[:3].upper()}"
    r = http.post("/hl7v2", content=(msh(c, "ADT^A04^ADT_A01") + "EVN|A04|20261201\r" + pid(c, name="钱伟")
                                     + "PV1|1|O\r").encode("gb18030"),
                  headers={"Content-Type": f"x-application/hl7-v2+er7; charset={charset}"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.content)


def test_the_charset_checked_is_the_charset_kept(http: TestClient) -> None:
    """LOW. The gate checks the parameter as sent (``ISO-IR 100``: codecs knows it, latin-1), the peer
    string keeps it with its space removed (``with_transport_charset``: ``ISO-IR100``), which neither
    table 0211 nor codecs knows: a plain ASCII message passed the 415 check and is refused AE
    "character set 'ISO-IR100' is not supported" (a replay likewise)."""
    r = http.post("/hl7v2", content=(msh("I1", "ADT^A04^ADT_A01") + "EVN|A04|20261201\r" + pid("I1", name="LI^SI")
                                     + "PV1|1|O\r").encode(),
                  headers={"Content-Type": 'text/plain; charset="ISO-IR 100"'})
    assert r.status_code == 415 or ack_code_of(r.content) == "AA", r.content


@pytest.mark.parametrize("control, msh18", [("Q1", ""), ("Q2", "||||||GB 18030-2000")])
def test_the_quarantine_view_reads_a_refused_message_in_the_set_it_was_read_in(
        http: TestClient, control: str, msh18: str) -> None:
    """LOW-MED, one rule in two places. A GB 18030 message refused (a line that is no segment) is kept and
    shown to the operator by ``GET /admin/quarantine/{id}``, which decodes the raw bytes with
    ``charsets.decode(raw)``: neither the HTTP charset kept in the peer string (``http-charset=GB18030``,
    hl7left28's) nor MSH-18 (the same root, older) is read, so ``钱^伟`` (valid UTF-8 too) is shown as
    ``Ǯ^ΰ`` with ``text_codec`` utf-8 -- another patient name than the one the pipeline read and a replay
    will store. ``header.read_message`` (with the stored peer) is the one reading."""
    raw = (msh(control, "ADT^A04^ADT_A01") .replace("|2.5.1\r", f"|2.5.1{msh18}\r") + "EVN|A04|20261201\r"
           + pid(control, name="钱^伟") + "PV1|1|O\rnot a segment\r").encode("gb18030")
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "text/plain; charset=GB18030"})
    assert ack_code_of(r.content) == "AE", r.content
    shown = http.get(f"/admin/quarantine/{message_id('FNXRMYY', control)}")
    assert shown.status_code == 200, shown.text
    (pid_line,) = [line for line in shown.json()["text"].split("\n") if line.startswith("PID")]
    assert "钱^伟" in pid_line, (shown.json()["text_codec"], pid_line)


# --- 3. the fidelity report --------------------------------------------------------------------------

def test_a_dropped_value_is_counted_once_in_the_fidelity_report(http: TestClient) -> None:
    """LOW (named by the author, left without a test). PID-8 ``Q``: one value left out, counted as one
    unmapped code and again as one warning (``messages._fidelity_entries``): the institution's
    ``unmapped`` + ``warnings`` is 2 and two items name PID-8."""
    ack = post(http, msh("Q1", "ADT^A04^ADT_A01", facility="FNZYY") + "EVN|A04|20261201\r"
               + pid("Q1", sex="Q").replace("FNXRMYY", "FNZYY") + "PV1|1|O\r")
    assert ack_code_of(ack) == "AA", ack
    report = http.get("/admin/fidelity", params={"institution": "FNZYY"})
    assert report.status_code == 200, report.text
    inst = report.json()["institutions"]["FNZYY"]
    about = [i for i in inst["items"] if i["where"] == "PID-8"]
    assert len(about) == 1 and inst["unmapped"] + inst["warnings"] == 1, inst

