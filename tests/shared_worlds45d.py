"""A test's own names on a module's engine for the scheduling, specimen and visit scenarios (forty-fifth round,
suite45d).

The round-20..33 scenario files (convmend20, schedfix24/25, the visit probes) opened an Engine (and a reader client)
for every test, because their messages share names: one patient (``ZY20S``, ``ZY24R``), control IDs (``RD1`` sent
by each parameter), appointment numbers (``AP-X``/``BK-X``), specimen numbers (``SP-RS4``). On one engine a module
each test sends its scenario under ``tests.module_store.Names`` instead (MSH-10, PID-2/3/4, MRG-1, ORC/OBR numbers,
PV1-19: the one renaming rule of the test helpers), and, for the fields ``Names`` leaves as written, ``mine`` renames
by the same rule (``Names.number``: the test's tag before the value): SCH-1/SCH-2 (the placer's and filler's
appointment ids) and SPM-2 (the specimen's id) -- the first component each, its namespace/universal id kept. So two
tests (or two parameters of one test) book two appointments, file two specimens, for two patients of their own."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import Names

# fields Names.hl7 leaves as written (or refuses) that these scenarios value: renamed here by Names.number, first
# component only (an EI's namespace id and universal id stay as sent: they say who numbered it, not what)
_ALSO_RENAMED = {"SCH": (1, 2), "SPM": (2,)}


def mine(names: Names, message: bytes | str) -> bytes:
    """``message`` (segments split by \\r) under ``names``: ``Names.hl7``, and SCH-1/2 and SPM-2 by ``Names.number``;
    a null ("") or empty value as sent. The segments' order and every other byte as the scenario wrote them."""
    text = message.decode("utf-8") if isinstance(message, bytes) else message
    segments = text.replace("\r", "\n").split("\n")
    held: dict[tuple[int, int], str] = {}
    for s, segment in enumerate(segments):
        fields = segment.split("|")
        for i in _ALSO_RENAMED.get(fields[0], ()):
            first, _, rest = fields[i].partition("^") if len(fields) > i else ("", "", "")
            if first and first != '""':
                held[(s, i)] = names.number(first) + ("^" + rest if rest else "")
                fields[i] = ""  # Names.hl7 refuses SPM-2 valued: it is put back renamed below
        segments[s] = "|".join(fields)
    out = names.hl7("\n".join(segments)).split("\n")
    for (s, i), value in held.items():
        fields = out[s].split("|")
        fields[i] = value
        out[s] = "|".join(fields)
    return "\r".join(out).encode("utf-8")


def send_as(engine: Engine, names: Names, *messages: bytes) -> list[bytes]:
    """``tests.test_convert11_thinner.send`` (real MLLP, one connection) of ``messages`` each under ``names``."""
    from tests.test_convert11_thinner import send

    return send(engine, *(mine(names, m) for m in messages))


def written_as(engine: Engine, fhir: TestClient, names: Names, control: str, rtype: str) -> list[dict[str, Any]]:
    """``tests.test_conv13_orders.written`` for the scenario's ``control`` as ``names`` sent it."""
    from tests.test_conv13_orders import written

    return written(engine, fhir, names.control(control), rtype)
