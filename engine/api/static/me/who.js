// /ui/me — "who looked at my record" (谁看过我的档案): the server's list of accesses
// (/ui/me/who-looked) as plain sentences, a requestor's burst of reads as one line.
"use strict";

// ---- who looked at my record ---------------------------------------------------------------------------

function whoName(e) {
  const w = W();
  if (["resident", "other-resident", "unauthenticated"].includes(e.role)) return w.who_role[e.role];
  if (e.role === "family") return e.who_name || w.who_role.family;
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
    if (who) { state.audit = who.entries || []; state.unread.delete("who"); state.refused.delete("who"); renderSection("who"); sayLoaded(); $("who-h").focus(); }
    else if (statusKey === "loading") status("");  // refused (4xx): nothing new to show, not "loading" for ever
  });
  const groups = groupWho(entries);
  const rows = groups.map((g) => {
    // the kinds of record touched, in words; the technical ones (organisations, provenance) left out
    const named = [...g.types].filter((t) => w.types[t]).map((t) => w.types[t]);
    const types = named.slice(0, 5);
    const role = w.who_role[g.role] || g.role;
    const name = whoName(g);
    // a named requestor with what it is (阜宁县人民医院 HIS（医院信息系统）); one known only by its
    // technical id is said by what it is, the id after it (医院信息系统（interface-engine）)
    const actor = name === role ? name : g.who_name ? `${name}${w.paren(role)}` : `${role}${w.paren(name)}`;
    // the app by its registered name; one registered without a name (or since removed) by its client
    // id, as the family line does -- a third-party app getting the data stays visible. Only the staff
    // pages' own client (the server marks it via_staff_pages) is not named: that is no other app
    const appName = g.via_app && g.via_app !== g.who && !g.via_staff_pages ? w.who_via(g.via_app_name || g.via_app) : "";
    // a refused access is an attempt: "tried to view", not "viewed"
    const verb = (g.outcome === "refused" && w.who_tried[g.what]) || w.who_what[g.what] || g.what;
    const obj = types.length ? types.join(w.sep) + (named.length > 5 ? w.andMore : "") : w.who_types_all;
    const sentence = g.what === "sign-in" && g.role === "unauthenticated" ? w.who_signin_attempt
      : g.what === "login-phone" ? `${actor}${w.who_phone}`
      : g.what === "family-access" ? `${actor}${w.who_family_access}`
      : g.role === "family" ? (lang === "en" ? `${w.who_family(name, g.via_app_name || g.via_app)} ${verb} ${w.who_your} ${obj}`
        : `${w.who_family(name, g.via_app_name || g.via_app)}${verb}您的${obj}`)
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
