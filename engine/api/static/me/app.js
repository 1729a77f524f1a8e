// /ui/me — the resident's page. A public SMART app: PKCE S256 standalone launch, then FHIR reads
// with the resident's token. Every value from the server is inserted as text (never as HTML).
"use strict";

const cfg = document.getElementById("config").dataset;
const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
function status(text, isError) { const s = $("status"); s.textContent = text || ""; s.className = isError ? "error" : ""; }

// ---- SMART standalone launch -----------------------------------------------------------------

function b64url(bytes) {
  let s = ""; for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function random(n) { const a = new Uint8Array(n); crypto.getRandomValues(a); return b64url(a); }

async function signIn() {
  const verifier = random(48), state = random(16);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  store.setItem("pkce", JSON.stringify({ verifier, state }));
  const q = new URLSearchParams({
    response_type: "code", client_id: cfg.client, redirect_uri: cfg.redirect, state, aud: cfg.fhir,
    scope: "launch/patient openid fhirUser patient/*.rs", code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(cfg.authorize + "?" + q.toString());
}

async function finishSignIn(params) {
  const saved = JSON.parse(store.getItem("pkce") || "null");
  store.removeItem("pkce");
  history.replaceState(null, "", cfg.redirect);  // drop the code from the address bar
  if (!saved || params.get("state") !== saved.state) throw new Error("登录状态不符，请重新登录 (state mismatch)");
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

async function fhir(url, s) {
  const r = await fetch(url.startsWith("http") ? url : cfg.fhir + "/" + url,
    { headers: { Authorization: "Bearer " + s.token, Accept: "application/fhir+json" } });
  if (r.status === 401) { store.removeItem("session"); throw new Error("登录已过期，请重新登录 (session expired)"); }
  if (!r.ok) return null;
  return r.json();
}

async function searchAll(query, s, maxPages = 10) {
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

// ---- presentation helpers ----------------------------------------------------------------------

const text = (cc) => (cc && (cc.text || (cc.coding || []).map((c) => c.display || c.code).find(Boolean))) || "?";
const codeKey = (cc) => { const c = (cc && cc.coding || [])[0]; return c ? (c.system || "") + "|" + c.code : text(cc); };
const whenOf = (r) => r.effectiveDateTime || (r.effectivePeriod && r.effectivePeriod.start) || r.issued || "";
function institution(r, orgs) {
  const ref = (r.performer || []).find((p) => (p.reference || "").startsWith("Organization/")) || (r.performer || [])[0];
  if (!ref) return "未知机构 Unknown";
  const org = ref.reference && orgs[ref.reference];
  return (org && org.name) || ref.display || ref.reference;
}
function valueOf(o) {
  if (o.valueQuantity) return `${o.valueQuantity.value} ${o.valueQuantity.unit || o.valueQuantity.code || ""}`.trim();
  if (o.valueString) return o.valueString;
  if (o.valueCodeableConcept) return text(o.valueCodeableConcept);
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.valueBoolean !== undefined) return String(o.valueBoolean);
  return o.dataAbsentReason ? text(o.dataAbsentReason) : "";
}
const flag = (o) => { const c = ((o.interpretation || [])[0] || {}).coding; return c && c[0] ? c[0].code : ""; };
function range(o) {
  const r = (o.referenceRange || [])[0];
  if (!r) return "";
  if (r.text) return r.text;
  const lo = r.low ? r.low.value : "", hi = r.high ? r.high.value : "";
  return lo !== "" || hi !== "" ? `${lo}–${hi}` : "";
}

function renderBanner(p) {
  const b = $("banner");
  const name = p && p.name && p.name[0] ? (p.name[0].text || [p.name[0].family, ...(p.name[0].given || [])].join("")) : "";
  b.replaceChildren(el("strong", {}, name || "—"), " ",
    el("small", {}, [p && p.gender, p && p.birthDate].filter(Boolean).join(" · ")));
  b.hidden = false;
}

function renderResults(obs, orgs) {
  const byDay = new Map();
  for (const o of obs) {
    const day = whenOf(o).slice(0, 10) || "—";
    const inst = institution(o, orgs);
    if (!byDay.has(day)) byDay.set(day, new Map());
    const m = byDay.get(day);
    if (!m.has(inst)) m.set(inst, []);
    m.get(inst).push(o);
  }
  const days = [...byDay.keys()].sort().reverse();
  const row = (o) => el("tr", {},
    el("td", {}, text(o.code), range(o) ? el("br") : null, range(o) ? el("small", {}, "参考 " + range(o)) : null),
    el("td", { class: "v " + flag(o) }, valueOf(o), flag(o) ? " " + flag(o) : ""));
  const block = ([inst, list]) => el("div", { class: "inst" }, el("h3", {}, inst), el("table", {}, ...list.map(row)));
  const root = $("results");
  root.replaceChildren(...days.map((day) => el("article", { class: "day" }, el("h2", {}, day), ...[...byDay.get(day)].map(block))));
  if (!days.length) root.replaceChildren(el("p", {}, "暂无检验结果 · No results yet"));
}

function chart(series) {
  const W = 320, H = 140, P = 28;
  const pts = series.points;
  const xs = pts.map((p) => p.t), ys = pts.map((p) => p.v);
  const lo = series.low, hi = series.high;
  let y0 = Math.min(...ys, lo ?? Infinity), y1 = Math.max(...ys, hi ?? -Infinity);
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const X = (t) => P + (x1 === x0 ? (W - 2 * P) / 2 : ((t - x0) / (x1 - x0)) * (W - 2 * P));
  const Y = (v) => H - P - ((v - y0) / (y1 - y0)) * (H - 2 * P);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": series.name });
  if (lo !== undefined && hi !== undefined) {
    s.append(svg("rect", { x: P, y: Y(hi), width: W - 2 * P, height: Math.max(1, Y(lo) - Y(hi)), fill: "#e3f2e6" }));
  }
  s.append(svg("polyline", { points: pts.map((p) => `${X(p.t)},${Y(p.v)}`).join(" "), fill: "none",
    stroke: "#0b6bcb", "stroke-width": 2 }));
  for (const p of pts) {
    const c = svg("circle", { cx: X(p.t), cy: Y(p.v), r: 3.5, fill: "#0b6bcb" });
    const title = svg("title"); title.textContent = `${p.day}: ${p.v} ${series.unit}`; c.append(title);
    s.append(c);
    const lab = svg("text", { x: X(p.t), y: Y(p.v) - 7, "text-anchor": "middle", "font-size": 10 });
    lab.textContent = String(p.v); s.append(lab);
  }
  for (const [i, p] of [pts[0], pts[pts.length - 1]].entries()) {
    const t = svg("text", { x: X(p.t), y: H - 8, "text-anchor": i ? "end" : "start", "font-size": 10, fill: "#52606d" });
    t.textContent = p.day; s.append(t);
  }
  return el("div", { class: "chart", "data-code": series.key }, el("h3", {}, series.name, " ", el("small", {}, series.unit)), s);
}

function renderTrends(obs) {
  const groups = new Map();
  for (const o of obs) {
    if (!o.valueQuantity || typeof o.valueQuantity.value !== "number") continue;
    const key = codeKey(o.code) + "|" + (o.valueQuantity.unit || o.valueQuantity.code || "");
    const t = Date.parse(whenOf(o));
    if (Number.isNaN(t)) continue;
    if (!groups.has(key)) groups.set(key, { key, name: text(o.code), unit: o.valueQuantity.unit || "", points: [] });
    const g = groups.get(key);
    g.points.push({ t, v: o.valueQuantity.value, day: whenOf(o).slice(0, 10) });
    const rr = (o.referenceRange || [])[0];
    if (rr && rr.low && rr.high && g.low === undefined) { g.low = rr.low.value; g.high = rr.high.value; }
  }
  const series = [...groups.values()].filter((g) => g.points.length >= 2);
  series.forEach((g) => g.points.sort((a, b) => a.t - b.t));
  $("trends").replaceChildren(...(series.length ? series.map(chart)
    : [el("p", {}, "同一项目有两次以上结果时显示趋势 · Trends appear once a test has two results")]));
}

function renderImaging(reports, orgs) {
  const imaging = reports.filter((r) => (r.imagingStudy || []).length ||
    (r.category || []).some((c) => (c.coding || []).some((x) => ["RAD", "imaging", "CT", "MR", "US", "DX"].includes(x.code))));
  imaging.sort((a, b) => whenOf(b).localeCompare(whenOf(a)));
  $("imaging").replaceChildren(...(imaging.length ? imaging.map((r) => el("article", { class: "report" },
    el("h3", {}, text(r.code)), el("small", {}, `${whenOf(r).slice(0, 10)} · ${institution(r, orgs)}`),
    r.conclusion ? el("p", {}, r.conclusion) : null,
    ...(r.conclusionCode || []).map((c) => el("p", {}, text(c)))))
    : [el("p", {}, "暂无影像报告 · No imaging reports yet")]));
}

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== name;
}

async function load(s) {
  $("signin").hidden = true; $("signout").hidden = false;
  status("正在加载… Loading…");
  const [patient, obs, reps] = await Promise.all([
    fhir("Patient/" + encodeURIComponent(s.patient), s),
    searchAll("Observation?_count=200&_sort=-date&_include=Observation:performer", s),
    searchAll("DiagnosticReport?_count=100&_sort=-date&_include=DiagnosticReport:performer", s),
  ]);
  const orgs = { ...obs.included, ...reps.included };
  renderBanner(patient);
  renderResults(obs.resources, orgs);
  renderTrends(obs.resources);
  renderImaging(reps.resources, orgs);
  $("tabs").hidden = false;
  showTab("results");
  status("");
  document.body.dataset.ready = "1";
}

async function main() {
  $("login").addEventListener("click", () => signIn().catch((e) => status(e.message, true)));
  $("signout").addEventListener("click", () => { store.clear(); location.assign(cfg.redirect); });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  const params = new URLSearchParams(location.search);
  try {
    if (params.get("error")) {
      history.replaceState(null, "", cfg.redirect);
      throw new Error(params.get("error_description") || params.get("error"));
    }
    if (params.get("code")) await finishSignIn(params);
    const s = session();
    if (s) await load(s);
    else $("signin").hidden = false;
  } catch (e) {
    $("signin").hidden = false;
    status(e.message, true);
    document.body.dataset.ready = "error";
  }
}
main();
