// /ui/me — family access (家人代查): who may see this record on the resident's behalf, and, for a
// family member signed in on someone's behalf, a banner saying whose record this is.
// The grants are FHIR Consent + RelatedPerson in the resident's own record (read with the same token
// as everything else); granting and withdrawing are the server's $family-grant / $family-withdraw.
"use strict";

// who the family member is to the resident (v3 RoleCode), in the order a person thinks of them
const RELATIONS = ["CHILD", "PRN", "SPS", "SIB", "GRNDCHILD", "GRPRN", "GUARD", "FAMMEMB"];

/** Who is signed in: the resident, or a family member acting for them (fhirUser is a RelatedPerson).
 * A server that does not answer (a dropped connection, a 5xx) or refuses (4xx) leaves that unknown, and
 * unknown is not "the resident": the sign-in stops with an error the person can retry (a new sign-in), rather than
 * opening the record without the banner saying whose it is, or as the page's "records could not
 * be read, refresh later" (a refresh only shows the sign-in again). */
async function whoIsActing(s) {
  const r = await fetch(cfg.userinfo, { cache: "no-store", headers: { Authorization: "Bearer " + s.token } }).catch(() => null);
  if (!r || r.status >= 500) throw new Error(W().signinUnanswered);
  // refused (401/403: the token just issued says nothing any more -- a family grant withdrawn or
  // ended while signing in) is a failed sign-in too, never "the resident himself": that had opened
  // an empty record without the banner and offered him the form to grant access to hers
  if (!r.ok) {  // a family grant that does not hold says why (its reason code), in the page's words
    const code = ((await r.json().catch(() => null)) || {}).reason;
    if (typeof code === "string") throw worded(new Error(W().signinEnded + endedWords(code)), () => W().signinEnded + endedWords(code));
    throw new Error(W().signinFailed);
  }
  const info = await r.json();
  const m = /\/RelatedPerson\/([^/]+)$/.exec(info.fhirUser || "");
  if (!m) return null;
  const rp = await fhir("RelatedPerson/" + encodeURIComponent(m[1]), s).catch((e) => {
    if (e instanceof Unreadable) throw new Error(W().signinUnanswered);
    throw e;
  });
  return rp || { id: m[1] };
}

async function loadFamily(s) {
  if (state.acting) { state.grants = []; return; }
  const b = await searchAll("Consent?_count=100&_include=Consent:actor", s);
  // not answered is not "no one may see your record": the caller says the list could not be read
  if (b.failed) throw new Unreadable(W().unreadable);
  const people = { ...b.included };
  for (const r of b.resources) if (r.resourceType === "RelatedPerson") people["RelatedPerson/" + r.id] = r;
  state.grants = b.resources.filter((c) => c.resourceType === "Consent").map((c) => {
    const actor = (((c.provision || {}).actor || [])[0] || {}).reference || {};
    return { consent: c, person: people[actor.reference] || null };
  }).filter((g) => g.person);
}

const personName = (rp) => ((rp && rp.name) || []).map((n) => n.text || [n.family, ...(n.given || [])].filter(Boolean).join(""))[0] || "";
const relationOf = (rp) => {
  const code = (((rp && rp.relationship) || [])[0] || {}).coding;
  return (code && code[0] && code[0].code) || "";
};

function grantState(c) {
  const end = ((c.provision || {}).period || {}).end;
  if (c.status !== "active") return "withdrawn";
  if (end && Date.parse(end) <= Date.now()) return "expired";
  return "active";
}

function actingBanner() {
  const w = W();
  if (!state.acting) return null;
  const p = state.patient || {};
  const n = (p.name || [])[0];
  const whose = n ? (n.text || [n.family, ...(n.given || [])].filter(Boolean).join("")) : "";
  const rel = word(w.relation, relationOf(state.acting));
  return el("p", { class: "acting", role: "note" }, el("strong", {}, w.acting_title(whose)), " ",
    w.acting_body(personName(state.acting), rel));
}

function renderFamily() {
  const w = W();
  if (state.acting) return [el("p", { class: "notice" }, w.family_proxyCannot)];
  const list = [...state.grants].sort((a, b) => (b.consent.dateTime || "").localeCompare(a.consent.dateTime || ""));
  const cards = list.map(({ consent, person }) => {
    const st = grantState(consent);
    const end = ((consent.provision || {}).period || {}).end;
    const rel = word(w.relation, relationOf(person));
    const byDesk = (consent.verification || []).some((v) => v.verified);
    const body = [
      el("p", {}, badge(w.family_state[st], st === "active" ? "ok" : "")),
      line(st === "active" ? w.family_until : w.family_ended, end ? formatDate(end, lang, false) : w.family_noEnd),
      line(w.family_since, formatDate(consent.dateTime, lang, false)),
      byDesk ? el("p", { class: "meta" }, w.family_byDesk) : null,
    ];
    if (st === "active") {
      const b = el("button", { type: "button", class: "withdraw" }, w.family_withdraw(personName(person)));
      b.addEventListener("click", () => b.replaceWith(confirmWithdraw(consent, person, b)));
      body.push(b);
    }
    return el("article", { class: "card k-family" + (st === "active" ? "" : " ended") },
      el("h3", {}, personName(person), rel ? el("span", { class: "rel" }, w.paren(rel)) : null), ...body);
  });
  return [el("p", { class: "intro" }, w.family_intro),
    ...(cards.length ? cards : [el("p", { class: "empty" }, w.family_none)]),
    grantForm()];
}

function grantForm() {
  const w = W();
  const field = (id, label, input, hint) => el("p", { class: "field" }, el("label", { for: id }, label), input,
    hint ? el("small", { id: id + "-hint" }, hint) : null);
  const name = el("input", { id: "fam-name", name: "name", autocomplete: "off", maxlength: "32", required: "" });
  const nid = el("input", { id: "fam-nid", name: "nid", inputmode: "text", autocomplete: "off", maxlength: "18",
    required: "", "aria-describedby": "fam-nid-hint" });
  const rel = el("select", { id: "fam-rel", name: "relation" },
    ...RELATIONS.map((c) => el("option", { value: c }, w.relation[c])));
  // a year from today, and no earlier than today, on Beijing's calendar (toISOString had given the
  // UTC day: before 08:00 in Beijing, yesterday was offered and allowed)
  const end = el("input", { id: "fam-end", name: "end", type: "date", value: window.MeI18n.beijingDay(1),
    min: window.MeI18n.beijingDay(), "aria-describedby": "fam-end-said" });
  const said = el("small", { id: "fam-end-said", class: "said" }, formatDate(end.value, lang, false));
  end.addEventListener("input", () => { said.textContent = formatDate(end.value, lang, false); });
  const go = el("button", { type: "submit", class: "primary" }, w.family_grant);
  const form = el("form", { class: "card family-form", "aria-labelledby": "fam-form-h" },
    el("h3", { id: "fam-form-h" }, w.family_formTitle),
    field("fam-name", w.family_name, name),
    field("fam-nid", w.family_nid, nid, w.family_nidHint),
    field("fam-rel", w.family_rel, rel),
    el("p", { class: "field" }, el("label", { for: "fam-end" }, w.family_end), end, said),
    el("p", { class: "meta" }, w.family_howTheySignIn), go);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    grant(name.value, nid.value, rel.value, end.value, go).catch((e) => status(e.message, true));
  });
  return form;
}

async function operation(name, parameters) {
  const r = await fetch(cfg.fhir + "/Patient/" + name, {
    method: "POST", body: JSON.stringify({ resourceType: "Parameters", parameter: parameters }),
    headers: { Authorization: "Bearer " + state.session.token, "Content-Type": "application/fhir+json",
      Accept: "application/fhir+json" } }).catch(() => { throw new Error(W().family_failed + W().unreadable); });
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) { sessionOver(); throw new Expired(W().sessionExpired); }  // see launch.js sessionOver
  if (!r.ok) {
    const why = ((body.issue || [])[0] || {}).diagnostics || String(r.status);
    throw new Error(W().family_failed + why);
  }
  return body;
}

async function grant(name, nid, relation, end, button) {
  const w = W();
  nid = nid.trim().toUpperCase();
  if (!name.trim()) { status(w.family_needName, true); $("fam-name").focus(); return; }
  if (!/^\d{17}[\dX]$/.test(nid)) { status(w.family_badNid, true); $("fam-nid").focus(); return; }
  // Held while the grant is on its way, and saying so: on a slow county network the button had
  // only greyed out, with no word of what was happening.
  const label = button.textContent;
  button.disabled = true; button.setAttribute("aria-busy", "true"); button.textContent = w.family_granting;
  try {
    const params = [{ name: "proxyNationalId", valueString: nid }, { name: "proxyName", valueString: name.trim() },
      { name: "relationship", valueCode: relation }];
    if (end) params.push({ name: "end", valueDate: end });
    await operation("$family-grant", params);
    await loadFamily(state.session);
    renderSection("family");
    status(w.family_granted(name.trim()), false, null);
    $("family-h").focus();
  } finally { button.disabled = false; button.removeAttribute("aria-busy"); button.textContent = label; }
}

// Withdrawing takes effect at once and cannot be undone (access comes back only by granting it
// again), so one tap asks first: the question, "withdraw" and "keep" in its place, the keyboard's
// focus on the question. A mistaken tap on a phone had ended the family member's access.
function confirmWithdraw(consent, person, button) {
  const w = W(), n = personName(person);
  const ask = el("p", { class: "ask", tabindex: "-1", id: "fam-ask-" + consent.id }, w.family_confirmWithdraw(n));
  const yes = el("button", { type: "button", class: "withdraw confirm" }, w.family_withdrawYes);
  const no = el("button", { type: "button", class: "keep" }, w.family_withdrawNo);
  const box = el("div", { class: "confirm-box", role: "group", "aria-labelledby": ask.id }, ask, yes, no);
  // while the withdrawal is on its way neither button does anything more: "keep" had put the withdraw
  // button back though the access was being withdrawn; the page says so, then draws what became of it
  yes.addEventListener("click", () => {
    yes.disabled = no.disabled = true; box.setAttribute("aria-busy", "true");
    ask.textContent = w.family_withdrawing; ask.classList.add("busy");
    withdraw(consent).catch((e) => {
      // withdrawn, only the list's reload failed: drawn as withdrawn by withdraw(), and said so first
      status(e.withdrawn ? w.family_withdrawn + " " + e.message : e.message, true);
      if (e.withdrawn) return;
      ask.textContent = w.family_confirmWithdraw(n); ask.classList.remove("busy");
      yes.disabled = no.disabled = false; box.removeAttribute("aria-busy");
    });
  });
  no.addEventListener("click", () => { if (!no.disabled) { box.replaceWith(button); button.focus(); } });
  setTimeout(() => ask.focus(), 0);
  return box;
}

async function withdraw(consent) {
  await operation("$family-withdraw", [{ name: "consent", valueReference: { reference: "Consent/" + consent.id } }]);
  try { await loadFamily(state.session); } catch (e) {
    // withdrawn, only the list's reload failed: the card is drawn as withdrawn from what is known
    // (its question must not come back: "keep" would put the withdraw button back, and the resident
    // would believe the family member still sees the record)
    state.grants = state.grants.map((g) => g.consent.id === consent.id
      ? { ...g, consent: { ...g.consent, status: "inactive" } } : g);
    renderSection("family");
    e.withdrawn = true; throw e;
  }
  renderSection("family");
  status(W().family_withdrawn, false, null);
  $("family-h").focus();
}
