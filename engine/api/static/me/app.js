// /ui/me — the resident's page. A public SMART app: PKCE S256 standalone launch, then FHIR reads
// with the resident's token. Every value from the server is inserted as text (never as HTML).
// The whole record is read once (every linked record at every member institution: the token's
// compartment) and kept in `state`; the language and text-size switches only re-render it.
"use strict";

const cfg = document.getElementById("config").dataset;
const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
const prefs = window.localStorage;
const { WORDS, formatDate } = window.MeI18n;

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
const say = (key) => status(W()[key], false, key);

// ---- SMART standalone launch -----------------------------------------------------------------

function b64url(bytes) {
  let s = ""; for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function random(n) { const a = new Uint8Array(n); crypto.getRandomValues(a); return b64url(a); }

async function signIn() {
  const verifier = random(48), st = random(16);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  store.setItem("pkce", JSON.stringify({ verifier, state: st }));
  const q = new URLSearchParams({
    response_type: "code", client_id: cfg.client, redirect_uri: cfg.redirect, state: st, aud: cfg.fhir,
    scope: "launch/patient openid fhirUser patient/*.rs", code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(cfg.authorize + "?" + q.toString());
}

async function finishSignIn(params) {
  const saved = JSON.parse(store.getItem("pkce") || "null");
  store.removeItem("pkce");
  history.replaceState(null, "", cfg.redirect);  // drop the code from the address bar
  if (!saved || params.get("state") !== saved.state) throw new Error(W().stateMismatch);
  const body = new URLSearchParams({
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: cfg.redirect,
    client_id: cfg.client, code_verifier: saved.verifier,
  });
  const r = await fetch(cfg.token, { method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  const t = await r.json();
  if (!r.ok) throw new Error(t.error_description || t.error || "token request failed");
  store.setItem("session", JSON.stringify({ token: t.access_token, patient: t.patient, exp: Date.now() + t.expires_in * 1000 }));
}

function session() {
  const s = JSON.parse(store.getItem("session") || "null");
  return s && s.exp > Date.now() + 5000 ? s : null;
}

// ---- FHIR reads --------------------------------------------------------------------------------

class Expired extends Error {}

async function fhir(url, s) {
  const r = await fetch(url.startsWith("http") || url.startsWith("/") ? url : cfg.fhir + "/" + url,
    { headers: { Authorization: "Bearer " + s.token, Accept: "application/fhir+json" } });
  if (r.status === 401) { store.removeItem("session"); throw new Expired(W().sessionExpired); }
  if (!r.ok) return null;  // a type this server does not search (yet) is simply an empty section
  return r.json();
}

async function searchAll(query, s, maxPages = 20) {
  const out = { resources: [], included: {} };
  let url = query;
  for (let page = 0; url && page < maxPages; page++) {
    const b = await fhir(url, s);
    if (!b) break;
    for (const e of b.entry || []) {
      const res = e.resource;
      if (!res) continue;
      if (e.search && e.search.mode === "include") out.included[res.resourceType + "/" + res.id] = res;
      else out.resources.push(res);
    }
    const next = (b.link || []).find((l) => l.relation === "next");
    url = next ? next.url : null;
  }
  return out;
}

// ---- reading FHIR values -------------------------------------------------------------------------

const text = (cc) => (cc && (cc.text || (cc.coding || []).map((c) => c.display || c.code).find(Boolean))) || "";
const codeKey = (cc) => { const c = (cc && cc.coding || [])[0]; return c ? (c.system || "") + "|" + c.code : text(cc); };
const codes = (cc) => (cc && cc.coding || []).map((c) => c.code);
const firstCode = (cc) => codes(cc)[0] || "";
const word = (table, code) => (code && table && table[code]) || code || "";

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

function whenOf(r) {
  return r.effectiveDateTime || (r.effectivePeriod && r.effectivePeriod.start) || r.occurrenceDateTime ||
    (r.period && r.period.start) || r.start || r.authoredOn || r.onsetDateTime || r.recordedDate ||
    (r.onsetPeriod && r.onsetPeriod.start) || r.whenHandedOver || r.whenPrepared || r.dateAsserted ||
    r.effectiveDateTime || r.date || r.started || r.issued || r.authoredOn || r.created ||
    (r.executionPeriod && r.executionPeriod.start) || r.lastModified || r.occurrenceString || "";
}

function valueOf(o) {
  if (o.valueQuantity) {
    const q = o.valueQuantity;
    return `${q.comparator || ""}${q.value ?? ""} ${q.unit || q.code || ""}`.trim();
  }
  if (o.valueString !== undefined) return o.valueString;
  if (o.valueCodeableConcept) return text(o.valueCodeableConcept);
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.valueBoolean !== undefined) return String(o.valueBoolean);
  if (o.valueRange) return `${(o.valueRange.low || {}).value ?? ""}–${(o.valueRange.high || {}).value ?? ""}`;
  if (o.valueRatio) return `${(o.valueRatio.numerator || {}).value ?? ""}/${(o.valueRatio.denominator || {}).value ?? ""}`;
  if (o.component && o.component.length) return o.component.map((c) => `${text(c.code)} ${valueOf(c)}`).join("; ");
  return o.dataAbsentReason ? text(o.dataAbsentReason) : "";
}

function range(o) {
  const r = (o.referenceRange || [])[0];
  if (!r) return "";
  if (r.text) return r.text;
  const lo = r.low ? r.low.value : "", hi = r.high ? r.high.value : "";
  return lo !== "" || hi !== "" ? `${lo}–${hi}` : "";
}

/** The lab's own flag (interpretation H/L/HH/LL/A...), else whether a number lies outside its
 * reference range: `{cls, label}` — the label is words and an arrow, never colour alone. */
function abnormality(o) {
  const w = W();
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
  const scopes = tags.map((t) => t.display || t.code).join(W().sep);
  // the short mark for the eye, the scopes in words for a screen reader (and as a tooltip)
  return el("span", { class: "hr", title: W().hrMarkLong(scopes) },
    el("span", { "aria-hidden": "true" }, W().hrMark), el("span", { class: "visually-hidden" }, W().hrMarkLong(scopes)));
}

// ---- building blocks ------------------------------------------------------------------------------

const day = (r) => formatDate(whenOf(r), lang, false);
const dayTime = (v) => formatDate(v, lang, true);

function card(kind, title, metaParts, ...body) {
  return el("article", { class: "card k-" + kind },
    el("h3", {}, el("span", { class: "kind" }, W().kind[kind]), " ", title || "—"),
    el("p", { class: "meta" }, metaParts.filter(Boolean).join(" · ")),
    ...body);
}
const line = (label, value) => (value ? el("p", { class: "line" }, el("span", { class: "lbl" }, label + W().colon), value) : null);
const badge = (txt, cls) => (txt ? el("span", { class: "badge " + (cls || "") }, txt) : null);
const empty = () => el("p", { class: "empty" }, W().none);
const sortNewest = (list) => [...list].sort((a, b) => whenOf(b).localeCompare(whenOf(a)));

function attachmentLinks(attachments) {
  const out = [];
  for (const a of attachments || []) {
    if (!a) continue;
    const ct = (a.contentType || "").split(";")[0];
    if (a.data && ct.startsWith("text/")) {
      out.push(el("p", { class: "doc-text" }, decodeText(a.data)));
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

function renderVisits() {
  const w = W();
  return sortNewest(state.Encounter).map((e) => {
    const cls = word(w.encClass, (e.class || {}).code) || text((e.type || [])[0]);
    const end = e.period && e.period.end;
    return card("visit", cls, [day(e), institution(e), word(w.encStatus, e.status)],
      line(w.ward, (e.location || []).map((l) => (l.location || {}).display).filter(Boolean).join(W().sep)),
      line(w.reason, (e.reasonCode || []).map(text).filter(Boolean).join(W().sep) || (e.diagnosis || []).map((d) => (d.condition || {}).display).filter(Boolean).join(W().sep)),
      line(w.doctor, (e.participant || []).map((p) => (p.individual || {}).display).filter(Boolean).join(W().sep)),
      end ? line(w.to, dayTime(end)) : null);
  });
}

function renderDiagnoses() {
  const w = W();
  return sortNewest(state.Condition).map((c) => card("diagnosis", text(c.code),
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
  return [q && `${q.value ?? ""} ${q.unit || ""}`.trim(), d.route && text(d.route), d.timing && d.timing.code && text(d.timing.code)]
    .filter(Boolean).join(" ");
}
function renderMeds() {
  const w = W();
  return sortNewest(state.meds_all).map((m) => card("med", medName(m),
    [day(m), institution(m), word(w.medKind, m.resourceType), word(w.medStatus, m.status)],
    line(w.dose, dosage(m)),
    line(w.quantity, m.quantity ? `${m.quantity.value ?? ""} ${m.quantity.unit || ""}`.trim() : ""),
    line(w.reason, (m.reasonCode || []).map(text).filter(Boolean).join(W().sep))));
}

function renderImmunisations() {
  const w = W();
  return sortNewest(state.Immunization).map((i) => {
    const dose = (i.protocolApplied || [])[0] || {};
    const n = dose.doseNumberPositiveInt || dose.doseNumberString;
    return card("immunisation", text(i.vaccineCode),
      [day(i), institution(i), word(w.immStatus, i.status)],
      n ? el("p", {}, badge(w.doseNo(n))) : null,
      line(w.amount, i.doseQuantity ? `${i.doseQuantity.value ?? ""} ${i.doseQuantity.unit || i.doseQuantity.code || ""}`.trim() : ""),
      line(w.route, text(i.route)), line(w.site, text(i.site)), line(w.lot, i.lotNumber),
      line(w.reaction, (i.reaction || []).map((x) => (x.detail || {}).display).filter(Boolean).join(W().sep)));
  });
}

function renderAllergies() {
  const w = W();
  return sortNewest(state.AllergyIntolerance).map((a) => {
    const crit = a.criticality;
    return card("allergy", text(a.code),
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
    return card("appointment", title, [dayTime(a.start), institution(a), word(w.apptStatus, a.status)],
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
    const to = (sr.performer || []).map((p) => p.display).filter(Boolean).join(W().sep);
    return card("referral", text(sr.code) || w.kind.referral,
      [day(sr), institution(sr), word(w.refStatus, sr.status)],
      line(w.referTo, to), line(w.reason, (sr.reasonCode || []).map(text).filter(Boolean).join(W().sep)),
      ...sortNewest(tasks).map((t) => line(w.progress,
        `${word(w.taskStatus, t.status)}${t.businessStatus ? "（" + text(t.businessStatus) + "）" : ""} ${dayTime(t.lastModified || t.authoredOn)}`)));
  });
}

function renderDocuments() {
  return sortNewest(state.DocumentReference).map((d) => card("document", text(d.type) || d.description,
    [day(d), institution(d)], ...attachmentLinks((d.content || []).map((c) => c.attachment))));
}

function resultRow(o) {
  const w = W();
  const ab = abnormality(o);
  const rg = range(o);
  return el("tr", { class: ab ? "abn " + ab.cls : "" },
    el("th", { scope: "row" }, text(o.code), hrMark(o), rg ? el("small", { class: "range" }, `${w.range} ${rg}`) : null),
    el("td", { class: "v" }, el("span", { class: "num" }, valueOf(o)), ab ? el("span", { class: "flag" }, ab.label) : null));
}

/** Lab results by day and institution: one table each, abnormal rows first named by words. */
function labGroups() {
  const groups = new Map();
  for (const o of state.labs) {
    const k = whenOf(o).slice(0, 10) + "|" + institution(o);
    if (!groups.has(k)) groups.set(k, { when: whenOf(o), inst: institution(o), obs: [] });
    groups.get(k).obs.push(o);
  }
  return [...groups.values()].sort((a, b) => b.when.localeCompare(a.when));
}
const labReportsOf = (g) => state.labReports.filter((r) => whenOf(r).slice(0, 10) === g.when.slice(0, 10) && institution(r) === g.inst);
function renderResults() {
  const w = W();
  return labGroups().map((g) => {
    const reports = labReportsOf(g);
    const abn = g.obs.filter(abnormality).length;
    return el("article", { class: "card k-result" },
      el("h3", {}, el("span", { class: "kind" }, w.kind.result), " ", formatDate(g.when, lang, false)),
      el("p", { class: "meta" }, [g.inst || w.unknownInst, reports.map((r) => text(r.code)).join(W().sep),
        w.resultsCount(g.obs.length)].filter(Boolean).join(" · "), " ", reports.map(hrMark)[0] || null,
        abn ? el("strong", { class: "abn-count" }, " " + w.abnormalCount(abn)) : null),
      el("table", {}, el("tbody", {}, ...g.obs.map(resultRow))));
  });
}

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
  const summary = pts.map((p) => `${formatDate(p.day, lang, false)} ${p.v}`).join("; ");
  const s = svg("svg", { viewBox: `0 0 ${Wd} ${H}`, role: "img", "aria-label": `${series.name}: ${summary}` });
  if (lo !== undefined && hi !== undefined) {
    s.append(svg("rect", { x: P, y: Y(hi), width: Wd - 2 * P, height: Math.max(1, Y(lo) - Y(hi)), class: "band" }));
  }
  s.append(svg("polyline", { points: pts.map((p) => `${X(p.t)},${Y(p.v)}`).join(" "), fill: "none", class: "trend",
    "stroke-width": 2 }));
  for (const p of pts) {
    const c = svg("circle", { cx: X(p.t), cy: Y(p.v), r: 4, class: p.abn ? "dot abn" : "dot" });
    const title = svg("title"); title.textContent = `${p.day}: ${p.v} ${series.unit}`; c.append(title);
    s.append(c);
    const lab = svg("text", { x: X(p.t), y: Y(p.v) - 8, "text-anchor": "middle", "font-size": 11 });
    lab.textContent = String(p.v) + (p.abn ? (p.abn.cls === "low" ? "↓" : "↑") : ""); s.append(lab);
  }
  for (const [i, p] of [pts[0], pts[pts.length - 1]].entries()) {
    const t = svg("text", { x: X(p.t), y: H - 8, "text-anchor": i ? "end" : "start", "font-size": 11, class: "axis" });
    t.textContent = p.day; s.append(t);
  }
  return el("article", { class: "card chart", "data-code": series.key },
    el("h3", {}, series.name, " ", el("small", {}, series.unit)), s);
}

function renderTrends() {
  const groups = new Map();
  for (const o of state.labs) {
    if (!o.valueQuantity || typeof o.valueQuantity.value !== "number") continue;
    const key = codeKey(o.code) + "|" + (o.valueQuantity.unit || o.valueQuantity.code || "");
    const t = Date.parse(whenOf(o));
    if (Number.isNaN(t)) continue;
    if (!groups.has(key)) groups.set(key, { key, name: text(o.code), unit: o.valueQuantity.unit || "", points: [] });
    const g = groups.get(key);
    g.points.push({ t, v: o.valueQuantity.value, day: whenOf(o).slice(0, 10), abn: abnormality(o) });
    const rr = (o.referenceRange || [])[0];
    if (rr && rr.low && rr.high && g.low === undefined) { g.low = rr.low.value; g.high = rr.high.value; }
  }
  const series = [...groups.values()].filter((g) => g.points.length >= 2);
  series.forEach((g) => g.points.sort((a, b) => a.t - b.t));
  return series.length ? series.map(chart) : [el("p", { class: "empty" }, W().noTrends)];
}

function renderImaging() {
  const w = W();
  const cards = state.imagingReports.map((r) => {
    const obs = (r.result || []).map((x) => state.obsById[x.reference]).filter(Boolean);
    const texts = (r.presentedForm || []).filter((a) => (a.contentType || "").startsWith("text/"));
    return { when: whenOf(r), node: card("imaging", text(r.code), [day(r), institution(r)], hrMark(r),
      ...obs.map((o) => line(text(o.code) || w.imagingFindings, valueOf(o))),
      obs.length ? null : texts.map((a) => el("p", { class: "doc-text" }, decodeText(a.data))),
      obs.some((o) => valueOf(o).trim() === (r.conclusion || "").trim()) ? null : line(w.imagingConclusion, r.conclusion),
      ...(r.conclusionCode || []).map((c) => el("p", {}, text(c)))) };
  });
  const reported = new Set(state.imagingReports.flatMap((r) => (r.imagingStudy || []).map((x) => x.reference)));
  for (const s of state.ImagingStudy) {
    if (reported.has("ImagingStudy/" + s.id)) continue;
    if (state.imagingReports.some((r) => whenOf(r).slice(0, 16) === (s.started || "").slice(0, 16))) continue;
    cards.push({ when: s.started || "", node: card("imaging", s.description || (s.procedureCode || []).map(text)[0],
      [day(s), institution(s)], line(w.modality, (s.modality || []).map((m) => m.code).join(W().sep))) });
  }
  return cards.sort((a, b) => b.when.localeCompare(a.when)).map((c) => c.node);
}

/** One line per event of the timeline; lab results are one entry per day and institution. */
function renderTimeline() {
  const w = W();
  const items = [];
  const add = (kind, when, title, inst, extra, tab, mark) => items.push({ kind, when, title, inst, extra, tab, mark });
  for (const e of state.Encounter) add("visit", whenOf(e), word(w.encClass, (e.class || {}).code), institution(e), (e.reasonCode || []).map(text).join(W().sep), "visits");
  for (const c of state.Condition) add("diagnosis", whenOf(c), text(c.code), institution(c), "", "diagnoses");
  for (const m of state.meds_all) add("med", whenOf(m), medName(m), institution(m), dosage(m), "meds");
  for (const i of state.Immunization) add("immunisation", whenOf(i), text(i.vaccineCode), institution(i), "", "immunisations");
  for (const a of state.AllergyIntolerance) add("allergy", whenOf(a), text(a.code), institution(a), word(w.allergyCrit, a.criticality), "allergies");
  for (const a of state.Appointment) add("appointment", a.start || "", apptTitle(a), institution(a), word(w.apptStatus, a.status), "appointments");
  for (const r of state.referrals) add("referral", whenOf(r), text(r.code), institution(r), word(w.refStatus, r.status), "referrals");
  for (const d of state.DocumentReference) add("document", whenOf(d), text(d.type), institution(d), "", "documents");
  for (const r of state.imagingReports) add("imaging", whenOf(r), text(r.code), institution(r), r.conclusion || "", "imaging", hrMark(r));
  for (const g of labGroups()) {
    const abn = g.obs.filter(abnormality);
    const names = [...new Set(labReportsOf(g).map((r) => text(r.code)).filter(Boolean))];
    add("result", g.when, [names.join(W().sep), w.resultsCount(g.obs.length)].filter(Boolean).join(" · "), g.inst,
      abn.length ? w.abnormalCount(abn.length) + w.colon + abn.map((o) => `${text(o.code)} ${abnormality(o).label}`).join(W().sep) : "", "results",
      labReportsOf(g).concat(g.obs).map(hrMark).find(Boolean));
  }
  // newest first; records without a date (an allergy noted once) come last, under their own heading
  items.sort((a, b) => (b.when || "").localeCompare(a.when || ""));
  const byDay = new Map();
  for (const it of items) {
    const d = (it.when || "").slice(0, 10);
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

// ---- who looked at my record ---------------------------------------------------------------------------

function whoName(e) {
  const w = W();
  if (["resident", "other-resident", "unauthenticated"].includes(e.role)) return w.who_role[e.role];
  return e.who_name || e.who || w.who_role.unauthenticated;
}

/** Consecutive accesses by the same requestor doing the same thing within a minute are one line:
 * the page's own first load is a dozen searches, which is one look. */
function groupWho(entries) {
  const out = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last && last.who === e.who && last.role === e.role && last.what === e.what && last.outcome === e.outcome &&
        last.via_app === e.via_app && Math.abs(Date.parse(last.first) - Date.parse(e.when)) < 60000) {
      last.count += 1; e.resource_types.forEach((t) => last.types.add(t)); last.first = e.when;
    } else out.push({ ...e, types: new Set(e.resource_types), count: 1, first: e.when });
  }
  return out;
}

function renderWho() {
  const w = W();
  const hideOwn = $("who-hide-own") ? $("who-hide-own").checked : true;
  const entries = state.audit.filter((e) => !(hideOwn && e.role === "resident"));
  const box = el("label", { class: "check" }, el("input", { type: "checkbox", id: "who-hide-own", checked: hideOwn ? "" : null }), " ", w.who_hideOwn);
  box.querySelector("input").addEventListener("change", () => renderSection("who"));
  const again = el("button", { type: "button", id: "who-refresh" }, w.refresh);
  again.addEventListener("click", async () => {
    say("loading");
    const who = await fhir(cfg.who, state.session).catch((e) => { status(e.message, true); return null; });
    if (who) { state.audit = who.entries || []; renderSection("who"); say("loaded"); $("who-h").focus(); }
  });
  const groups = groupWho(entries);
  const rows = groups.map((g) => {
    // the kinds of record touched, in words; the technical ones (organisations, provenance) left out
    const named = [...g.types].filter((t) => w.types[t]).map((t) => w.types[t]);
    const types = named.slice(0, 5);
    const role = w.who_role[g.role] || g.role;
    const name = whoName(g);
    const actor = name === role ? name : `${name}${w.paren(role)}`;
    const appName = g.via_app && g.via_app !== g.who ? w.who_via(g.via_app_name || g.via_app) : "";
    // a refused access is an attempt: "tried to view", not "viewed"
    const verb = (g.outcome === "refused" && w.who_tried[g.what]) || w.who_what[g.what] || g.what;
    const obj = types.length ? types.join(w.sep) + (named.length > 5 ? w.andMore : "") : w.who_types_all;
    const sentence = g.what === "sign-in" && g.role === "unauthenticated" ? w.who_signin_attempt
      : g.what === "login-phone" ? `${actor}${w.who_phone}`
      : lang === "en" ? `${actor}${appName} ${verb} ${w.who_your} ${obj}`
        : `${actor}${appName}${verb}您的${obj}`;
    return el("li", { class: g.outcome !== "success" ? "who-row refused" : "who-row" },
      el("p", { class: "who-when" }, dayTime(g.when), g.count > 1 ? " · " + w.who_times(g.count) : ""),
      el("p", { class: "who-what" }, sentence,
        g.outcome !== "success" ? el("strong", { class: "who-outcome" }, " — " + (g.outcome === "refused" ? w.who_outcome_refused : w.who_outcome_failed)) : null));
  });
  return [el("p", { class: "intro" }, w.who_intro), el("div", { class: "who-tools" }, box, again),
    rows.length ? el("ol", { class: "who" }, ...rows) : el("p", { class: "empty" }, w.who_none)];
}

// ---- page ----------------------------------------------------------------------------------------------

const SECTIONS = {
  timeline: renderTimeline, visits: renderVisits, diagnoses: renderDiagnoses, meds: renderMeds,
  immunisations: renderImmunisations, allergies: renderAllergies, appointments: renderAppointments,
  referrals: renderReferrals, documents: renderDocuments, results: renderResults, trends: renderTrends,
  imaging: renderImaging, who: renderWho,
};
const COUNTS = {
  visits: () => state.Encounter.length, diagnoses: () => state.Condition.length, meds: () => state.meds_all.length,
  immunisations: () => state.Immunization.length, allergies: () => state.AllergyIntolerance.length,
  appointments: () => state.Appointment.length, referrals: () => state.referrals.length,
  documents: () => state.DocumentReference.length, results: () => state.labs.length,
};
// sections of one card per record count their cards; results count the values, not the days
const COUNTED_BY_CARDS = new Set(["imaging"]);

function renderSection(name) {
  const w = W();
  const sec = $(name);
  const body = SECTIONS[name]();
  const count = COUNTS[name] ? COUNTS[name]() : COUNTED_BY_CARDS.has(name) ? body.length : null;
  sec.toggleAttribute("data-empty", !(Array.isArray(body) && body.length));
  // no gestures needed: a plain button at the end of every section goes back to the section list
  const back = el("button", { type: "button", class: "back" }, "↑ " + w.backToSections);
  back.addEventListener("click", () => { const t = $("tabs"); t.scrollIntoView({ block: "start" });
    const b = t.querySelector(`[data-tab="${name}"]`); if (b) b.focus(); });
  sec.replaceChildren(el("h2", { id: name + "-h", tabindex: "-1" }, w["h_" + name],
    count !== null ? el("small", {}, " " + w.records(count)) : null),
  ...(Array.isArray(body) && body.length ? body : [empty()]), back);
}

function renderBanner() {
  const w = W();
  const p = state.patient || {};
  const n = (p.name || [])[0];
  const name = n ? (n.text || [n.family, ...(n.given || [])].filter(Boolean).join("")) : "";
  const born = p.birthDate ? formatDate(p.birthDate, lang, false) : "";
  let age = "";
  if (p.birthDate) {
    const b = new Date(p.birthDate + "T00:00:00"), now = new Date();
    let a = now.getFullYear() - b.getFullYear();
    if (now.getMonth() < b.getMonth() || (now.getMonth() === b.getMonth() && now.getDate() < b.getDate())) a -= 1;
    if (a >= 0 && a < 150) age = w.age(a);
  }
  const insts = [...new Set(Object.values(state.patientInst).filter(Boolean))];
  $("banner").replaceChildren(
    el("p", { class: "who-am-i" }, el("strong", { id: "name" }, name || "—"), " ",
      ...[word(w.sex, p.gender), age, born && `${w.born} ${born}`].filter(Boolean)
        .flatMap((x, i) => [i ? " · " : "", el("span", { class: "nobr" }, x)])),
    insts.length ? el("p", { class: "insts" }, w.institutions(insts)) : null,
    allergyLine());
  $("banner").hidden = false;
}

/** Allergies still in force, at the top: what a resident most needs to tell any doctor. */
function allergyLine() {
  const w = W();
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
    let url = "Patient/" + encodeURIComponent(pid) + "/$everything?_count=500";
    for (let page = 0; url && page < 50; page++) {
      const b = await fhir(url, s);
      if (!b) break;
      for (const e of b.entry || []) {
        const r = e.resource; if (!r) continue;
        const key = r.resourceType + "/" + r.id;
        if (!seen.has(key)) { seen.add(key); entries.push({ fullUrl: e.fullUrl || cfg.fhir + "/" + key, resource: r }); }
      }
      const next = (b.link || []).find((l) => l.relation === "next");
      url = next ? next.url : null;
    }
  }
  const bundle = { resourceType: "Bundle", type: "collection", timestamp: new Date().toISOString(), total: entries.length, entry: entries };
  saveBlob(new Blob([JSON.stringify(bundle, null, 2)], { type: "application/fhir+json" }),
    `health-record-${new Date().toISOString().slice(0, 10)}.json`);
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
  const [patient, patients, obs, reps, ...rest] = await Promise.all([
    fhir("Patient/" + encodeURIComponent(s.patient), s),
    searchAll("Patient?_count=100", s),
    searchAll("Observation?_count=200&_sort=-date&_include=Observation:performer", s),
    searchAll("DiagnosticReport?_count=100&_sort=-date&_include=DiagnosticReport:performer", s),
    ...types.map((t) => searchAll(t + "?_count=200" + (MED_INCLUDES.has(t) ? `&_include=${t}:medication` : ""), s)),
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
  state.meds = {};
  for (const r of rest) for (const [k, v] of Object.entries(r.included)) if (k.startsWith("Medication/")) state.meds[k] = v;
  state.meds_all = [...state.MedicationRequest, ...state.MedicationDispense, ...state.MedicationStatement, ...state.MedicationAdministration];
  state.referrals = state.ServiceRequest.filter(isReferral);
  const isImaging = (r) => (r.imagingStudy || []).length || (r.category || []).some((c) => (c.coding || []).some((x) =>
    ["RAD", "imaging", "CT", "MR", "US", "DX", "CR", "NM", "PT", "XA", "RX", "394914008"].includes(x.code)));
  state.imagingReports = reps.resources.filter(isImaging);
  state.labReports = reps.resources.filter((r) => !isImaging(r));
  state.obsById = Object.fromEntries(obs.resources.map((o) => ["Observation/" + o.id, o]));
  const imagingObs = new Set(state.imagingReports.flatMap((r) => (r.result || []).map((x) => x.reference)));
  state.labs = obs.resources.filter((o) => !imagingObs.has("Observation/" + o.id) &&
    !(o.category || []).some((c) => codes(c).includes("imaging")));
  // who looked: the server words the audit trail's accesses to this person's records, newest first
  const who = await fhir(cfg.who, s);
  state.audit = (who && who.entries) || [];
  state.loaded = true;
  renderAll();
  $("tools").hidden = false;
  $("tabs").hidden = false;
  showTab(state.tab);
  say("loaded");
  document.body.dataset.ready = "1";
}

async function main() {
  setBig(prefs.getItem("me.big") === "1");
  applyWords();
  $("login").addEventListener("click", () => signIn().catch((e) => status(e.message, true)));
  $("signout").addEventListener("click", () => { store.clear(); location.assign(cfg.redirect); });
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
      history.replaceState(null, "", cfg.redirect);
      throw new Error(params.get("error_description") || params.get("error"));
    }
    if (params.get("code")) await finishSignIn(params);
    const s = session();
    if (s) {
      $("export").addEventListener("click", () => exportEverything(s).catch((e) => status(e.message, true)));
      await load(s);
    } else $("signin").hidden = false;
  } catch (e) {
    $("signin").hidden = false;
    status(e.message, true);
    document.body.dataset.ready = "error";
  }
}
main();
