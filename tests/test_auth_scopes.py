"""SMART scope syntax and the Caller's decisions (pure logic; HTTP paths are in test_auth_token.py)."""

from __future__ import annotations

import pytest

from engine.auth import scopes as sc
from engine.auth.caller import Caller
from engine.errors import Forbidden


def test_v2_and_v1_syntax_normalise_to_the_same_actions():
    assert sc.parse("system/Observation.rs") == sc.ResourceScope("system", "Observation", frozenset("rs"))
    assert sc.parse("patient/*.read") == sc.parse("patient/*.rs")
    assert sc.parse("user/*.write").actions == frozenset("cud")
    assert sc.parse("system/*.*").actions == frozenset("cruds")
    assert sc.parse("openid") == "openid"


@pytest.mark.parametrize("bad", ["system/Observation.sr", "system/Observation.x", "system/observation.rs",
                                 "admin/*.rs", "patient/*.rs?category=laboratory", "system/*.", "anything"])
def test_malformed_scopes_are_refused(bad):
    with pytest.raises(sc.ScopeError):
        sc.parse(bad)


def test_narrowing_grants_only_what_is_covered():
    assert sc.narrow(["system/Observation.rs"], ["system/*.cruds"]) == ["system/Observation.rs"]
    with pytest.raises(sc.ScopeError, match="system/\\*.cruds"):
        sc.narrow(["system/*.cruds"], ["system/Observation.rs"])
    with pytest.raises(sc.ScopeError):
        sc.narrow(["patient/*.rs"], ["system/*.cruds"])  # another context is not covered
    with pytest.raises(sc.ScopeError):
        sc.narrow(["offline_access"], ["patient/*.rs"])


def test_system_caller_require():
    c = Caller(subject="his-a", kind="system", scopes=("system/Observation.rs", "system/Patient.cruds"),
               client_id="his-a")
    c.require("Observation", "r")
    c.require("Observation", "search")
    c.require("Patient", "d")
    with pytest.raises(Forbidden):
        c.require("Observation", "c")
    with pytest.raises(Forbidden):
        c.require("Encounter", "r")
    assert not c.restricted


def test_patient_caller_uses_patient_scopes_only():
    c = Caller(subject="p", kind="patient", scopes=("patient/*.rs", "system/*.cruds"), client_id="app",
               patient_ids=frozenset({"a", "b"}), patient="a")
    c.require("Observation", "r")
    with pytest.raises(Forbidden):
        c.require("Observation", "u")  # the system scope in a resident token grants nothing
    assert c.sees_patient("b") and not c.sees_patient("z")
    with pytest.raises(ValueError):
        Caller(subject="p", kind="patient", scopes=("patient/*.rs",), client_id="app")


@pytest.mark.parametrize("uri,ok", [
    ("https://phr.example/cb", True), ("http://127.0.0.1:8080/ui/me/", True), ("cn.huren.app:/callback", True),
    ("http://phr.example/cb", False), ("https://phr.example/cb#frag", False), ("javascript:alert(1)", False),
    ("/relative/cb", False), ("https://", False), ("https://x.example/a b", False),
])
def test_redirect_uris_are_checked_at_registration(uri, ok):
    from engine.auth.clients import check_redirect_uri

    if ok:
        check_redirect_uri(uri)
    else:
        with pytest.raises(ValueError):
            check_redirect_uri(uri)
