"""One engine a test module, on each storage backend (suitedup31).

``tests/test_fhir_api.py``'s ``eng`` fixture builds an Engine (and its store) for every test and every
backend; a module whose tests only read what one set-up wrote pays for that set-up again in each test
(~0.1 s of CPU an Engine, the app and its seeding besides). ``module_eng`` is the same engine --
``backend_settings``' backends (``tests.conftest._BACKENDS``: SQLite, mongomock, a real MongoDB when
``HUREN_MONGODB_URI`` is set), ``base_url`` ``https://huren.example`` -- built once per module and
backend. Use it only where no test depends on another's writes (what a test writes, no other test of
the module reads); a module imports it under the name its tests use (``eng = module_eng``)."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend


@pytest.fixture(scope="module", params=_BACKENDS)
def module_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The module's engine on the backend ``request.param``, a store of its own (as ``backend_settings``
    gives a test: a fresh SQLite folder, a mongomock client, a MongoDB database dropped afterwards)."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module", params=_BACKENDS)
def module_backend_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The engine a test opens on ``backend_settings`` (``tests.conftest.settings`` on each backend: no listeners, the
    default base URL) once a module and backend, for a module's parametrized tests that only read, or send what is
    refused, or write each under names of its own: each parameter had opened an engine of its own (trim43). A test
    that reads what another writes, or counts what the store holds, keeps its own."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-backend")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module")
def module_sqlite_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The ``engine`` fixture's engine (``tests.conftest.settings``: SQLite, no listeners, the default base URL)
    once a module, for a module's parametrized tests that only read, or send what is refused: each parameter had
    opened an engine of its own (~25 ms and its close; trim43). A test that writes what another reads keeps
    ``engine``."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-sqlite")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as engine:
        yield engine


REPO_ROOT = Path(__file__).resolve().parents[1]


def undeclared_site(folder: Path) -> Path:
    """A site folder whose institutions.yaml is the shipped one with every ``registration_applications`` taken out:
    a county whose hospitals cannot say which of their systems registers persons, so nothing in a message tells the
    HIS from a LIS (the rules of reg41..decl42 for such a site). The shipped demo site declares each hospital's HIS
    (forty-second round, decl42); a test of the undeclared rules builds this site, never relies on the default."""
    return site_without(folder, "registration_applications")


def site_without(folder: Path, *keys: str) -> Path:
    """A site folder whose institutions.yaml is the shipped one with ``keys`` taken out of every member."""
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    for member in members:
        for key in keys:
            member.pop(key, None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    return folder


def alias_site(folder: Path, groups: dict[str, list[list[str]]]) -> Path:
    """``folder`` (made when missing) with the shipped hl7v2/senders.yaml plus ``groups`` as its
    ``application_aliases`` (institution -> its groups of MSH-3 forms): the site every alias-group test opens its
    engine on, alone or over ``undeclared_site``'s institutions.yaml."""
    from mappings.site import DEFAULTS_DIR

    (folder / "hl7v2").mkdir(parents=True, exist_ok=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (folder / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped, "application_aliases": groups}, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=_BACKENDS)
def undeclared_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """``module_eng`` on a site declaring no registration application (``undeclared_site``). A module of the
    undeclared rules binds it under the name its fixtures ask for: ``from tests.module_store import undeclared_eng
    as module_eng``."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-undeclared")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=undeclared_site(root / "site"))
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


# The data folders fed once a process (``fed_copy``), by the name their feeder gave them
_FED: dict[str, Path] = {}


def fed_copy(name: str, feed: Callable[[Path], None], data_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> None:
    """``data_dir`` made a copy of the data folder ``feed(folder)`` fed, fed once a process under ``name`` (an engine
    ``feed`` opens on the folder, sends its messages through the real path and closes), for a function-scoped world
    whose tests each write what the others must not see: each opens its own engine on its own copy -- a server
    restarted on the fed store -- instead of feeding a new one (forty-sixth round, suite46b). SQLite only: the copy
    is of the folder (the store, the audit log and its keys, the token keys, the clients file); a world on MongoDB
    or mongomock feeds its own. ``feed``'s settings other than the folder must be the ones the copy is opened with."""
    if name not in _FED:
        folder = tmp_path_factory.mktemp(name) / "var"
        feed(folder)
        _FED[name] = folder
    shutil.copytree(_FED[name], data_dir, dirs_exist_ok=True)


def system_client(engine: Engine, client_id: str) -> TestClient:
    """A client of ``engine``'s app holding a hospital system's token (``system/*.cruds``) as ``client_id``; the
    caller enters it (``with system_client(engine, "x") as http``)."""
    client = TestClient(create_app(engine))
    client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token(client_id, "system/*.cruds")
    return client


def _helper(request: pytest.FixtureRequest) -> str:
    """The helper a test module is named after (``tests/test_decl42b_identity.py``: ``decl42b``), its client's id."""
    return request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").split("_")[0]


@pytest.fixture(scope="module", name="http")
def module_eng_http(module_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``module_eng``'s client (``system_client``, the module's helper name its client id), for the module. A module
    imports it beside ``module_eng``; its tests ask for ``http``. One copy of what fam42, omi42, rv42d and decl42b
    each wrote (trim43)."""
    with system_client(module_eng, _helper(request)) as client:
        yield client


@pytest.fixture(scope="module")
def module_eng_client(module_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``module_eng_http`` under a name of its own, for a module whose other tests keep an ``http`` of their own (a
    fresh store each): its parametrized tests that only read share this one (trim43)."""
    with system_client(module_eng, _helper(request)) as client:
        yield client


@pytest.fixture(scope="module", name="uhttp")
def undeclared_eng_http(undeclared_eng: Engine, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """``undeclared_eng``'s client, as ``module_eng_http``; its tests ask for ``uhttp``."""
    with system_client(undeclared_eng, _helper(request)) as client:
        yield client


def observed(engine: Engine, resident: dict, code: str, *, client_id: str) -> list[str]:
    """The subjects of the results coded ``code`` that ``resident``'s phone (``client_id``) reads."""
    from tests.owner41_calls import resident_reads

    bundle = json.loads(resident_reads(engine, resident, [f"/fhir/Observation?code={code}"], client_id)[0])
    return [e["resource"]["subject"]["reference"] for e in bundle.get("entry", ())]


# --- a test's own names on a module's engine (suite44b) ------------------------------------------------------------
# The reviewer probes (rv40*, rv41*) each open an engine a test because their scenarios share names: one resident (the
# policy tests' WANG, MRN-HOSPA), order numbers A1/B1, MSH-10 control IDs like "A-F" -- and they read "the one flag" of
# the store. On one engine a module each test sends its scenario under names of its own instead: ``Names.hl7`` gives a
# message's bytes with this test's resident ID numbers, record numbers, order numbers and control IDs, every other
# byte as the scenario wrote it; the test asks for what it wrote by the same names (``control``, ``number``), and
# reads the recognition rows of its own records (``rows``) -- what another test wrote is not its business.

_RENAMED_FIELDS = {"ORC": (2, 3), "OBR": (2, 3, 18, 19, 20), "PV1": (19,), "MRG": (1,)}
# fields naming an appointment, specimen, moved visit or document, renamed by ``Names.number`` in their first component
# only (an EI's namespace id and universal id stay as sent: they say who numbered it, not what): SCH-1/2 (the placer's
# and filler's appointment ids), SPM-2 (the specimen's id), MRG-5 (the visit number an A45 moves), TXA-12 (the unique
# document number) and TXA-16 (the file name a scenario builds from it) -- each keys its thing for the institution
# alone, so two tests sending one scenario would name one thing on the shared store (suite45d renamed the first four in
# its own helper; rv45c found TXA-12 in neither list; low45 moved them here, the one renaming rule)
_FIRST_RENAMED_FIELDS = {"SCH": (1, 2), "SPM": (2,), "MRG": (5,), "TXA": (12, 16)}
# PID-21 (the mother's identifier, a CX list like PID-3): renamed as PID-3 is, so a newborn's message names the mother
# the test admitted -- before PID-2/3/4, the order suite45d's helper renamed it in (a resident ID number's sequence is
# the order a test's originals are met)
_MOTHER = 21
# fields naming a record, visit, order, accession, specimen or study that ``Names.hl7`` does NOT rename: a scenario
# valuing one would send it unchanged under every test of the module -- two tests' accessions or study UIDs then name
# one thing on the shared store and the tests depend on their order. ``hl7`` refuses such a message instead of sending
# it half-renamed (review rv44d: add the field to ``_RENAMED_FIELDS`` with a rename that keeps it valid -- a study
# instance UID is an OID, a prefix breaks it -- or keep the test on a store of its own)
_NOT_RENAMED_FIELDS = {"PID": (18,), "PV1": (50,), "MRG": (2, 3, 4, 6, 7), "ORC": (4,), "OBR": (53,),
                       "IPC": (1, 2, 3, 4), "SPM": (3,), "ZDS": (1,)}


class Names:
    """One test's names: ``tag`` (``T001``...) before each control ID, order/filler/accession number, record number,
    appointment, specimen, moved visit and document number it sends; each resident ID number it sends replaced by one of the same birth date and sex (the 15th-17th
    digits, the check character anew) that no other test of the module sends.

    The one renaming rule of the test helpers (dup44): ``tests.shared_worlds44.renamed``/``OwnSender`` (a run's own
    names, ``tag`` its readable ``<run>-``) and ``tests.shared_worlds44d.Own`` send through it. ``n`` is the test's
    number in the module (its resident ID numbers' sequence); ``tag`` defaults to ``T<n>``: two Names of one store
    must differ in both."""

    def __init__(self, n: int, tag: str | None = None) -> None:
        self.n = n
        self.tag = f"T{n:03d}" if tag is None else tag
        self.nids: dict[str, str] = {}
        self.records: set[str] = set()  # the record numbers (PID-2/3/4, MRG-1) it sent, other than ID numbers

    def control(self, control: str) -> str:
        """The MSH-10 this test sent for the scenario's ``control``."""
        return self.tag + control

    def number(self, number: str) -> str:
        """The order, filler, accession, visit or record number this test sent for the scenario's ``number``."""
        return self.tag + number

    def nid(self, original: str) -> str:
        """The resident ID number this test sends for the scenario's ``original`` (one of this test's own)."""
        from engine.identity.nationalid import check_character

        if original not in self.nids:
            if len(original) != 18 or not original[:17].isdigit():
                raise ValueError(f"not a resident ID number: {original!r}")
            if self.n >= 150 or len(self.nids) >= 3:
                raise ValueError("at most 149 tests a module and 3 resident ID numbers a test: the digits run out")
            # the 15th-17th digits: 2k + the 17th's parity (the sex, kept); k = 50 + n + 150 x (this test's how-many-th
            # original), so no two tests of the module, nor two originals of one test, send the same number
            seq = 2 * (50 + self.n + 150 * len(self.nids)) + int(original[16]) % 2
            body = original[:14] + f"{seq:03d}"
            self.nids[original] = body + check_character(body)
        return self.nids[original]

    def _id_list(self, field: str, rename_nid: bool, records: bool = False) -> str:
        reps = []
        for rep in field.split("~"):
            comps = rep.split("^")
            value = comps[0]
            if value and value != '""':
                nnchn = len(comps) > 4 and comps[4] == "NNCHN"
                if nnchn and rename_nid:
                    comps[0] = self.nid(value)
                elif not nnchn:
                    if len(value) == 18 and value[:17].isdigit() and value[17] in "0123456789Xx":
                        # a resident ID number under another identifier type: a tag before it is no number, and left
                        # as sent it is every test's resident -- refused, as an unrenamed field is (review rv44d)
                        raise ValueError(f"Names renames a resident ID number typed NNCHN only: {rep!r}")
                    comps[0] = self.number(value)
                    if records:
                        self.records.add(comps[0])
            reps.append("^".join(comps))
        return "~".join(reps)

    def hl7(self, text: str) -> str:
        """``text`` (segments split by \\n or \\r) under this test's names: MSH-10 (BHS-11, FHS-11); PID-2/3/4/21 and MRG-1
        (a resident ID number -- identifier type NNCHN -- by ``nid``, every other by ``number``); ORC-2/3, OBR-2/3 and
        OBR-18/19/20, PV1-19 (``number``); SCH-1/2, SPM-2, MRG-5, TXA-12/16 (``number``, first component only). A
        value empty or the null ("") is sent as it was."""
        segments = []
        for segment in text.replace("\r", "\n").split("\n"):
            fields = segment.split("|")
            kind = fields[0]
            for i in _NOT_RENAMED_FIELDS.get(kind, ()):
                if len(fields) > i and fields[i] and fields[i] != '""':
                    raise ValueError(f"Names does not rename {kind}-{i} ({fields[i]!r}): on a shared store it would "
                                     "name the same thing for every test of the module")
            if kind == "MSH" and len(fields) > 9 and fields[9]:
                fields[9] = self.control(fields[9])
            elif kind in ("BHS", "FHS") and len(fields) > 10 and fields[10]:
                fields[10] = self.control(fields[10])
            elif kind == "PID":
                if len(fields) > _MOTHER and fields[_MOTHER]:
                    fields[_MOTHER] = self._id_list(fields[_MOTHER], rename_nid=True)
                for i in (2, 3, 4):
                    if len(fields) > i and fields[i]:
                        fields[i] = self._id_list(fields[i], rename_nid=True, records=True)
            elif kind in _RENAMED_FIELDS:
                for i in _RENAMED_FIELDS[kind]:
                    if len(fields) > i and fields[i]:
                        fields[i] = self._id_list(fields[i], rename_nid=kind == "MRG", records=kind == "MRG")
            for i in _FIRST_RENAMED_FIELDS.get(kind, ()):
                first, _, rest = fields[i].partition("^") if len(fields) > i else ("", "", "")
                if first and first != '""':
                    fields[i] = self.number(first) + ("^" + rest if rest else "")
            segments.append("|".join(fields))
        return "\n".join(segments)

    def patients(self, engine: Engine) -> set[str]:
        """``Patient/<id>`` of each record holding a record number or resident ID number this test sent."""
        return {f"Patient/{rec['id']}" for value in sorted(self.records | set(self.nids.values()))
                for rec in engine.repository.search("Patient", [("identifier", value)]).resources}

    def rows(self, engine: Engine, rows: Iterable[dict]) -> list[dict]:
        """Those of ``rows`` (recognition flags, checks) whose patient is one of this test's records, or whose person
        one of its resident ID numbers."""
        mine = self.patients(engine)
        return [r for r in rows if r.get("patient") in mine or r.get("person") in self.nids.values()]

    def sender(self, port: int) -> NamedSender:
        """An MLLP sender to ``port`` sending each message under these names."""
        return NamedSender(port, self)


class NamedSender:
    """``tests.test_recognition_e2e.Sender`` (its ACK asserted AA) sending each message under a test's ``Names``."""

    def __init__(self, port: int, names: Names) -> None:
        from tests.test_recognition_e2e import Sender

        self.sender = Sender(port)
        self.names = names

    def send(self, text: str) -> str:
        return self.sender.send(self.names.hl7(text))

    def close(self) -> None:
        self.sender.sock.close()


_NAMES_COUNT: dict[str, itertools.count] = {}


def next_number(module: str) -> int:
    """The next test number of ``module`` (a module's name): the ``names`` fixture's and ``shared_worlds44``'s runs'
    one counter, so a module mixing them never gives two tests one resident ID number."""
    return next(_NAMES_COUNT.setdefault(module, itertools.count(1)))


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Names:
    """This test's own ``Names`` (a number of its own in the module, whatever order its tests run in)."""
    return Names(next_number(request.module.__name__))


@pytest.fixture(scope="module", params=_BACKENDS)
def module_community(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The recognition policy tests' community (``tests.test_recognition_policy_e2e.INSTITUTIONS``: HOSPA, HOSPB,
    HOSPC, QC passed) on each backend, once a module -- ``test_money19_cds_orders.engine``'s, for a module whose
    tests each send under ``Names`` of their own (suite44b)."""
    from tests.test_recognition_policy_e2e import INSTITUTIONS

    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-community")
    site = root / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module")
def engine_mllp(engine: Engine) -> Iterator[int]:
    """An MLLP listener for the module on the module's ``engine`` (a module-scoped fixture of that name: a module binds
    ``from tests.module_store import module_community as engine, engine_mllp as mllp``), its port -- ``tests.conftest``'s
    ``mllp`` is a listener a test."""
    from tests.conftest import running_mllp

    with running_mllp(engine) as port:
        yield port


@pytest.fixture(scope="module")
def module_backend_opened(module_backend_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:
    """``tests.test_a40b41_carried.opened`` (an engine on ``backend_settings``' store and a client allowed every FHIR
    interaction, client id ``a40b41``) once a module and backend, on ``module_backend_eng``: for identity probes that
    each register under records, numbers, phones and control IDs of their own (rv41n, rv41q: each had opened an
    engine; suite44b)."""
    with system_client(module_backend_eng, "a40b41") as http:
        yield module_backend_eng, http
