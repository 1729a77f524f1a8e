// /ui/me — the resident's page. A public SMART app: PKCE S256 standalone launch (launch.js), then
// FHIR reads with the resident's token. Every value from the server is inserted as text (never as
// HTML). Words are in i18n.js, reading FHIR values in values.js, who looked in who.js; this file
// holds the sections, the page's switches and its start.
// The whole record is read once (every linked record at every member institution: the token's
// compartment) and kept in `state`; the language and text-size switches only re-render it.
"use strict";

const cfg = document.getElementById("config").dataset;
const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
const prefs = window.localStorage;
const { WORDS, formatDate, localDay, beijingDay, newestFirst } = window.MeI18n;

let lang = WORDS[prefs.getItem("me.lang")] ? prefs.getItem("me.lang") : "zh-CN";
const W = () => WORDS[lang];
const state = { loaded: false, tab: "timeline" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false && c !== "") node.append(c);
  return node;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
/** The live region: loading and errors are shown; "loaded" is only announced (screen readers). */
let statusKey = null;
function status(text, isError, key) {
  const s = $("status");
  statusKey = key || null;
  s.textContent = text || "";
  s.className = isError ? "error" : key === "loaded" || key === "exported" ? "visually-hidden" : "";
}
/** `key`: a word's name, or a function giving words (an error said again in the other language). */
const say = (key) => (typeof key === "function" ? status(key(), true, key)
  : status(W()[key], key === "partlyLoaded" || key === "partlyRefused" || key === "partlyShown", key));

// ---- building blocks ------------------------------------------------------------------------------

const day = (r) => formatDate(whenOf(r), lang, false);
const dayTime = (v) => formatDate(v, lang, true);

function card(kind, title, metaParts, ...body) {
  return el("article", { class: "card k-" + kind },
    el("h3", {}, el("span", { class: "kind" }, W().kind[kind]), " ", title || "—"),
    el("p", { class: "meta" }, metaParts.filter(Boolean).join(" · ")),
    ...body);
}
/** A record's card; for one the hospital withdrew (`withdrawn`, values.js) only its name, date and
 * institution and that it was withdrawn -- none of its details, which may be another person's. */
function recordCard(r, kind, title, metaParts, ...body) {
  return withdrawn(r) ? card(kind, title, metaParts.slice(0, 2), el("p", { class: "withdrawn" }, W().withdrawnRecord))
    : card(kind, title, metaParts, ...body);
}
const line = (label, value) => (value ? el("p", { class: "line" }, el("span", { class: "lbl" }, label + W().colon), value) : null);
const badge = (txt, cls) => (txt ? el("span", { class: "badge " + (cls || "") }, txt) : null);
const empty = () => el("p", { class: "empty" }, W().none);
const sortNewest = (list) => [...list].sort((a, b) => newestFirst(whenOf(a), whenOf(b)));

/** A record's attachments: text shown (without `gone`, the lines of withdrawn findings), others
 * offered for download. */
function attachmentLinks(attachments, gone) {
  const out = [];
  for (const a of attachments || []) {
    if (!a) continue;
    const ct = (a.contentType || "").split(";")[0];
    if (a.data && ct.startsWith("text/")) {
      out.push(el("p", { class: "doc-text" }, gone ? without(decodeText(a.data), gone) : decodeText(a.data)));
    } else if (a.data) {
      const b = el("button", { type: "button", class: "link" }, W().docDownload(a.title || W().document));
      b.addEventListener("click", () => download(a.data, ct, (a.title || "document") + (ct === "application/pdf" ? ".pdf" : "")));
      out.push(el("p", {}, b));
    }
  }
  return out;
}

function download(base64, type, name) {
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  saveBlob(new Blob([bytes], { type: type || "application/octet-stream" }), name);
}
function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name, hidden: "" });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- the sections -----------------------------------------------------------------------------------

/** What truly dates a record filed under a visit: its own effective, issue, order or hand-over time.
 * Not a diagnosis (its onset is when the illness began, years before the visit perhaps), not a
 * medicine a resident says she takes (since when), not a vaccination reported from elsewhere. */
const DATED_BY = {
  labs: ["tests", (o) => o.effectiveDateTime || (o.effectivePeriod || {}).start || o.issued],
  labReports: ["tests", (r) => r.effectiveDateTime || (r.effectivePeriod || {}).start || r.issued],
  imagingReports: ["tests", (r) => r.effectiveDateTime || (r.effectivePeriod || {}).start || r.issued],
  ServiceRequest: ["tests", (r) => (isReferral(r) ? "" : r.authoredOn)],
  referrals: ["referral", (r) => r.authoredOn],
  MedicationRequest: ["meds", (m) => m.authoredOn],
  MedicationDispense: ["meds", (m) => m.whenHandedOver || m.whenPrepared],
  MedicationAdministration: ["meds", (m) => m.effectiveDateTime || (m.effectivePeriod || {}).start],
  Immunization: ["vaccines", (i) => (i.primarySource === false ? "" : i.occurrenceDateTime)],
};

/** For a visit sent without its date (PV1-44 empty; a result or order message names its visit by
 * PV1-19 alone), the earliest time of the records filed under it (their `encounter`) that truly
 * date one (DATED_BY), never a withdrawn one: `{when, what}` -- what kind of records those are, for
 * the words -- or null (the visit is then said undated). Always said as the records' date, never
 * as the visit's (pagesfix31: pages31 had dated a visit by a diagnosis onset of 2010). */
function recordsDay(e) {
  const ref = "Encounter/" + e.id;
  const found = Object.entries(DATED_BY).flatMap(([list, [what, at]]) => (state[list] || [])
    .filter((r) => (r.encounter || {}).reference === ref && !withdrawn(r))
    .map((r) => ({ when: at(r) || "", what })).filter((x) => !Number.isNaN(Date.parse(x.when))));
  return found.sort((a, b) => Date.parse(a.when) - Date.parse(b.when))[0] || null;
}

// the classes that are a stay in hospital (an in-progress one is 正在住院); any other in-progress
// visit says the patient came (已到院), not that it is still going on (pages33)
const STAY_CLASSES = new Set(["IMP", "ACUTE", "NONAC", "OBSENC", "SS"]);

function visitStatus(e) {
  const w = W();
  const stay = STAY_CLASSES.has((e.class || {}).code);
  return word(!stay && Object.hasOwn(w.encStatusVisit, e.status || "") ? w.encStatusVisit : w.encStatus, e.status);
}

function renderVisits() {
  const w = W();
  const dated = state.Encounter.map((e) => [e, whenOf(e) ? null : recordsDay(e)]);
  const at = (e, by) => whenOf(e) || (by ? by.when : "");
  return dated.sort(([a, ab], [b, bb]) => newestFirst(at(a, ab), at(b, bb))).map(([e, by]) => {
    const cls = word(w.encClass, (e.class || {}).code) || text((e.type || [])[0]);
    const end = e.period && e.period.end;
    return recordCard(e, "visit", cls, [day(e) || (by ? w.visitByRecords(formatDate(by.when, lang, false), w.datedBy[by.what])
      : w.visitUndated), institution(e), visitStatus(e)],
      line(w.ward, (e.location || []).map((l) => wardName(l.location)).filter(Boolean).join(W().sep)),
      line(w.reason, (e.reasonCode || []).map(text).filter(Boolean).join(W().sep) || (e.diagnosis || []).map((d) => (d.condition || {}).display).filter(Boolean).join(W().sep)),
      line(w.doctor, (e.participant || []).map((p) => (p.individual || {}).display).filter(Boolean).join(W().sep)),
      end ? line(w.to, dayTime(end)) : null);
  });
}

function renderDiagnoses() {
  const w = W();
  return sortNewest(state.Condition).map((c) => recordCard(c, "diagnosis", text(c.code),
    [day(c), institution(c)],
    el("p", {}, badge(word(w.condStatus, firstCode(c.clinicalStatus))),
      badge(word(w.condVerif, firstCode(c.verificationStatus))),
      badge(word(w.condCat, (c.category || []).map(firstCode)[0])))));
}

function medName(m) {
  if (m.medicationCodeableConcept) return text(m.medicationCodeableConcept);
  const ref = m.medicationReference || {};
  const med = (ref.reference && (state.meds[ref.reference] ||
    (ref.reference.startsWith("#") && (m.contained || []).find((c) => "#" + c.id === ref.reference)))) || null;
  // the name lives on a Medication resource; where the server does not hand it to a resident,
  // the card says so rather than showing a blank
  return (med && text(med.code)) || ref.display || W().medUnnamed;
}
function dosage(m) {
  const d = (m.dosageInstruction || m.dosage || [])[0] || (m.dosage && !Array.isArray(m.dosage) ? m.dosage : null);
  if (!d) return "";
  if (d.text) return d.text;
  const dose = (d.doseAndRate || [])[0] || {};
  const q = dose.doseQuantity || d.dose;
  return [q && `${num(q)} ${q.unit || ""}`.trim(), d.route && text(d.route), d.timing && d.timing.code && text(d.timing.code)]
    .filter(Boolean).join(" ");
}
function renderMeds() {
  const w = W();
  return sortNewest(state.meds_all).map((m) => recordCard(m, "med", medName(m),
    [day(m), institution(m), word(w.medKind, m.resourceType), word(w.medStatus, m.status)],
    line(w.dose, dosage(m)),
    line(w.quantity, m.quantity ? `${num(m.quantity)} ${m.quantity.unit || ""}`.trim() : ""),
    line(w.reason, (m.reasonCode || []).map(text).filter(Boolean).join(W().sep))));
}

function renderImmunisations() {
  const w = W();
  return sortNewest(state.Immunization).map((i) => {
    const dose = (i.protocolApplied || [])[0] || {};
    const n = dose.doseNumberPositiveInt || dose.doseNumberString;
    return recordCard(i, "immunisation", text(i.vaccineCode),
      [day(i), institution(i), word(w.immStatus, i.status)],
      n ? el("p", {}, badge(w.doseNo(n))) : null,
      line(w.amount, i.doseQuantity ? `${num(i.doseQuantity)} ${i.doseQuantity.unit || i.doseQuantity.code || ""}`.trim() : ""),
      line(w.route, text(i.route)), line(w.site, text(i.site)), line(w.lot, i.lotNumber),
      line(w.reaction, (i.reaction || []).map((x) => (x.detail || {}).display).filter(Boolean).join(W().sep)));
  });
}

function renderAllergies() {
  const w = W();
  return sortNewest(state.AllergyIntolerance).map((a) => {
    const crit = a.criticality;
    return recordCard(a, "allergy", text(a.code),
      [day(a), institution(a), (a.category || []).map((c) => word(w.allergyCat, c)).join(W().sep)],
      el("p", {}, badge(word(w.allergyCrit, crit), crit === "high" ? "warn" : ""),
        badge(word(w.allergyStatus, firstCode(a.clinicalStatus)))),
      line(w.reaction, (a.reaction || []).flatMap((r) => (r.manifestation || []).map(text)).filter(Boolean).join(W().sep)));
  });
}

const apptTitle = (a) => a.description || (a.reasonCode || []).map(text)[0] || (a.serviceType || []).map(text)[0] ||
  text(a.appointmentType) || W().kind.appointment;
function renderAppointments() {
  const w = W();
  return sortNewest(state.Appointment).map((a) => {
    const who = (a.participant || []).map((p) => (p.actor || {})).filter((x) => !(x.reference || "").startsWith("Patient/"));
    const title = apptTitle(a);
    return recordCard(a, "appointment", title, [dayTime(a.start), institution(a), word(w.apptStatus, a.status)],
      line(w.dept, (a.serviceType || []).map(text).filter((x) => x && x !== title).join(W().sep)),
      line(w.where, who.map((x) => x.display).filter(Boolean).join(W().sep)),
      line(w.note, a.comment || a.patientInstruction));
  });
}

const isReferral = (sr) => (sr.category || []).some((c) => (c.coding || []).some((x) =>
  ["3457005", "referral", "306206005"].includes(x.code))) || /referral|转诊/i.test(text((sr.category || [])[0]));
function renderReferrals() {
  const w = W();
  return sortNewest(state.referrals).map((sr) => {
    const tasks = state.Task.filter((t) => [t.focus, ...(t.basedOn || [])].some((x) =>
      x && x.reference === "ServiceRequest/" + sr.id));
    const to = (sr.performer || []).map(doctor).filter(Boolean).join(W().sep);
    const from = doctor(sr.requester);
    return recordCard(sr, "referral", text(sr.code) || w.kind.referral,
      [day(sr), institution(sr), word(w.refStatus, sr.status)],
      line(w.referTo, to), line(w.referBy, from), line(w.reason, (sr.reasonCode || []).map(text).filter(Boolean).join(W().sep)),
      ...sortNewest(tasks).map((t) => el("p", { class: "line ref-state" }, el("span", { class: "lbl" }, w.progress + w.colon),
        badge(word(w.refState, referralState(t)) || word(w.taskStatus, t.status), "state"),
        " ", dayTime(t.lastModified || t.authoredOn))));
  });
}

/** A doctor a record names: the reference's own words, else the Practitioner's name. */
function doctor(ref) {
  if (!ref) return "";
  const p = state.people[ref.reference];
  const n = p && (p.name || [])[0];
  return ref.display || (n ? (n.text || [n.family, ...(n.given || [])].filter(Boolean).join("")) + W().doctorSuffix : "");
}

/** Where a referral stands (the two-way referral's state on its Task, else the Task's status). */
const REF_STATE_SYSTEM = "urn:huren:referral-state";
const REF_STATE_BY_STATUS = { requested: "requested", received: "requested", accepted: "accepted", rejected: "rejected",
  cancelled: "cancelled", "in-progress": "arrived", completed: "completed", "entered-in-error": "entered-in-error" };
function referralState(task) {
  const c = ((task.businessStatus || {}).coding || []).find((x) => x.system === REF_STATE_SYSTEM);
  return (c && c.code) || REF_STATE_BY_STATUS[task.status] || "";
}
const latestTask = (sr) => sortNewest(state.Task.filter((t) => [t.focus, ...(t.basedOn || [])].some((x) =>
  x && x.reference === "ServiceRequest/" + sr.id)))[0];

function renderDocuments() {
  return sortNewest(state.DocumentReference).map((d) => recordCard(d, "document", text(d.type) || d.description,
    [day(d), institution(d), statusWords(d)], ...attachmentLinks((d.content || []).map((c) => c.attachment),
      withdrawnLines(((d.context || {}).related || []).map((x) => state.reportByRef[x.reference])))));
}

function resultRow(o) {
  const w = W();
  const ab = abnormality(o);
  const rg = range(o);
  const said = statusWords(o);
  // a result the hospital withdrew shows no value: it is not the resident's result
  const gone = withdrawn(o);
  return el("tr", { class: ab ? "abn " + ab.cls : gone ? "void" : "" },
    el("th", { scope: "row" }, text(o.code), hrMark(o), rg ? el("small", { class: "range" }, `${w.range} ${rg}`) : null),
    // a number stays on one line; words wrap (a long finding had pushed the page past a phone's width)
    el("td", { class: isNumber(o) && !gone ? "v" : "v words" }, gone ? null : el("span", { class: "num" }, valueOf(o)),
      ab ? el("span", { class: "flag" }, ab.label) : null,
      said ? el("span", { class: "obs-status" }, said) : null));
}
/** The results of a group that are results: a withdrawn one is listed but not counted. */
const counted = (obs) => obs.filter((o) => !withdrawn(o));

/** Lab results by day and institution: one table each, abnormal rows first named by words. */
function labGroups() {
  const groups = new Map();
  for (const o of state.labs) {
    const k = localDay(whenOf(o)) + "|" + institution(o);
    if (!groups.has(k)) groups.set(k, { when: whenOf(o), inst: institution(o), obs: [] });
    groups.get(k).obs.push(o);
  }
  return [...groups.values()].sort((a, b) => newestFirst(a.when, b.when));
}
const labReportsOf = (g) => state.labReports.filter((r) => localDay(whenOf(r)) === localDay(g.when) && institution(r) === g.inst);
function renderResults() {
  const w = W();
  return labGroups().map((g) => {
    const reports = labReportsOf(g);
    const abn = g.obs.filter(abnormality).length;
    return el("article", { class: "card k-result" },
      el("h3", {}, el("span", { class: "kind" }, w.kind.result), " ", formatDate(g.when, lang, false)),
      el("p", { class: "meta" }, [g.inst || w.unknownInst, reports.map((r) => text(r.code)).join(W().sep),
        w.resultsCount(counted(g.obs).length), [...new Set(reports.map(statusWords).filter(Boolean))].join(W().sep)]
        .filter(Boolean).join(" · "), " ", reports.map(hrMark)[0] || null,
        abn ? el("strong", { class: "abn-count" }, " " + w.abnormalCount(abn)) : null),
      el("table", {}, el("tbody", {}, ...g.obs.map(resultRow))));
  });
}

/** The statuses of a value that is not (yet) the lab's final word: drawn as a ring in a trend. */
const PROVISIONAL = new Set(["registered", "partial", "preliminary", "cancelled"]);

function chart(series) {
  const Wd = 320, H = 150, P = 28;
  const pts = series.points;
  const xs = pts.map((p) => p.t), ys = pts.map((p) => p.v);
  const lo = series.low, hi = series.high;
  let y0 = Math.min(...ys, lo ?? Infinity), y1 = Math.max(...ys, hi ?? -Infinity);
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const X = (t) => P + (x1 === x0 ? (Wd - 2 * P) / 2 : ((t - x0) / (x1 - x0)) * (Wd - 2 * P));
  const Y = (v) => H - P - ((v - y0) / (y1 - y0)) * (H - 2 * P);
  // a preliminary (or not completed) value is marked as such, not drawn as if final (a ring); a
  // corrected one is said so beside it, drawn as final
  const said = (p) => p.said + (p.mark ? W().paren(p.mark) : "");
  const summary = pts.map((p) => `${formatDate(p.day, lang, false)} ${said(p)}`).join("; ");
  const s = svg("svg", { viewBox: `0 0 ${Wd} ${H}`, role: "img", "aria-label": `${series.name}: ${summary}` });
  if (lo !== undefined && hi !== undefined) {
    s.append(svg("rect", { x: P, y: Y(hi), width: Wd - 2 * P, height: Math.max(1, Y(lo) - Y(hi)), class: "band" }));
  }
  s.append(svg("polyline", { points: pts.map((p) => `${X(p.t)},${Y(p.v)}`).join(" "), fill: "none", class: "trend",
    "stroke-width": 2 }));
  for (const p of pts) {
    const c = svg("circle", { cx: X(p.t), cy: Y(p.v), r: 4, class: (p.abn ? "dot abn" : "dot") + (p.provisional ? " marked" : "") });
    const title = svg("title"); title.textContent = `${formatDate(p.day, lang, false)}: ${p.said} ${series.unit}` +
      (p.mark ? W().paren(p.mark) : ""); c.append(title);
    s.append(c);
    // a label at either end is kept inside the chart (88↑（已更正） at the right edge had been cut)
    const anchor = X(p.t) < Wd / 4 ? "start" : X(p.t) > (Wd * 3) / 4 ? "end" : "middle";
    const lab = svg("text", { x: anchor === "start" ? X(p.t) - 4 : anchor === "end" ? X(p.t) + 4 : X(p.t), y: Y(p.v) - 8,
      "text-anchor": anchor, "font-size": 11 });
    lab.textContent = p.said + (p.abn ? (p.abn.cls === "low" ? "↓" : "↑") : "") + (p.mark ? W().paren(p.mark) : ""); s.append(lab);
  }
  for (const [i, p] of [pts[0], pts[pts.length - 1]].entries()) {
    const t = svg("text", { x: X(p.t), y: H - 8, "text-anchor": i ? "end" : "start", "font-size": 11, class: "axis" });
    t.textContent = formatDate(p.day, lang, false); s.append(t);
  }
  return el("article", { class: "card chart", "data-code": series.key },
    el("h3", {}, series.name, " ", el("small", {}, series.unit)), s);
}

function renderTrends() {
  const groups = new Map();
  for (const o of state.labs) {
    if (!o.valueQuantity || typeof o.valueQuantity.value !== "number" || withdrawn(o)) continue;
    const key = codeKey(o.code) + "|" + (o.valueQuantity.unit || o.valueQuantity.code || "");
    const t = Date.parse(whenOf(o));
    if (Number.isNaN(t)) continue;
    if (!groups.has(key)) groups.set(key, { key, name: text(o.code), unit: o.valueQuantity.unit || "", points: [] });
    const g = groups.get(key);
    g.points.push({ t, v: o.valueQuantity.value, said: num(o.valueQuantity), day: localDay(whenOf(o)), abn: abnormality(o),
      mark: statusMark(o), provisional: PROVISIONAL.has(o.status) });
    const rr = (o.referenceRange || [])[0];
    if (rr && rr.low && rr.high && g.low === undefined) { g.low = rr.low.value; g.high = rr.high.value; }
  }
  const series = [...groups.values()].filter((g) => g.points.length >= 2);
  series.forEach((g) => g.points.sort((a, b) => a.t - b.t));
  return series.length ? series.map(chart) : [el("p", { class: "empty" }, W().noTrends)];
}

const findingsOf = (r) => (r.result || []).map((x) => state.obsById[x.reference]).filter(Boolean);
/** The result that only carries the study's DICOM UID (OBX-3 113014 or 110180, DICOM's codes): named in
 * the page's words -- its OBX-3 display, "Study Instance UID", had stood in English on her Chinese page (ui38). */
const STUDY_UID_CODES = new Set(["113014", "110180"]);
const isStudyUid = (o) => ((o.code || {}).coding || []).some((c) => STUDY_UID_CODES.has(c.code) && /dicom|^DCM$/i.test(c.system || ""));
/** The lines that are the words of a withdrawn finding of these reports: the converter writes a
 * report's conclusion and its text document from every OBX whatever its OBX-11 (left to the HL7
 * side), so wherever the page shows such text it leaves these lines out. */
const withdrawnLines = (reports) => new Set(reports.filter(Boolean).flatMap(findingsOf).filter(withdrawn)
  .flatMap((o) => valueOf(o).split("\n")).map((x) => x.trim()).filter(Boolean));
const without = (words, gone) => (words || "").split("\n").filter((x) => !gone.has(x.trim())).join("\n").trim();
/** An imaging report's conclusion without a withdrawn finding's words. */
const conclusionOf = (r) => without(r.conclusion, withdrawnLines([r]));

/** The imaging studies no report names (nor stands for by its time): a card each. */
function unreportedStudies() {
  const reported = new Set(state.imagingReports.flatMap((r) => (r.imagingStudy || []).map((x) => x.reference)));
  return state.ImagingStudy.filter((s) => !reported.has("ImagingStudy/" + s.id) &&
    !state.imagingReports.some((r) => whenOf(r).slice(0, 16) === (s.started || "").slice(0, 16)));
}

function renderImaging() {
  const w = W();
  const cards = state.imagingReports.map((r) => {
    const obs = findingsOf(r);
    const texts = (r.presentedForm || []).filter((a) => (a.contentType || "").startsWith("text/"));
    const conclusion = conclusionOf(r);
    // the report's status where it is not simply final (已更正 corrected, 已更新 amended, 初步结果...)
    return { when: whenOf(r), node: recordCard(r, "imaging", text(r.code), [day(r), institution(r), statusWords(r)], hrMark(r),
      // a finding the hospital withdrew: its name and that it was withdrawn, not its words; one
      // corrected or preliminary says so after its words
      ...obs.map((o) => line((isStudyUid(o) ? w.studyUid : text(o.code)) || w.imagingFindings, withdrawn(o) ? statusWords(o)
        : [valueOf(o), statusWords(o) && w.paren(statusWords(o))].filter(Boolean).join(""))),
      // the report's text carries every OBX, withdrawn ones too: shown only where there are no findings
      obs.length ? null : attachmentLinks(texts),
      obs.some((o) => !withdrawn(o) && valueOf(o).trim() === conclusion) ? null : line(w.imagingConclusion, conclusion),
      ...(r.conclusionCode || []).map((c) => el("p", {}, text(c)))) };
  });
  for (const s of unreportedStudies()) {
    cards.push({ when: s.started || "", node: recordCard(s, "imaging", s.description || (s.procedureCode || []).map(text)[0],
      [day(s), institution(s)], line(w.modality, (s.modality || []).map((m) => m.code).join(W().sep))) });
  }
  return cards.sort((a, b) => newestFirst(a.when, b.when)).map((c) => c.node);
}

/** One line per event of the timeline; lab results are one entry per day and institution. */
function renderTimeline() {
  const w = W();
  const items = [];
  // a record the hospital withdrew is not an event of hers: left out (its card says it was withdrawn)
  const add = (r, kind, when, title, inst, extra, tab, mark) => {
    if (!withdrawn(r)) items.push({ kind, when, title, inst, extra, tab, mark });
  };
  for (const e of state.Encounter) {
    const by = whenOf(e) ? null : recordsDay(e);
    add(e, "visit", whenOf(e) || (by ? by.when : ""), word(w.encClass, (e.class || {}).code), institution(e),
      [by && w.visitOnRecordsDay(w.datedBy[by.what]), ...(e.reasonCode || []).map(text)].filter(Boolean).join(W().sep), "visits");
  }
  for (const c of state.Condition) add(c, "diagnosis", whenOf(c), text(c.code), institution(c), "", "diagnoses");
  for (const m of state.meds_all) add(m, "med", whenOf(m), medName(m), institution(m), dosage(m), "meds");
  for (const i of state.Immunization) add(i, "immunisation", whenOf(i), text(i.vaccineCode), institution(i), "", "immunisations");
  for (const a of state.AllergyIntolerance) add(a, "allergy", whenOf(a), text(a.code), institution(a), word(w.allergyCrit, a.criticality), "allergies");
  for (const a of state.Appointment) add(a, "appointment", a.start || "", apptTitle(a), institution(a), word(w.apptStatus, a.status), "appointments");
  for (const r of state.referrals) {
    const t = latestTask(r);
    add(r, "referral", whenOf(r), text(r.code), institution(r), t ? word(w.refState, referralState(t)) : word(w.refStatus, r.status), "referrals");
  }
  // a report or document not simply final says so in its line (已更正, 初步结果...), as on its card
  for (const d of state.DocumentReference) add(d, "document", whenOf(d), text(d.type), institution(d), statusWords(d), "documents");
  for (const r of state.imagingReports) add(r, "imaging", whenOf(r), text(r.code), institution(r),
    [statusWords(r), conclusionOf(r)].filter(Boolean).join(w.colon), "imaging", hrMark(r));
  for (const g of labGroups()) {
    const abn = g.obs.filter(abnormality);
    const names = [...new Set(labReportsOf(g).map((r) => text(r.code)).filter(Boolean))];
    if (!counted(g.obs).length) continue;  // a day whose every result was withdrawn is no day of hers
    const said = [...new Set(labReportsOf(g).map(statusWords).filter(Boolean))].join(W().sep);
    add(null, "result", g.when, [names.join(W().sep), w.resultsCount(counted(g.obs).length), said].filter(Boolean).join(" · "), g.inst,
      abn.length ? w.abnormalCount(abn.length) + w.colon + abn.map((o) => `${text(o.code)} ${abnormality(o).label}` +
        (statusMark(o) ? w.paren(statusMark(o)) : "")).join(W().sep) : "", "results",
      labReportsOf(g).concat(g.obs).map(hrMark).find(Boolean));
  }
  // newest first; records without a date (an allergy noted once) come last, under their own heading
  items.sort((a, b) => newestFirst(a.when, b.when));
  const byDay = new Map();
  for (const it of items) {
    const d = localDay(it.when);
    if (!byDay.has(d)) byDay.set(d, []);
    byDay.get(d).push(it);
  }
  const undated = byDay.get("");
  byDay.delete("");
  if (undated) byDay.set("", undated);
  return [...byDay].map(([d, list]) => el("section", { class: "day", "aria-label": formatDate(d, lang, false) || w.undated },
    el("h3", { class: "day-h" }, formatDate(d, lang, false) || w.undated),
    el("ul", { class: "tl" }, ...list.map((it) => {
      const go = el("button", { type: "button", class: "link", "aria-label": `${w.kind[it.kind]}：${it.title || ""}` },
        it.title || w.kind[it.kind]);
      go.addEventListener("click", () => showTab(it.tab, true));
      return el("li", { class: "k-" + it.kind },
        el("span", { class: "kind" }, w.kind[it.kind]), " ", go, it.mark || null,
        el("span", { class: "inst" }, it.inst || w.unknownInst),
        it.extra ? el("span", { class: "extra" + (it.kind === "result" ? " abn-text" : "") }, it.extra) : null);
    }))));
}

// ---- page ----------------------------------------------------------------------------------------------

const SECTIONS = {
  timeline: renderTimeline, visits: renderVisits, diagnoses: renderDiagnoses, meds: renderMeds,
  immunisations: renderImmunisations, allergies: renderAllergies, appointments: renderAppointments,
  referrals: renderReferrals, documents: renderDocuments, results: renderResults, trends: renderTrends,
  imaging: renderImaging, family: renderFamily, who: renderWho,
};
// what each section counts: its records; results count the values, not the days
const COUNTS = {
  visits: () => state.Encounter, diagnoses: () => state.Condition, meds: () => state.meds_all,
  immunisations: () => state.Immunization, allergies: () => state.AllergyIntolerance,
  appointments: () => state.Appointment, referrals: () => state.referrals,
  documents: () => state.DocumentReference, results: () => state.labs,
  // one card per report, and per study no report names
  imaging: () => state.imagingReports.concat(unreportedStudies()),
};
/** A section's count as the list shows it: `[hers, withdrawn]` -- a record the hospital withdrew
 * (`withdrawn`, values.js) is shown only as withdrawn, so it is not counted as hers but said apart
 * (共 11 条（另有 1 条已作废）); pagesfix31's counts had included it (pages32). */
const tally = (records) => { const gone = records.filter(withdrawn).length; return [records.length - gone, gone]; };

// what each section is read from: a section whose records the server did not answer for says so
const READ_FROM = {
  timeline: ["Encounter", "Condition", "MedicationRequest", "MedicationDispense", "MedicationStatement",
    "MedicationAdministration", "Immunization", "AllergyIntolerance", "Appointment", "ServiceRequest", "Task",
    "DocumentReference", "Observation", "DiagnosticReport", "ImagingStudy"],
  visits: ["Encounter"], diagnoses: ["Condition"],
  meds: ["MedicationRequest", "MedicationDispense", "MedicationStatement", "MedicationAdministration"],
  immunisations: ["Immunization"], allergies: ["AllergyIntolerance"], appointments: ["Appointment"],
  referrals: ["ServiceRequest", "Task"], documents: ["DocumentReference"], results: ["Observation", "DiagnosticReport"],
  trends: ["Observation"], imaging: ["DiagnosticReport", "ImagingStudy", "Observation"], who: ["who"],
  family: ["Consent"],
};
const unreadIn = (name) => (READ_FROM[name] || []).some((t) => state.unread && state.unread.has(t));
// every kind this section was not read from was refused (403), not unanswered: said as such
const refusedIn = (name) => unreadIn(name) &&
  (READ_FROM[name] || []).every((t) => !state.unread.has(t) || (state.refused && state.refused.has(t)));
// some of its kinds were read in part (a later page not answered, or fewer than the server counted),
// the others read, in part or refused: its list is partial -- what is shown is there, the rest is not
// (not "refused, nothing shown", not "the server did not answer")
const partialIn = (name) => (READ_FROM[name] || []).some((t) => state.partial && state.partial.has(t)) &&
  (READ_FROM[name] || []).every((t) => !state.unread.has(t) || state.partial.has(t) || state.refused.has(t));
/** The status line once the reads are done: loaded, or which way some were not (refused, read in
 * part, not answered) -- also after a section is read again (who.js), which had said "档案已加载"
 * while other sections were still marked. */
function sayLoaded() {
  const { unread, refused, partial } = state;
  const n = (set) => [...set].filter((t) => unread.has(t)).length;
  say(!unread.size ? "loaded" : n(refused) === unread.size ? "partlyRefused"
    : n(refused) + n(partial) === unread.size ? "partlyShown" : "partlyLoaded");
}
const unreadWords = (name, w) => (refusedIn(name) ? w.refused : partialIn(name) ? w.partial : w.unreadable);

function renderSection(name) {
  const w = W();
  const sec = $(name);
  const body = SECTIONS[name]();
  const unread = unreadIn(name);
  const count = COUNTS[name] ? tally(COUNTS[name]()) : null;
  sec.toggleAttribute("data-empty", !(Array.isArray(body) && body.length));
  // no gestures needed: a plain button at the end of every section goes back to the section list
  const back = el("button", { type: "button", class: "back" }, "↑ " + w.backToSections);
  back.addEventListener("click", () => { const t = $("tabs"); t.scrollIntoView({ block: "start" });
    const b = t.querySelector(`[data-tab="${name}"]`); if (b) b.focus(); });
  sec.replaceChildren(...[el("h2", { id: name + "-h", tabindex: "-1" }, w["h_" + name],
    count !== null && !unread ? el("small", {}, " " + w.records(...count)) : null),
  unread ? el("p", { class: "unread" }, "⚠ " + unreadWords(name, w)) : null,
  ...(Array.isArray(body) && body.length ? body : unread ? [] : [empty()]), back].filter(Boolean));
}

function renderBanner() {
  const w = W();
  const p = state.patient || {};
  const n = (p.name || [])[0];
  const name = n ? (n.text || [n.family, ...(n.given || [])].filter(Boolean).join("")) : "";
  const born = p.birthDate ? formatDate(p.birthDate, lang, false) : "";
  let age = "";
  if (/^\d{4}-\d{2}-\d{2}$/.test(p.birthDate || "")) { // on Beijing's today, not the phone zone's
    const today = beijingDay();
    const a = Number(today.slice(0, 4)) - Number(p.birthDate.slice(0, 4)) - (today.slice(5) < p.birthDate.slice(5) ? 1 : 0);
    if (a >= 0 && a < 150) age = w.age(a);
  }
  const insts = [...new Set(Object.values(state.patientInst).filter(Boolean))];
  $("banner").replaceChildren(...[actingBanner(),
    el("p", { class: "who-am-i" }, el("strong", { id: "name" }, name || "—"), " ",
      ...[word(w.sex, p.gender), age, born && `${w.born} ${born}`].filter(Boolean)
        .flatMap((x, i) => [i ? " · " : "", el("span", { class: "nobr" }, x)])),
    insts.length ? el("p", { class: "insts" }, w.institutions(insts)) : null,
    allergyLine()].filter(Boolean));
  $("banner").hidden = false;
}

/** Allergies still in force, at the top: what a resident most needs to tell any doctor. */
function allergyLine() {
  const w = W();
  if (state.unread && state.unread.has("AllergyIntolerance")) {
    return el("p", { class: "allergy-line" }, el("strong", {}, "⚠ " + w.allergyUnreadable));
  }
  const active = state.AllergyIntolerance.filter((a) => !["inactive", "resolved"].includes(firstCode(a.clinicalStatus)) &&
    firstCode(a.verificationStatus) !== "refuted" && firstCode(a.verificationStatus) !== "entered-in-error");
  if (!active.length) return null;
  return el("p", { class: "allergy-line" }, el("strong", {}, "⚠ " + w.allergyBanner + w.colon),
    active.map((a) => text(a.code) + (a.criticality === "high" ? w.paren(w.allergyCrit.high) : "")).join(w.sep));
}

function renderAll() {
  if (!state.loaded) return;
  renderBanner();
  for (const name of Object.keys(SECTIONS)) renderSection(name);
  $("printed").textContent = W().printed(formatDate(new Date().toISOString(), lang, true));
}

function showTab(name, focus) {
  state.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-pressed", String(b.dataset.tab === name));
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== name;
  if (focus) { const h = $(name + "-h"); if (h) { h.focus(); h.scrollIntoView({ block: "start" }); } }
}

function applyWords() {
  const w = W();
  document.documentElement.lang = lang;
  document.title = w.title;
  for (const node of document.querySelectorAll("[data-w]")) node.textContent = w[node.dataset.w];
  for (const b of document.querySelectorAll("#tabs button")) b.textContent = w["tab_" + b.dataset.tab];
  $("tabs").setAttribute("aria-label", w.sections);
  $("banner").setAttribute("aria-label", w.bannerLabel);
  const lb = $("lang");
  lb.textContent = w.language; lb.setAttribute("lang", lang === "en" ? "zh-CN" : "en");
  lb.setAttribute("aria-label", w.languageLabel);
  if (statusKey) say(statusKey);
  const big = document.documentElement.classList.contains("big");
  $("bigtext").textContent = big ? w.bigTextOn : w.bigTextOff;
  renderAll();
}

function setBig(on) {
  document.documentElement.classList.toggle("big", on);
  $("bigtext").setAttribute("aria-pressed", String(on));
  prefs.setItem("me.big", on ? "1" : "0");
  $("bigtext").textContent = on ? W().bigTextOn : W().bigTextOff;
}

async function exportEverything(s) {
  const w = W();
  say("exporting");
  const entries = [], seen = new Set();
  for (const pid of state.patientIds) {
    // to the end of each record (ui18 stopped after 50 pages, and at an answer it could not use,
    // and still said "已下载": a download missing records must not pass for the whole record)
    let url = "Patient/" + encodeURIComponent(pid) + "/$everything?_count=500";
    const pages = new Set();
    while (url) {
      if (pages.has(url)) throw new Error(w.exportIncomplete);
      pages.add(url);
      const b = await fhir(url, s).catch((e) => { throw e instanceof Unreadable ? new Error(w.exportIncomplete) : e; });
      if (!b) throw new Error(w.exportIncomplete);
      for (const e of b.entry || []) {
        const r = e.resource; if (!r) continue;
        const key = r.resourceType + "/" + r.id;
        if (!seen.has(key)) { seen.add(key); entries.push({ fullUrl: e.fullUrl || cfg.fhir + "/" + key, resource: r }); }
      }
      const next = (b.link || []).find((l) => l.relation === "next");
      url = next ? next.url : null;
    }
  }
  // referral Tasks are outside the R4 compartment, so not in $everything, yet theirs; the medicines
  // their prescriptions name come with $everything as include entries (added here only if missing)
  const add = (r) => { const key = r.resourceType + "/" + r.id;
    if (!seen.has(key)) { seen.add(key); entries.push({ fullUrl: cfg.fhir + "/" + key, resource: r }); } };
  (state.Task || []).forEach(add);
  Object.values(state.meds || {}).forEach(add);
  const bundle = { resourceType: "Bundle", type: "collection", timestamp: new Date().toISOString(), total: entries.length, entry: entries };
  // every number as the server sent it (1.50, not 1.5): the download is the record, not a copy of it
  saveBlob(new Blob([window.hurenExact.stringify(bundle, 2)], { type: "application/fhir+json" }),
    w.exportName(beijingDay())); // her words: the file she finds in her downloads is named as the button says
  say("exported");
}

// medicines named by reference (a Medication resource) come along with the prescription
const MED_INCLUDES = new Set(["MedicationRequest", "MedicationDispense", "MedicationAdministration", "MedicationStatement"]);

async function load(s) {
  $("signin").hidden = true; $("signout").hidden = false;
  state.session = s;
  say("loading");
  const types = ["Encounter", "Condition", "MedicationRequest", "MedicationDispense", "MedicationStatement",
    "MedicationAdministration", "Immunization", "AllergyIntolerance", "Appointment", "ServiceRequest", "Task",
    "DocumentReference", "ImagingStudy"];
  const unread = new Set();  // the kinds of record the server did not answer for
  const [patient, patients, obs, reps, ...rest] = await Promise.all([
    fhir("Patient/" + encodeURIComponent(s.patient), s).catch((e) => {
      if (e instanceof Unreadable) { unread.add("Patient"); return null; } throw e; }),
    searchAll("Patient?_count=100", s),
    searchAll("Observation?_count=200&_sort=-date&_include=Observation:performer", s),
    searchAll("DiagnosticReport?_count=100&_sort=-date&_include=DiagnosticReport:performer", s),
    ...types.map((t) => searchAll(t + "?_count=200" + (MED_INCLUDES.has(t) ? `&_include=${t}:medication` : "") +
      (t === "ServiceRequest" ? "&_include=ServiceRequest:performer&_include=ServiceRequest:requester" : ""), s)),
  ]);
  state.patient = patient;
  state.orgs = { ...obs.included, ...reps.included };
  state.patientIds = [...new Set([s.patient, ...patients.resources.map((p) => p.id)])];
  state.patientInst = {};
  for (const p of patients.resources.concat(patient ? [patient] : [])) {
    const mrn = (p.identifier || []).find((i) => (i.system || "").startsWith("urn:huren:mrn:"));
    state.patientInst["Patient/" + p.id] = (p.managingOrganization || {}).display ||
      (mrn && ((mrn.assigner || {}).display || mrn.system.slice("urn:huren:mrn:".length))) || "";
  }
  types.forEach((t, i) => { state[t] = rest[i].resources; });
  const refused = new Set();  // of those, the kinds the server refused (403): said as refused, not "no answer"
  const partial = new Set();  // and the kinds read in part: their lists say they are partial
  [["Patient", patients], ["Observation", obs], ["DiagnosticReport", reps], ...types.map((t, i) => [t, rest[i]])]
    .forEach(([t, r]) => {
      if (r.failed || r.partial) unread.add(t);
      if (r.refused) refused.add(t);
      if (r.partial) partial.add(t);
    });
  state.unread = unread;
  state.refused = refused;
  state.partial = partial;
  state.meds = {};
  state.people = {};  // the doctors a referral names
  for (const r of rest) for (const [k, v] of Object.entries(r.included)) {
    if (k.startsWith("Medication/")) state.meds[k] = v;
    if (k.startsWith("Practitioner/")) state.people[k] = v;
  }
  state.meds_all = [...state.MedicationRequest, ...state.MedicationDispense, ...state.MedicationStatement, ...state.MedicationAdministration];
  state.referrals = state.ServiceRequest.filter(isReferral);
  const isImaging = (r) => (r.imagingStudy || []).length || (r.category || []).some((c) => (c.coding || []).some((x) =>
    ["RAD", "imaging", "CT", "MR", "US", "DX", "CR", "NM", "PT", "XA", "RX", "394914008"].includes(x.code)));
  state.imagingReports = reps.resources.filter(isImaging);
  state.labReports = reps.resources.filter((r) => !isImaging(r));
  state.obsById = Object.fromEntries(obs.resources.map((o) => ["Observation/" + o.id, o]));
  // the results and text documents of a report the hospital withdrew go with it, whatever their own status
  const gone = new Set(reps.resources.filter(withdrawn).map((r) => "DiagnosticReport/" + r.id));
  state.withdrawnWithReport = new Set([...reps.resources.filter(withdrawn).flatMap((r) => (r.result || []).map((x) => x.reference)),
    ...state.DocumentReference.filter((d) => ((d.context || {}).related || []).some((x) => gone.has(x.reference)))
      .map((d) => "DocumentReference/" + d.id)]);
  state.reportByRef = Object.fromEntries(reps.resources.map((r) => ["DiagnosticReport/" + r.id, r]));
  const imagingObs = new Set(state.imagingReports.flatMap((r) => (r.result || []).map((x) => x.reference)));
  state.labs = obs.resources.filter((o) => !imagingObs.has("Observation/" + o.id) &&
    !(o.category || []).some((c) => codes(c).includes("imaging")));
  // a family member signed in on this person's behalf sees whose record it is; the person manages
  // who may do so
  state.acting = s.acting || null;
  await loadFamily(s).catch((e) => {
    if (!(e instanceof Unreadable)) throw e;
    unread.add("Consent"); state.grants = [];
    if (e instanceof Refused) refused.add("Consent");
  });
  // who looked: the server words the audit trail's accesses to this person's records, newest first
  const who = await fhir(cfg.who, s).catch((e) => {
    if (!(e instanceof Unreadable)) throw e;
    unread.add("who"); if (e instanceof Refused) refused.add("who");
    return null;
  });
  state.audit = (who && who.entries) || [];
  // the wards of her visits as the engine names them (wardName, values.js); unanswered: as recorded
  const wards = await fhir(cfg.wards, s).catch((e) => { if (!(e instanceof Unreadable)) throw e; return null; });
  state.wards = (wards && wards.wards) || {};
  if (signingOut) return;  // signed out while the reads were on their way: nothing is drawn again
  state.loaded = true;
  renderAll();
  $("tools").hidden = false;
  $("tabs").hidden = false;
  showTab(state.tab);
  sayLoaded();
  document.body.dataset.ready = "1";
}

async function main() {
  setBig(prefs.getItem("me.big") === "1");
  applyWords();
  $("login").addEventListener("click", () => signIn().catch((e) => status(e.message, true)));
  $("signout").addEventListener("click", () => { $("signout").disabled = true; signOut(); });
  $("bigtext").addEventListener("click", () => setBig(!document.documentElement.classList.contains("big")));
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    prefs.setItem("me.lang", lang);
    applyWords();
    showTab(state.tab);
  });
  $("print").addEventListener("click", () => window.print());
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab, true));
  const params = new URLSearchParams(location.search);
  try {
    if (params.get("error")) {
      // said in the page's own words: the address's error_description is anyone's text (a link
      // crafted as /ui/me/?error=x&error_description=请致电… had shown it as this site's message)
      history.replaceState(null, "", cfg.redirect);
      throw new Error(params.get("error") === "access_denied" ? W().signinDenied : W().signinFailed);
    }
    if (params.get("code")) await finishSignIn(params);
    const s = session();
    if (s) {
      $("export").addEventListener("click", () => exportEverything(s).catch((e) => status(e.message, true)));
      await load(s);
      endAtExpiry(s);
    } else $("signin").hidden = false;
  } catch (e) {
    if (signingOut) return;  // a read refused because the token was just revoked is no news
    $("signin").hidden = false;
    if (!session()) $("signout").hidden = true;
    if (typeof e.words === "function") say(e.words); else status(e.message, true);
    document.body.dataset.ready = "error";
  }
}
/** The token's end takes the record off the screen when it comes (sessionOver), not at the next
 * read: a page left open on a shared phone had shown the record for as long as it stayed open
 * after its 15 minutes (a review of fammend19). */
function endAtExpiry(s) {
  setTimeout(() => {
    if (signingOut || !state.loaded || session()) return;
    sessionOver();
    say(() => W().sessionExpired);  // said again in the other language when switched
  }, Math.max(0, s.exp - Date.now() - 5000) + 500);
}
main();
