"""perfgrow26's fast paths give what the general path gives (each test fails if its fast path diverges).

Three per-message steps of a plain lab message skip work whose answer is known:

- ``ack._safe`` returns a header value holding no CR, LF nor field separator as it is, without the
  character-by-character pass (every ACK's MSA-2);
- ``common.one_patient`` reads the first PID's identifiers only when a later PID is there to be
  compared with them;
- ``results._reason_taken_back`` tests ORC-16 for ``""`` before asking whether the ORC is the
  placer's own statement (the message type and ORC-1).

Each is held against the general path it shortcuts: the same function's old body as the reference,
over values that hit and miss the fast path, and the conversions through ``convert`` (a refused
second patient, a repeated PID, the re-test reason's delete under every ORC-1 and message type).
"""

from __future__ import annotations

import itertools
import random

import pytest

from adapters.convert import common, convert, results
from adapters.hl7v2 import ack
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from engine.settings import Settings
from mappings.site import Site


def _safe_reference(value: str, fs: str) -> str:
    """``ack._safe`` as it was: every character passed over."""
    return "".join(c for c in value if c not in "\r\n" and c != fs)


def test_ack_safe_fast_path_equals_the_character_pass() -> None:
    alphabet = ["A", "1", "|", "^", "~", "\\", "&", "#", "\r", "\n", "中", " ", "\t", "\x0b"]
    rng = random.Random(26)
    values = ["", "LAB000000001", "A^1", "A\\E\\1", "中文ID", "|", "\r", "\n", "\r\n", "a|b", "a\rb", "a\nb"]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3000)]
    fast = 0
    for value, fs in itertools.product(values, ("|", "#", "^", "")):
        got = ack._safe(value, fs, "^~\\&")
        assert got == _safe_reference(value, fs), (value, fs, got)
        fast += got is value
    assert fast > 1000  # the fast path was taken (and gave the same)


def _site() -> Site:
    return Site.load(Settings())


def _lab(n: int = 1) -> str:
    from bench.ingest import oru_lab

    return oru_lab(n).decode("utf-8")


def _pid_of(text: str) -> str:
    return next(line for line in text.split("\r") if line.startswith("PID|"))


def _identifiers_reference(msg_text: str) -> list:
    return [common._identifiers(p) for p in parse(msg_text).all("PID")]


def test_one_patient_of_one_pid_is_that_pid_and_two_are_compared() -> None:
    site = _site()
    text = _lab(7)
    msg = parse(text)
    assert common.one_patient(msg) is msg.all("PID")[0]
    # the identifiers skipped for one PID are what a second PID is compared with: the same PID
    # repeated in a second result group is the same patient (converted), another patient refused
    pid = _pid_of(text)
    group = text[text.index("ORC|"):]
    repeated = text + pid + "\r" + group.replace("OBR|1|", "OBR|2|")
    assert convert(parse(repeated), site).institution
    other = _pid_of(_lab(8))
    assert _identifiers_reference(text + other + "\r")[0] != _identifiers_reference(text + other + "\r")[1]
    with pytest.raises(HL7Error) as refused:
        convert(parse(text + other + "\r" + group.replace("OBR|1|", "OBR|2|")), site)
    assert (refused.value.segment, refused.value.sequence) == ("PID", 2)


def test_one_pid_messages_convert_as_reading_the_identifiers_first() -> None:
    """The skipped read has no effect of its own: reading it first (the old order) converts to the
    same Bundle, for the bench's message and its returning resident."""
    from engine.fhirjson import dumps

    site = _site()
    for n in (11, 11 + 499):
        text = _lab(n)
        fast = dumps(convert(parse(text), site).bundle)
        original = common.one_patient

        def reading_first(msg, _one=original):  # the old body's first step, then the same function
            pids = msg.all("PID")
            if pids:
                common._identifiers(pids[0])
            return _one(msg)

        common.one_patient = reading_first
        try:
            slow = dumps(convert(parse(text), site).bundle)
        finally:
            common.one_patient = original
        assert fast == slow


def _deleted(conversion, ref: str) -> bool:
    said = conversion.said.get(ref)
    return bool(said and any("reasonCode" in str(d) for d in said.deletes))


@pytest.mark.parametrize("kind", ["ORM^O01^ORM_O01", "ORU^R01^ORU_R01", "OML^O21^OML_O21"])
@pytest.mark.parametrize("orc1", ["NW", "XO", "RO", "RE", "SC", "", "nw"])
@pytest.mark.parametrize("orc16", ['""', "R01^其他^L", "", '""^x'])
def test_reason_taken_back_only_for_the_placers_empty_orc16(kind: str, orc1: str, orc16: str) -> None:
    """ORC-16 read first: the delete is made exactly when the old order of tests made it (the
    placer's statement in an order message, ORC-16 ``""``)."""
    text = _lab(21).replace("ORU^R01^ORU_R01", kind)
    text = text.replace("ORC|RE|ORD000000021|LAB000000021",
                        f"ORC|{orc1}|ORD000000021|LAB000000021|||||||||||||{orc16}")
    msg = parse(text)
    orc = msg.all("ORC")[0]
    # (whose statement it is, by the one owner: the RO here is alone and carries the placer's number)
    expected = results._whose(kind.split("^")[0], orc1) == results.PLACER and orc.field(16) == '""'
    try:
        conversion = convert(msg, _site())
    except HL7Error:
        pytest.skip("not a message this converter takes")  # (an OML's structure, say)
    order = next(ref for ref in conversion.by_reference if ref.startswith("ServiceRequest/"))
    assert _deleted(conversion, order) == expected
