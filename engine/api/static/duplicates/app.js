// The auditors' page for /reports/duplicates. Plain DOM, no framework, no network beyond this server.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  let session = null; // who is signed in and the CSRF token to echo (from /ui/session)
  let currentFlag = null;

  function toSignIn() { location.assign("/ui/signin?next=" + encodeURIComponent("/ui/duplicates")); }

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function cell(tr, value, cls) { const td = document.createElement("td"); text(td, value); if (cls) td.className = cls; tr.appendChild(td); return td; }
  function message(msg, ok) { text($("#message"), msg); $("#message").className = ok ? "ok" : ""; }

  async function api(path, options) {
    const opts = Object.assign({ headers: {}, credentials: "same-origin" }, options || {});
    if (opts.method && opts.method !== "GET" && session) opts.headers["X-CSRF-Token"] = session.csrf;
    const res = await fetch(path, opts);
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const diag = body && body.issue && body.issue[0] ? body.issue[0].diagnostics : res.statusText;
      if (res.status === 401) { toSignIn(); }
      if (res.status === 403) throw new Error("无权执行此操作 You may not do this: " + diag);
      throw new Error(res.status + " " + diag);
    }
    return body;
  }

  function filterQuery() {
    const params = new URLSearchParams();
    for (const el of $("#filters").elements) {
      if (el.name && el.value) params.set(el.name, el.value);
    }
    return params;
  }

  function money(v, cur) { return (cur || "") + " " + Number(v || 0).toFixed(2); }

  function stat(label, value) {
    const d = document.createElement("div"); d.className = "stat";
    const b = document.createElement("b"); text(b, value); d.appendChild(b);
    d.appendChild(document.createTextNode(label)); return d;
  }

  function barChart(svg, data, labelKey, valueKey, format) {
    window.hurenCharts.bar(svg, data.map((d) => ({ label: d[labelKey], value: d[valueKey], keep: 5 })), format);
  }

  function render(report) {
    const t = report.totals;
    const summary = $("#summary"); summary.replaceChildren(
      stat("疑似重复 flags", t.count), stat("涉及金额 money at stake", money(t.money_at_stake, report.currency)),
      stat("待复核 open", t.by_status.flagged), stat("已维持 upheld", t.by_status.upheld), stat("已撤销 overturned", t.by_status.overturned),
      stat("有理由复查 justified re-tests", t.by_status.justified),
      stat("自费复查 self-pay re-tests", t.by_status.self_pay + " · " + money(t.self_pay_money, report.currency)),
      stat("仅报告 reported only", t.by_status.reported),
      stat("理由与记录不符 reason contradicted", report.rows.filter((r) => r.contradicted).length));
    summary.dataset.count = t.count; summary.dataset.money = t.money_at_stake;
    barChart($("#chart-time"), report.over_time, "day", "count", (v) => v + " flags");
    barChart($("#chart-money"), Object.entries(t.by_institution).map(([k, v]) => ({ inst: k, money: v.money })),
      "inst", "money", (v) => money(v, report.currency));
    const rates = $("#rates tbody"); rates.replaceChildren();
    const by = $("#rate-by").value;
    text($("#rate-key"), { "": "Institution", dept: "Department", doctor: "Ordering doctor", month: "Month" }[by]);
    const rateRows = by ? (report.recognition_rate_by || {})[by] || {} : report.recognition_rate;
    for (const [inst, r] of Object.entries(rateRows)) {
      const tr = document.createElement("tr");
      cell(tr, inst); cell(tr, r.recognisable); cell(tr, r.recognised); cell(tr, r.retested); cell(tr, r.pending);
      cell(tr, r.rate == null ? "-" : (100 * r.rate).toFixed(1) + "%");
      rates.appendChild(tr);
    }
    const body = $("#flags tbody"); body.replaceChildren();
    for (const row of report.rows) {
      const tr = document.createElement("tr"); tr.className = "flag"; tr.dataset.id = row.id;
      cell(tr, row.day); cell(tr, row.status, "s-" + row.status); cell(tr, row.institution);
      cell(tr, row.item_name + " (" + row.item + ")"); cell(tr, row.category);
      cell(tr, row.analytes ? row.analytes + (row.partial ? " (partial)" : "") : "whole item");
      cell(tr, money(row.price, row.currency));
      cell(tr, row.prior_institution + " " + row.prior_day + (row.basis && row.basis !== "community" ? " · " + row.basis : ""));
      const reason = cell(tr, (row.reason || "") + (row.contradicted ? " — reason contradicted by records" : "")
        + (row.late_reasons ? (row.reason ? " · " : "") + "迟录 late: " + row.late_reasons : ""));
      if (row.contradicted) { reason.className = "contradicted"; reason.title = row.contradicted; }
      tr.addEventListener("click", () => open(row.id, tr));
      body.appendChild(tr);
    }
    const q = filterQuery(); q.set("_format", "csv");
    $("#csv").href = "/reports/duplicates?" + q.toString();
  }

  function summarise(resource) {
    if (!resource) return "(not available)";
    const keep = ["resourceType", "id", "status", "code", "effectiveDateTime", "started", "issued", "performer",
      "conclusion", "valueQuantity", "valueString", "modality", "series", "result"];
    const out = {}; for (const k of keep) if (resource[k] !== undefined) out[k] = resource[k];
    return JSON.stringify(out, null, 2);
  }

  async function open(id, tr) {
    try {
      const ev = await api("/reports/duplicates/" + encodeURIComponent(id));
      currentFlag = id;
      document.querySelectorAll("#flags tr.selected").forEach((el) => el.classList.remove("selected"));
      if (tr) tr.classList.add("selected");
      const f = ev.flag;
      text($("#ev-id"), id);
      const dl = $("#ev-facts"); dl.replaceChildren();
      const facts = [["状态 Status", f.status], ["项目 Item", f.item_name + " (" + f.item + "), " + f.category],
        ["时限 Window", f.window + " days"], ["重复于 Repeated at", f.inst + " on " + f.day + " (ordered " + f.order_day + ")"],
        ["前次结果 Prior result", f.prior_inst + " on " + f.prior_day + " — " + f.prior], ["重复结果 Repeated result", f.result],
        ["医嘱 Order", f.order || "(none)"],
        ["重复内容 Repeated", (f.analytes && f.analytes.length ? f.analytes.join(", ") + (f.partial ? " (partial overlap)" : "") : "the whole item")],
        ["价格 Price", money(f.price, f.currency) + " (" + (f.price_source === "charge" ? "billed charge line" : "price catalogue") + ")"],
        ["范围 Scope", (f.basis || "community") + (f.hr && f.hr.length ? " · prior HR: " + f.hr.join(", ") : "")],
        ["理由 Reason", f.reason ? f.reason + (f.reason_text ? ": " + f.reason_text : "") + (f.effect ? " (" + f.effect + ")" : "") : "(none)"]];
      if (f.late_reasons && f.late_reasons.length) {
        // recorded after the result: not counted (DOMAIN: the reason recorded at order time stands), shown for the auditor
        facts.push(["迟录理由 Late reason", f.late_reasons.join(", ") + (f.late_reason_text ? ": " + f.late_reason_text : "")
          + " — 结果之后录入，不计入 recorded after the result, not counted"]);
      }
      if (f.contradicted) facts.push(["复核提示 Review note", f.contradicted]);
      for (const r of f.reviews || []) facts.push(["复核 Review", r.decision + " by " + r.by + " at " + r.at + ": " + r.reason]);
      for (const [k, v] of facts) { dl.appendChild(text(document.createElement("dt"), k)); dl.appendChild(text(document.createElement("dd"), v)); }
      text($("#ev-prior"), summarise(ev.priorResource));
      text($("#ev-repeat"), summarise(ev.resultResource));
      const review = $("#review"); // absent for a role that may not review (an operator)
      if (review) review.hidden = !(f.status === "flagged" || f.status === "upheld" || f.status === "overturned");
      $("#evidence").hidden = false;
      message("");
    } catch (e) { message(e.message); }
  }

  async function whoami() {
    session = await window.hurenStaff.whoami("/ui/duplicates");
    if (!session) return false;
    if (!session.can.review) $("#review").remove(); // the API refuses it too; the page does not offer it
    if (session.can.insurance) $("#nav-insurance").hidden = false;
    return true;
  }

  async function load() {
    try { render(await api("/reports/duplicates?" + filterQuery().toString())); message(""); document.body.dataset.loaded = "1"; }
    catch (e) { message(e.message); }
  }

  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); $("#evidence").hidden = true; load(); });
  $("#rate-by").addEventListener("change", () => load());
  $("#review").addEventListener("submit", async (e) => {
    e.preventDefault();
    const decision = e.submitter ? e.submitter.value : "upheld";
    const reason = $("#review").elements.reason.value;
    try {
      await api("/reports/duplicates/" + encodeURIComponent(currentFlag) + "/review", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ decision, reason }) });
      const id = currentFlag; await load();
      await open(id, document.querySelector('#flags tr[data-id="' + id + '"]'));
      message("已记录复核 Review recorded: " + decision + " — " + session.display, true);
    } catch (err) { message(err.message); }
  });
  whoami().then((ok) => { if (ok) load(); });
})();
