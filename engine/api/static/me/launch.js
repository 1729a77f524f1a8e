// /ui/me — signing in and reading FHIR: the SMART standalone launch (PKCE S256, public client)
// and paged searches with the resident's token. Loaded before app.js, whose globals (cfg, store,
// W) it uses when called.
"use strict";

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
  // a dropped connection is said in the page's words (the browser's own is English: "Failed to fetch")
  const r = await fetch(cfg.token, { method: "POST", body, cache: "no-store",
    headers: { "Content-Type": "application/x-www-form-urlencoded" } }).catch(() => { throw new Error(W().signinFailed); });
  const t = await r.json().catch(() => ({}));
  // the token endpoint's words are for developers, in English: the resident is told in theirs
  if (!r.ok) throw new Error(W().signinFailed);
  const s = { token: t.access_token, patient: t.patient, exp: Date.now() + t.expires_in * 1000 };
  // a family member signed in on someone's behalf: who they are there (their RelatedPerson)
  // not stored when this fails: the token just issued is revoked rather than left to its expiry
  s.acting = await whoIsActing(s).catch((e) => { revokeLater(s.token); throw e; });
  // signed in again on this page (as someone else, or for someone else): the earlier token is
  // revoked, not left working for the rest of its 15 minutes held by no one. Other devices' sign-ins
  // are not touched: signing in here ends only what this page held.
  const earlier = JSON.parse(store.getItem("session") || "null");
  store.setItem("session", JSON.stringify(s));
  if (earlier && earlier.token && earlier.token !== s.token) revokeLater(earlier.token);
}

/** Signing out on a shared phone: the records leave the screen and the page goes back to its sign-in
 * at once, whatever the network does. The access token is dropped from the page's storage first and
 * revoked on the server (RFC 7009) by a request the page does not wait for: `sendBeacon` (or a
 * `keepalive` fetch where a beacon cannot be queued), which the browser delivers after the page is
 * gone. Awaiting the revocation had left the records shown for as long as the server took to answer
 * -- forever when it did not. A revocation that never arrives leaves the token working until it
 * expires (its `expires_in`: 15 minutes for this page, `HUREN_ME_TOKEN_TTL_SECONDS`; it had been the
 * hour of every app), held by no one on this phone: it is in no storage. */
let signingOut = false;
function signOut() {
  const s = JSON.parse(store.getItem("session") || "null");
  store.clear();
  signingOut = true;  // a read still on its way draws nothing (load() checks)
  forgetShown();
  if (s && s.token) revokeLater(s.token);
  location.replace(cfg.redirect);  // the signed-in page's history entry is not kept to go back to
}

/** The record off the screen: every section emptied and hidden, the sign-in shown. */
function forgetShown() {
  state.loaded = false;  // nothing to draw again (a language or text-size tap redraws what is loaded)
  for (const node of document.querySelectorAll("#banner, #tools, #tabs, main section.tab")) node.hidden = true;
  for (const node of document.querySelectorAll("#banner, main section.tab, #printed")) node.replaceChildren();
  status("");  // app.js: the message line emptied, and no message to say again in another language
  document.getElementById("signout").hidden = true;
  document.getElementById("signin").hidden = false;
}

/** The token no longer opens anything (401: its 15 minutes from sign-in are up -- an absolute limit,
 * not renewed by use, and the page has no refresh token -- or it was revoked; or a family grant
 * ended): the session forgotten and, once the record is shown, the record taken off the screen with
 * the sign-in button shown, so "请重新登录" can be done where it is said. It had left the record on
 * the screen with no sign-in button, the resident to guess a reload. */
function sessionOver() {
  store.removeItem("session");
  if (state.loaded) forgetShown();
}

/** RFC 7009 revocation sent without waiting for it (see signOut). */
function revokeLater(token) {
  const body = new URLSearchParams({ token, token_type_hint: "access_token", client_id: cfg.client });
  let queued = false;
  try { queued = typeof navigator.sendBeacon === "function" && navigator.sendBeacon(cfg.revoke, body); }
  catch (e) { queued = false; }  // a beacon refused (too large, not allowed): the fetch below
  if (!queued) fetch(cfg.revoke, { method: "POST", cache: "no-store", keepalive: true, body }).catch(() => null);
}

function session() {
  const s = JSON.parse(store.getItem("session") || "null");
  return s && s.exp > Date.now() + 5000 ? s : null;
}

// ---- FHIR reads --------------------------------------------------------------------------------

class Expired extends Error {}
/** The server did not answer (it failed, 5xx, or the network did): what was asked is unknown, which
 * the page must say -- shown as "暂无记录" it read as "you have no allergies". */
class Unreadable extends Error {}
/** The server refused this read (403) for a reason other than a family grant's end: what was asked
 * is not shown, and the page says it was refused -- not "none", and not "the grant was withdrawn". */
class Refused extends Unreadable {}

const REFUSAL_SYSTEM = "urn:huren:family-refusal";
/** The reason a family member's access ended, as the server coded it (OperationOutcome
 * issue.details, ``engine.auth.policy.REFUSAL_SYSTEM``), or null for any other 403. */
async function familyRefusal(r) {
  const b = await r.json().catch(() => null);
  const issue = b && b.resourceType === "OperationOutcome" && (b.issue || [])[0];
  const coding = ((issue && issue.details) || {}).coding || [];
  const c = coding.find((x) => x && x.system === REFUSAL_SYSTEM && typeof x.code === "string");
  return c ? c.code : null;
}
/** An error whose words are said again when the language is switched (app.js `say`). */
function worded(error, words) { error.words = words; return error; }
/** A reason code in the page's words (an unknown code: the general one, never a guess). */
const endedWords = (code) => (Object.hasOwn(W().familyEnded, code) ? W().familyEnded[code] : W().familyEnded.ended) +
  W().familyEndedAfter;

/** One read with the resident's token. `cache: "no-store"`: the answers are the resident's records,
 * and the API's reads carry Last-Modified without Cache-Control, so the browser kept them in its
 * HTTP cache, where after signing out on a shared phone any page of this site could still read
 * them (`fetch(url, {cache: "only-if-cached"})`, no token needed). Numbers keep their digits
 * (hurenExact: 0.50 stays 0.50). */
async function fhir(url, s) {
  const r = await fetch(url.startsWith("http") || url.startsWith("/") ? url : cfg.fhir + "/" + url,
    { cache: "no-store", headers: { Authorization: "Bearer " + s.token, Accept: "application/fhir+json" } })
    .catch(() => { throw new Unreadable(W().unreadable); });
  if (r.status >= 500) throw new Unreadable(W().unreadable);
  if (r.status === 401) { sessionOver(); throw new Expired(W().sessionExpired); }
  if (r.status === 403) {
    // acting for a family member whose access ended: every request is refused, and the server says
    // why (withdrawn, expired, the record filed under another person, ...): said as it is. Any
    // other refusal ends nothing: that read is shown as refused (it had read "撤销或已过期" for all)
    const code = s.acting ? await familyRefusal(r) : null;
    if (code) { sessionOver(); throw worded(new Expired(endedWords(code)), () => endedWords(code)); }
    throw new Refused(W().refused);
  }
  if (!r.ok) return null;  // a type this server does not search (yet) is simply an empty section
  return window.hurenExact.parse(await r.text());
}

/** Every page of a search, to its end (ui18 stopped after 20 pages without a word: a resident with
 * more records saw part of them as if they were all). `failed` when the server did not answer the
 * first page (the section says so rather than "none"), `refused` when it refused the first page
 * (403). `partial` when some records were shown and the rest were not: a later page not answered
 * usefully -- any error, 403 or 404/410/429 alike (fam19's review: a 4xx there had ended the loop
 * as if the list were complete, and a 403 there said the whole section was refused while its first
 * pages were shown) --, a next link seen before, or fewer records than the first page's
 * `Bundle.total` (the server counts what this token may see). A first page answered 4xx other than
 * 401/403 is a type this server does not search: an empty section, as before. */
async function searchAll(query, s) {
  const out = { resources: [], included: {}, failed: false, refused: false, partial: false };
  const seen = new Set(), ids = new Set();
  let url = query, total = null;
  while (url) {
    if (seen.has(url)) { out.partial = true; break; }  // a server paging in a circle: stop, and say so
    const first = !seen.size;
    seen.add(url);
    let b;
    try { b = await fhir(url, s); }
    catch (e) {
      if (!(e instanceof Unreadable)) throw e;
      if (first) { out.failed = true; out.refused = e instanceof Refused; } else out.partial = true;
      break;
    }
    if (!b) { if (!first) out.partial = true; break; }
    if (first && Number.isInteger(b.total)) total = b.total;
    for (const e of b.entry || []) {
      const res = e.resource;
      if (!res) continue;
      const key = res.resourceType + "/" + res.id;
      if (e.search && e.search.mode === "include") out.included[key] = res;
      else if (!ids.has(key)) { ids.add(key); out.resources.push(res); }  // a record that moved pages: once
    }
    const next = (b.link || []).find((l) => l.relation === "next");
    url = next ? next.url : null;
  }
  if (total !== null && ids.size < total) out.partial = true;  // the pages ended short of the count
  return out;
}
