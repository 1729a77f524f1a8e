"""The HR mark: the scopes a final, QC-passed result of a recognition item is recognisable in,
tagged on the version stored (``meta.tag``, ``urn:huren:hr-scope``)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from engine.recognition.decision import FINAL_STATUSES
from engine.recognition.facts import RESULT_TYPES, local_day, result_time
from engine.recognition.rules import Rules
from engine.recognition.state import RecognitionState
from mappings.pagewords import PageWords

HR_SYSTEM = "urn:huren:hr-scope"
# the community scope's display (the tag's code is ``community``): the community as the site's words
# name it (``insurance/words.yaml`` ``communities``), or no name where the words give none -- never
# its code ("医共体互认 funing" until the thirty-third round, pages33)
_COMMUNITY_NAMED = "{name}内互认"
_COMMUNITY_UNNAMED = "医共体内互认"
_MARKS_KEPT = 4096  # (institution, item, day) whose HR marks are remembered (``_hr_marks``)


class _Needs(Protocol):
    """What the HR mark calls on the other parts of ``Recognition`` (through ``self``)."""

    def _not_item(self, resource: dict[str, Any]) -> bool: ...  # batch_scope.BatchScope


if TYPE_CHECKING:
    _Others = _Needs
else:
    _Others = object


class HRMark(RecognitionState, _Others):
    """The HR mark (``Recognition.mark_hr``), a repository mark on every result version."""

    def mark_hr(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Tag a final result of a recognition item whose issuer had passed QC on its date with the
        scopes it is recognisable in (``meta.tag``, system ``urn:huren:hr-scope``): ``community`` for
        the issuer's medical community, plus each HR scope (盐城市HR, 全国HR...) its QC carries.
        A result that is not (or no longer) recognisable loses the tags."""
        if self._not_item(resource):
            meta = resource.get("meta")
            if not (isinstance(meta, dict) and meta.get("tag")):
                return resource  # a result of no recognition item, with no HR tag to take away
        rtype = resource.get("resourceType")
        if rtype == "Organization":
            self.facts.remember_organization(resource)  # the results of the same message name it
            return resource
        if rtype not in RESULT_TYPES:
            return resource
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        had = meta.get("tag") or ()
        tags = [t for t in had if not (isinstance(t, dict) and t.get("system") == HR_SYSTEM)] if had else []
        rules = self._rules
        marks: list[dict[str, Any]] = []
        # in an ingest batch the preview classified these very codings a moment ago (``batch``)
        inst, item = self.facts.classify(resource, marked=getattr(self._local, "previewed", False)) \
            if resource.get("status") in FINAL_STATUSES else (None, None)
        day = local_day(result_time(resource), rules.institutions[inst].timezone) if item and inst in rules.institutions else None
        if item and inst and day:
            marks = [{"system": HR_SYSTEM, "code": code, "display": display}
                     for code, display in self._hr_marks(rules, inst, item, day)]
        if not marks and len(tags) == len(had):
            return resource
        new_meta = {**meta, "tag": tags + marks}
        if not new_meta["tag"]:
            new_meta.pop("tag")
        out = {**resource, "meta": new_meta}
        if not new_meta:
            out.pop("meta")
        return out

    def _hr_marks(self, rules: Rules, inst: str, item: str, day: date) -> tuple[tuple[str, str], ...]:
        """(code, display) of the HR marks of a final result of ``item`` issued by ``inst`` on
        ``day``: none unless its QC had passed then; ``community`` and each HR scope of its QC.

        Remembered per (institution, item, day) under one rules object (a reload starts again):
        the answer reads nothing else, and each recognition item's result asked the QC periods,
        the HR scopes and their names again (the same few institutions, items and days all day)."""
        kept = self._marks_kept
        names = self._community_names()
        if kept[0] is not rules or getattr(self, "_marks_named", None) is not names:
            kept = self._marks_kept = (rules, {})
            self._marks_named = names  # an edit of the words starts again, as a reload of the rules does
        found = kept[1].get((inst, item, day))
        if found is not None:
            return found
        marks: list[tuple[str, str]] = []
        if rules.qc_passed(inst, item, day):
            name = names.get(rules.institutions[inst].community or "")
            marks.append(("community", _COMMUNITY_NAMED.format(name=name) if name else _COMMUNITY_UNNAMED))
            for code in rules.hr_scopes(inst, item, day):
                scope = rules.scopes.get(code)
                marks.append((code, scope.name if scope else code))
        if len(kept[1]) >= _MARKS_KEPT:
            kept[1].clear()
        found = kept[1][(inst, item, day)] = tuple(marks)
        return found

    def _community_names(self) -> dict[str, str]:
        """The medical communities' names in the site's words (``communities``: funing -> 阜宁县医共体),
        the one list the staff pages name them from; the words object is made once (a page-words file
        checked at start-up) and re-reads the site's file when it changes. The community's code is not
        lost: it is the issuing institution's (institutions.yaml), whose Organization the result names."""
        words = getattr(self, "_words", None)
        if words is None:
            settings = getattr(self, "settings", None)
            words = self._words = PageWords(getattr(settings, "site", None))
        found: dict[str, str] = words.current().get("communities") or {}
        return found
