// /ui/me — reading FHIR values for people: names of codes, which institution a record is from,
// when it happened, a result's value, range, abnormal flag in words and its HR mark.
"use strict";

// ---- reading FHIR values -------------------------------------------------------------------------

const text = (cc) => (cc && (cc.text || (cc.coding || []).map((c) => c.display || c.code).find(Boolean))) || "";
const codeKey = (cc) => { const c = (cc && cc.coding || [])[0]; return c ? (c.system || "") + "|" + c.code : text(cc); };
const codes = (cc) => (cc && cc.coding || []).map((c) => c.code);
const firstCode = (cc) => codes(cc)[0] || "";
/** A code in the page's words; a code the table does not list is shown as it is (never a guess), and
 * one the table words as "" (R4's "unknown") is not shown at all. */
const word = (table, code) => (!code ? "" : table && Object.hasOwn(table, code) ? table[code] : code);

function decodeText(data) {
  try { return new TextDecoder().decode(Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0))); } catch { return ""; }
}

/** The member institution a resource comes from: its own organisation fields first, then the
 * institution of the patient record it belongs to (each linked record is one institution's). */
function institution(r) {
  // a request (prescription, referral) belongs to who asked, a result or visit to who provided it
  const refs = [r.requester, r.serviceProvider, ...(r.performer || []).map((p) => (p && p.actor) || p), ...(r.author || []),
    r.custodian, r.recorder, r.asserter, r.owner, r.managingOrganization,
    ...((r.participant || []).map((p) => p.actor))].filter(Boolean);
  // an organisation named by reference, or by name alone; a doctor, a room or the patient is not one
  const org = refs.find((x) => (x.reference || "").startsWith("Organization/")) ||
    refs.find((x) => x.display && !x.reference);
  if (org) {
    const known = org.reference && state.orgs[org.reference];
    if (known && known.name) return known.name;
    if (org.display) return org.display;
  }
  const pref = ((r.subject || r.patient || r.for || {}).reference ||
    ((r.participant || []).map((p) => (p.actor || {}).reference || "").find((x) => x.startsWith("Patient/"))) || "");
  return state.patientInst[pref] || "";
}

/** A visit's ward, department or room (an Encounter.location's `location` reference): the ward as the
 * engine names it now -- the server's answer (`/ui/me/wards`, engine.wards.ward_name: the site's ward
 * table, else the ward's current name as stored, ...), the room and bed words after it ("心内科病区
 * 301房 02床"); a ward the engine has no name for is its code, said to be the hospital's code
 * (FS（院内代码）), never a guessed name (pages32). The page holds no rule of its own (ui36: it had
 * named a ward from wards.yaml only when the record carried no PL-9 name, and so shown a PL-9 name
 * the site's table overrides in the reports). A place the server does not name (no ward above it) is
 * shown as the record states it. */
function wardName(loc) {
  const ref = (loc || {}).reference, named = ref && Object.hasOwn(state.wards || {}, ref) ? state.wards[ref] : null;
  if (!named) return String((loc || {}).display || "");
  // a ward at another member's facility says whose it is (at: 阜宁县中医院), the visit being the
  // registering hospital's (wards37)
  return [named.at, named.name || named.code + W().paren(W().wardCodes), named.rest].filter(Boolean).join(" ");
}

function whenOf(r) {
  return r.effectiveDateTime || (r.effectivePeriod && r.effectivePeriod.start) || r.occurrenceDateTime ||
    (r.period && r.period.start) || r.start || r.authoredOn || r.onsetDateTime || r.recordedDate ||
    (r.onsetPeriod && r.onsetPeriod.start) || r.whenHandedOver || r.whenPrepared || r.dateAsserted ||
    r.effectiveDateTime || r.date || r.started || r.issued || r.authoredOn || r.created ||
    (r.executionPeriod && r.executionPeriod.start) || r.lastModified || r.occurrenceString || "";
}

/** A Quantity's value in the digits it was sent with (0.50, not 0.5; see shared/exact.js). */
const num = (q) => window.hurenExact.digits(q, "value");

/** A result's value as the lab reported it, in the page's language: shared/value.js, the one rule the
 * auditors' evidence draws by too (a titer 1:320, a range 10–20 /HP, "<5 U/L", 阴性, why there is none). */
function valueOf(o) {
  return window.hurenValue.said(o, { ...window.hurenValue.words(lang === "en" ? "en" : "zh-CN"), when: dayTime });
}

/** A record the hospital withdrew: R4 entered-in-error in its status or (a diagnosis, an allergy) its
 * verificationStatus, or a result or document of a report the hospital withdrew. It may be another
 * person's (OBX-11 W: "transmitted for wrong patient"), so it is not shown as hers anywhere: its card
 * keeps its name and says it was withdrawn, nothing else; it is not flagged, counted, drawn, placed
 * in the timeline or used to date a visit, nor counted in a section's 共 N 条 (pages32: the counts had
 * included them). A document's docStatus counts too (TXA-17 CA). The one rule every section asks (the FHIR download still
 * holds the record as stored). A cancelled result is not withdrawn: a value it still carries is
 * shown with the lab's flag (pagesfix31: pages31 had dropped the flag and kept the value). */
function withdrawn(r) {
  if (!r) return false;
  if (r.status === "entered-in-error" || r.docStatus === "entered-in-error" ||
    firstCode(r.verificationStatus) === "entered-in-error") return true;
  return !!(state.withdrawnWithReport && state.withdrawnWithReport.has(r.resourceType + "/" + r.id));
}

/** A result's, report's or document's status in words where it is not simply final ("" for final):
 * 初步结果，可能更改, 已更正 (corrected), 已更新 (amended), 未完成... A document says its docStatus. */
const statusWords = (r) => word(W().obsStatus, withdrawn(r) ? "entered-in-error"
  : r.resourceType === "DocumentReference" ? r.docStatus : r.status);

/** The short mark of a value that is not simply final (初步, 未完成, 已更正), said beside it where it
 * is shown away from its row: the trend, the timeline's abnormal line ("" for final). */
const statusMark = (o) => { const m = W().obsMark; return Object.hasOwn(m, o.status) ? m[o.status] : ""; };

/** Whether a result's value is a number (a quantity, integer, range or ratio), kept on one line
 * beside its name; words (a smear's description, a coded finding) wrap like any text. */
const isNumber = (o) => !!(o.valueQuantity || o.valueInteger !== undefined || o.valueRange || o.valueRatio);

/** A result's reference range: its text as the lab wrote it (OBX-7), else its bounds said by the one
 * owner of how a range is said (shared/value.js `hurenValue.range`): "3.90–6.10", an open end as its
 * bound, "≤5.0 mmol/L" -- a FHIR client's range with a high only read "–5.0", a minus five (wards37). */
function range(o) {
  const r = (o.referenceRange || [])[0];
  if (!r) return "";
  if (r.text) return r.text;
  return window.hurenValue.range(r);
}

/** The lab's own flag (interpretation H/L/HH/LL/A...), else whether a number lies outside its
 * reference range: `{cls, label}` — the label is words and an arrow, never colour alone. */
function abnormality(o) {
  const w = W();
  if (withdrawn(o)) return null;
  const code = ((o.interpretation || []).flatMap((i) => codes(i)))[0] || "";
  const by = {
    H: ["high", "↑ " + w.flagHigh], HU: ["high", "↑ " + w.flagHigh], HH: ["crit", "↑↑ " + w.flagCritHigh],
    L: ["low", "↓ " + w.flagLow], LU: ["low", "↓ " + w.flagLow], LL: ["crit", "↓↓ " + w.flagCritLow],
    A: ["abn", "! " + w.flagAbn], AA: ["crit", "!! " + w.flagAbn], POS: ["abn", "! " + w.flagAbn],
    DET: ["abn", "! " + w.flagAbn], R: ["abn", "! " + w.flagAbn], ">": ["high", "↑ " + w.flagHigh],
    "<": ["low", "↓ " + w.flagLow],
  }[code];
  if (by) return { cls: by[0], label: by[1], code };
  if (code) return null;  // N, NEG, S...: the lab says normal
  const q = o.valueQuantity, rr = (o.referenceRange || [])[0];
  if (q && typeof q.value === "number" && rr) {
    if (rr.high && typeof rr.high.value === "number" && q.value > rr.high.value) return { cls: "high", label: "↑ " + w.flagOut };
    if (rr.low && typeof rr.low.value === "number" && q.value < rr.low.value) return { cls: "low", label: "↓ " + w.flagOut };
  }
  return null;
}

/** The HR mark set by mutual recognition: meta.tag in urn:huren:hr-scope (scope names as displays). */
function hrMark(r) {
  const tags = ((r.meta || {}).tag || []).filter((t) => t.system === "urn:huren:hr-scope");
  if (!tags.length) return null;
  // the community scope is said in the page's words, the community being hers (pages32): its stored
  // display names the community (阜宁县医共体内互认, hr_mark.py since pages33) in Chinese only, and
  // results marked before then carry its code ("医共体互认 funing")
  const scopes = tags.map((t) => (t.code === "community" ? W().hrCommunity : t.display || t.code)).join(W().sep);
  // the short mark for the eye, the scopes in words for a screen reader (and as a tooltip)
  return el("span", { class: "hr", title: W().hrMarkLong(scopes) },
    el("span", { "aria-hidden": "true" }, W().hrMark), el("span", { class: "visually-hidden" }, W().hrMarkLong(scopes)));
}
