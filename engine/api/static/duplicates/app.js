// The auditors' page for /reports/duplicates. Plain DOM, no framework, no network beyond this server.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  let session = null; // who is signed in and the CSRF token to echo (from /ui/session)
  let currentFlag = null;

  const W = window.hurenWords;
  const PAGE = 100; // rows a request: the API's own default page, the totals always cover every flag
  let shown = []; // the rows listed so far (pages appended by "show more")
  let totals = null;
  let listed = ""; // the query of the list shown (its filters), which "show more" pages on
  // Which list a reply belongs to: each load asks for a new one, and a reply (a load's or a page's)
  // for an older list is dropped -- else a page of the old filters landed under the new ones.
  const lists = W.latest();
  // Which flag's evidence is to be shown: each click opens a new one, and a reply for a flag opened
  // before it is dropped -- else a slow reply for flag A, landing after B's, put A's evidence on the
  // screen and made A the target of the review the auditor then submitted for B.
  const evidence = W.latest();

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function cell(tr, value, cls, label) {
    const td = document.createElement("td"); text(td, value); if (cls) td.className = cls;
    if (label) td.dataset.label = label; // the card layout's caption at phone width
    tr.appendChild(td); return td;
  }
  function message(msg, ok) { text($("#message"), msg); $("#message").className = ok ? "ok" : ""; }

  function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (opts.method && opts.method !== "GET" && session) opts.headers["X-CSRF-Token"] = session.csrf;
    return W.api(path, opts, "/ui/duplicates");
  }

  function filterQuery() {
    const params = new URLSearchParams();
    for (const el of $("#filters").elements) {
      const value = el.dataset.names ? W.codeFor(el.dataset.names, el.value) : el.value; // a name typed: its code
      if (el.name && value) params.set(el.name, value);
    }
    return params;
  }

  // money as every page says it (shared/money.js): "20.00 元", to the fen on its digits, grouped, the
  // currency's word from the session's words (``currencies``); it had read "CNY 20.00" here while the
  // insurance page read "2,550.25 元"
  function money(v, cur) { return window.hurenMoney.said(v, cur, W.said("currencies", cur)); }
  const amount = (holder, key) => window.hurenExact.digits(holder, key); // an amount's digits as sent

  function stat(label, value) {
    const d = document.createElement("div"); d.className = "stat";
    const b = document.createElement("b"); text(b, value); d.appendChild(b);
    d.appendChild(document.createTextNode(label)); return d;
  }

  function barChart(svg, data, labelKey, valueKey, format, keep) {
    window.hurenCharts.bar(svg, data.map((d) => ({ label: d[labelKey], value: d[valueKey], keep, name: d.name })), format);
  }

  function render(report) {
    const t = report.totals; totals = report;
    const summary = $("#summary"); summary.replaceChildren(
      stat("疑似重复 flags", t.count), stat("涉及金额 money at stake", money(amount(t, "money_at_stake"), report.currency)),
      ...["flagged", "upheld", "overturned", "justified"].map((k) => stat(W.status(k).join(" "), t.by_status[k])),
      stat(W.status("self_pay").join(" "), t.by_status.self_pay + " 条 · " + money(amount(t, "self_pay_money"), report.currency)),
      stat(W.status("reported").join(" "), t.by_status.reported));
    summary.dataset.count = t.count; summary.dataset.money = t.money_at_stake;
    const left = t.restricted || { count: 0, amount: 0 };
    summary.dataset.restricted = left.count;
    if (left.count) {
      // flags citing a record labelled beyond this reader are not listed: only how many and the money
      // the amount is withheld below the site's threshold (null): one flag's price names its item
      const said = left.amount === null || left.amount === undefined
        ? "金额不显示（少于 " + (left.amount_shown_from || 5) + " 条）" : "金额 " + money(amount(left, "amount"), report.currency);
      const p = text(document.createElement("p"), "另有 " + left.count + " 条涉及受限记录的疑似重复未显示，" + said
        + "，需具备相应权限的审核员处理 (" + left.count
        + " suspected duplicates citing restricted records are not shown)");
      p.className = "note restricted"; summary.appendChild(p);
    }
    if ($("#filters").elements.status.value) {
      // the API's by-status figures are over every status (the other filters apply): said, not implied
      summary.appendChild(text(document.createElement("p"), "各状态数字含全部状态，不受“状态”筛选影响。 The per-status figures cover every status."));
      summary.lastChild.className = "note";
    }
    // days in words; an institution's code drawn whole (cut to five characters, FNYLWSY read "YLWSY")
    const oneYear = new Set(report.over_time.map((d) => String(d.day).slice(0, 4))).size <= 1; // then 3月12日 is enough
    barChart($("#chart-time"), report.over_time.map((d) => ({ day: oneYear ? W.day(d.day).replace(/^\d+年/, "") : W.day(d.day), count: d.count })),
      "day", "count", (v) => v + " 条", 40);
    barChart($("#chart-money"), Object.entries(t.by_institution).map(([k, v]) => ({ inst: k, money: v.money, name: W.place(k) })),
      "inst", "money", (v) => money(v, report.currency), 40);
    const rates = $("#rates tbody"); rates.replaceChildren();
    const by = $("#rate-by").value;
    const keyName = { "": "机构 Institution", dept: "科室 Department", doctor: "开单医生 Ordering doctor", month: "月份 Month" }[by];
    text($("#rate-key"), keyName);
    const rateRows = by ? (report.recognition_rate_by || {})[by] || {} : report.recognition_rate;
    for (const [inst, r] of Object.entries(rateRows)) {
      const tr = document.createElement("tr");
      // "(unknown)": the order names no department (or doctor): said in words, not as the API's key
      const key = inst === "(unknown)" ? "未注明 not stated"
        : by === "month" ? inst.replace(/^(\d{4})-(\d{2})$/, (m, y, mo) => y + "年" + Number(mo) + "月") : by ? inst : W.place(inst);
      cell(tr, key, "key", keyName); cell(tr, r.recognisable, "num", "可互认 Recognisable");
      cell(tr, r.recognised, "num", "已互认 Recognised"); cell(tr, r.retested, "num", "重复检查 Re-tested");
      cell(tr, r.pending, "num", "待定 Pending");
      cell(tr, r.rate == null ? "-" : (100 * r.rate).toFixed(1) + "%", "num", "互认率 Rate");
      rates.appendChild(tr);
    }
    if (!rates.children.length) empty(rates, 6, "所选范围内没有可互认的医嘱。 No recognisable orders in this range.");
    shown = []; $("#flags tbody").replaceChildren();
    addRows(report.rows);
    const q = new URLSearchParams(listed); q.delete("_count"); q.set("_format", "csv"); // the list shown, as CSV
    $("#csv").href = "/reports/duplicates?" + q.toString();
  }

  function empty(tbody, span, words) {
    const tr = document.createElement("tr"); tr.className = "empty";
    const td = document.createElement("td"); td.colSpan = span; text(td, words); tr.appendChild(td); tbody.appendChild(tr);
  }

  // One flag as a table row on a desktop and as a card on a phone (app.css): every cell carries its
  // column's name, and the date is a button, so a keyboard or a screen reader opens the evidence too.
  function flagRow(row) {
    const tr = document.createElement("tr"); tr.className = "flag"; tr.dataset.id = row.id; tr.dataset.status = row.status;
    const first = cell(tr, "", "day", "日期 Date");
    const open = document.createElement("button"); open.type = "button"; open.className = "open";
    text(open, W.day(row.day));
    open.setAttribute("aria-label", "查看证据 Evidence: " + W.day(row.day) + " " + (row.item_name || row.item) + " " + W.place(row.institution));
    first.appendChild(open);
    const [zh, en] = W.status(row.status);
    const st = cell(tr, "", "status s-" + row.status, "状态 Status"); // one box: the card's grid keeps it in one column
    const words = text(document.createElement("span"), zh);
    if (en) { const small = document.createElement("small"); text(small, " " + en); words.appendChild(small); }
    st.appendChild(words);
    cell(tr, W.place(row.institution), "", "机构 Institution");
    cell(tr, (row.item_name || "") + " (" + row.item + ")", "", "项目 Item"); cell(tr, row.category, "", "类别 Category");
    cell(tr, row.analytes ? row.analytes + (row.partial ? "（部分 partial）" : "") : "整项 whole item", "", "重复内容 Repeated");
    cell(tr, money(amount(row, "price"), row.currency), "num", "价格 Price");
    cell(tr, W.place(row.prior_institution) + " " + W.day(row.prior_day) + (row.basis && row.basis !== "community" ? " · " + W.scope(row.basis) : ""),
      "", "前次结果 Prior result");
    const reasonText = (row.reason ? W.reason(row.reason) : "") + (row.contradicted ? " — 理由与记录不符 reason contradicted by records" : "")
      + (row.late_reasons ? (row.reason ? " · " : "") + "迟录 late: " + String(row.late_reasons).split(/,\s*/).map(W.reason).join("、") : "");
    const reason = cell(tr, reasonText || "—", "reason", "理由 Reason");
    if (row.contradicted) { reason.classList.add("contradicted"); reason.title = row.contradicted; }
    tr.addEventListener("click", (e) => { if (e.target !== open) openFlag(row.id, tr); });
    open.addEventListener("click", () => openFlag(row.id, tr));
    return tr;
  }

  function addRows(rows) {
    const body = $("#flags tbody");
    for (const row of rows) { body.appendChild(flagRow(row)); shown.push(row); }
    const count = totals.totals.count;
    if (!count) { body.replaceChildren(); empty(body, 9, "所选范围内没有疑似重复。可以放宽日期或其他条件再查。 No flags match these filters."); }
    // how many are listed out of how many there are, and how many of those listed the records contradict
    const contradicted = shown.filter((r) => r.contradicted).length;
    const listed = $("#flags-count");
    text(listed, count ? (shown.length < count ? "已显示 " + shown.length + " 条，共 " + count + " 条" : "共 " + count + " 条")
      + (contradicted ? "；其中理由与记录不符 " + contradicted + " 条" : "")
      + (shown.length < count ? " · showing " + shown.length + " of " + count : "") : "");
    listed.dataset.shown = shown.length; listed.dataset.count = count;
    $("#more").hidden = shown.length >= count;
  }

  async function more() {
    // the next page of the list on the screen: the filters it was asked with, not ones typed since.
    // One page at a time: the button is off until it arrives (a double tap had asked for the same
    // offset twice and listed those flags twice).
    const button = $("#more");
    if (button.disabled) return;
    button.disabled = true;
    const mine = lists.join();
    const q = new URLSearchParams(listed); q.set("_offset", String(shown.length)); q.set("_count", String(PAGE));
    try {
      const page = await api("/reports/duplicates?" + q.toString());
      if (!lists.counts(mine)) return; // a new list was asked for meanwhile: this page is not of it
      addRows(page.rows); message("");
    } catch (e) { if (lists.counts(mine)) message(e.message); }
    finally { if (lists.counts(mine)) button.disabled = false; }
  }

  function summarise(resource) {
    if (!resource) return "（无权查看或已不存在 not available）";
    // every value[x] the result may hold, as stored (a titer's valueRatio had been left out of it)
    const keep = ["resourceType", "id", "status", "code", "effectiveDateTime", "started", "issued", "performer",
      "conclusion", "valueQuantity", "valueString", "valueCodeableConcept", "valueInteger", "valueBoolean", "valueRange",
      "valueRatio", "valueTime", "valueDateTime", "valuePeriod", "valueSampledData", "component", "dataAbsentReason",
      "modality", "series", "result"];
    const out = {}; for (const k of keep) if (resource[k] !== undefined) out[k] = resource[k];
    return window.hurenExact.stringify(out, 2); // the numbers in the digits the result was sent with
  }

  // a re-test reason's effect under the payer's policy and a result's status, in the session's words
  const effect = (code) => W.said("effects", code) || code;
  const resultStatus = (code) => W.said("result_statuses", code) || code;

  // what kind of record a result is, for a person (a reference's type alone says nothing to them)
  const KIND = { DiagnosticReport: "检验检查报告", Observation: "检验结果", ImagingStudy: "影像检查", ServiceRequest: "医嘱" };
  // a CodeableConcept in words: its text, else its first coding's display ("" for neither)
  function conceptWords(cc) {
    return (cc && (cc.text || ((cc.coding || []).find((c) => c.display) || {}).display)) || "";
  }
  function testName(resource) { return conceptWords(resource && resource.code); }
  // A result named by its test and kind (血常规 · 检验检查报告), its reference folded beneath it
  // (溯源 Trace) for whoever traces it; a result the person may not read is named by its kind.
  function named(dd, reference, resource) {
    const type = String(reference || "").split("/")[0];
    const words = [testName(resource), KIND[type] || type].filter(Boolean).join(" · ");
    dd.replaceChildren(document.createTextNode(words ? words + " " : ""));
    dd.appendChild(trace(["ref", reference]));
    return dd;
  }

  // A result as an auditor reads it -- what, when (Beijing time), where, its status and finding --
  // with the FHIR JSON folded away beneath it. Where: the institution that performed it as the
  // evidence names it (``institution``: the index's, the one recognition counts it at), said by name
  // and code as everywhere on the page, whenever the evidence gives it (evpfix34: the line was drawn
  // only for a result naming its performer by reference alone, which no HL7 result does: the
  // converter always writes the performer's display); the performer's own display ("执行 By") only
  // for what that line does not already say (a person, another name), or when no institution is given.
  function describe(dl, resource, institution) {
    dl.replaceChildren();
    if (!resource) { dl.appendChild(text(document.createElement("dd"), "（无权查看或已不存在 not available）")); return; }
    const name = testName(resource) || resource.resourceType;
    const when = whenOf(resource);
    const facts = [["项目 Test", name], ["时间 When", when ? beijingTime(when) : "—"],
      ["状态 Status", resultStatus(resource.status) || "—"]];
    if (institution) facts.push(["执行机构 Performed at", W.place(institution)]);
    const there = institution ? W.placeName(institution) : null;
    const by = (resource.performer || []).map((p) => p.display).filter((d) => d && d !== there); // a bare reference says nothing to a person
    if (by.length) facts.push(["执行 By", by.join("、")]);
    if (resource.modality) facts.push(["检查方式 Modality", [].concat(resource.modality).map((m) => m.code || m.display).join("、")]);
    const value = valueOf(resource); // a number, a text or a coded finding (阴性): whichever the lab sent
    if (value) facts.push(["结果 Value", value]);
    if (resource.result) facts.push(["分项 Results", resource.result.length + " 项 items"]);
    if (resource.conclusion) facts.push(["结论 Conclusion", resource.conclusion]);
    for (const [k, v] of facts) { dl.appendChild(text(document.createElement("dt"), k)); dl.appendChild(text(document.createElement("dd"), v)); }
  }

  // The order the flag charges, as an auditor tells it from another (rv36b note 10: the line had said
  // only "医嘱" and a trace link): its test, where and when it was placed (开单, Beijing time), and its
  // numbers as stored -- the placer's (医嘱号, ORC-2/OBR-2) and the lab's (执行号, OBR-3), each system
  // kept under 溯源 Trace with the reference. From the record the flag names only; the server gives
  // none of it (null: not available) unless it is the flag's person's order (reports._order_shown), and
  // nothing of anyone in it is said (its requester, its subject). A date alone (the flag's order day)
  // when the order states no time.
  const NUMBER = { PLAC: "医嘱号 placer", FILL: "执行号 filler" };
  function orderLine(dd, ev) {
    const f = ev.flag, order = ev.orderResource;
    if (!order) {
      dd.appendChild(document.createTextNode("医嘱 · （无权查看或已不存在 not available） "));
      dd.appendChild(trace(["ref", f.order]));
      return;
    }
    const numbers = [], systems = [], seen = new Set();
    for (const id of order.identifier || []) {
      const type = ((((id || {}).type || {}).coding || [])[0] || {}).code;
      const label = NUMBER[type] || "编号 number";
      if (!id.value || seen.has(label + id.value)) continue;
      seen.add(label + id.value);
      numbers.push(label + " " + id.value);
      systems.push(label + " " + (id.system ? id.system + "|" : "") + id.value);
    }
    const placed = order.authoredOn ? beijingTime(order.authoredOn) : W.day(f.order_day);
    const parts = [testName(order) || "医嘱", ev.orderInstitution ? W.place(ev.orderInstitution) : "",
      placed ? "开单 ordered " + placed : "", ...numbers].filter(Boolean);
    // each part kept whole on a line where it fits (a number's label beside its number); on a phone
    // one part a line, the separators left out (app.css)
    const span = dd.appendChild(document.createElement("span")); span.className = "order-words";
    parts.forEach((part, i) => {
      if (i) text(span.appendChild(document.createElement("span")), " · ").className = "sep";
      text(span.appendChild(document.createElement("span")), part).className = "part";
    });
    dd.appendChild(document.createTextNode(" "));
    dd.appendChild(trace(["ref", f.order], ...systems.map((line) => ["code", line])));
  }

  // Does the evidence pair a panel's analytes (ALT beside ALT)? Then the two whole results are not
  // what was compared: the billed result may be the repeat's AST beside the prior's ALT.
  function paired(ev) { return (ev.pairs || []).some((p) => p.analyte); }
  function analyteName(a) { return a.analyte_name ? a.analyte_name + "（" + a.analyte + "）" : a.analyte; }

  // A result's value as the lab reported it, by the rule the resident's page draws by too
  // (shared/value.js): a quantity with its comparator, digits and unit ("<5 U/L"; 0.50 stays 0.50), a
  // text, a coded finding by its words (阴性), a titer (1:320), a range (10–20 /HP), a yes/no, a date on
  // Beijing's clock, why there is none -- in Chinese, then English. The page had its own reader, which
  // knew the first three only: a titer was evidence with no value (rv36b LOW 9).
  const VALUE_WORDS = { ...window.hurenValue.words("zh-CN", "en"), when: (t) => beijingTime(t) };
  function valueOf(resource) { return window.hurenValue.said(resource, VALUE_WORDS); }
  // A time as Beijing's clock says it, and said so (as the refused list does, pages34): results come
  // with other offsets (OBX-14 ...+0000), shown on Beijing's clock, and nothing had said whose clock
  // it was (rvui35 LOW). A date alone says no time, so no clock either.
  function beijingTime(when) {
    return W.instant(when) + (/T\d/.test(String(when)) ? "（北京时间）" : "");
  }
  // What a result is to whoever traces it -- its reference (Observation/<uuid>), the codes it was
  // compared by -- folded beneath what a person reads: one click away, in small type, never gone
  // (rvui35 note: the references and LOINC codes had stood in the main text).
  function trace(...lines) {
    const d = document.createElement("details"); d.className = "trace";
    d.appendChild(text(document.createElement("summary"), "溯源 Trace"));
    for (const [cls, line] of lines) if (line) { const s = text(document.createElement("small"), line); s.className = cls; d.appendChild(s); }
    return d;
  }
  function whenOf(resource) {
    return resource && (resource.effectiveDateTime || resource.started || (resource.effectivePeriod || {}).start || resource.issued);
  }
  // the billed result's badge (the charge line is found by it): 计费结果 on the entry that is the flag's result
  function billedMark(reference, billed) {
    if (!reference || reference !== billed) return null;
    const b = text(document.createElement("span"), "计费结果 Billed"); b.className = "billed"; return b;
  }

  // One side of a pair: the result described as an auditor reads it (with where it was performed), a
  // whole-panel report said so, the billed one marked; then the analyte's other results on that side
  // (a re-run, a measurement the other side did not report), each with its value, time and
  // institution, so the auditor sees every value of it there is and which one was billed.
  function side(title, resource, reference, panel, institution, also, billed) {
    const div = document.createElement("div"); div.className = "pair-side";
    const h = div.appendChild(text(document.createElement("h4"), title));
    const mark = billedMark(reference, billed); if (mark) { h.appendChild(document.createTextNode(" ")); h.appendChild(mark); }
    if (panel) { const n = text(document.createElement("p"), "整组报告，无该项单独结果 the panel's report as a whole"); n.className = "note"; div.appendChild(n); }
    const dl = document.createElement("dl"); dl.className = "words"; describe(dl, resource, institution); div.appendChild(dl);
    div.appendChild(trace(["ref", reference]));
    if (also && also.length) div.appendChild(others(also, billed));
    return div;
  }

  // When a result was taken, to order by: [the instant in ms, 0 for a date alone / 1 timed]. The
  // instant with its own offset applied: the engine keeps the sender's (OBX-14 ...+0000 is stored
  // +00:00, beside +08:00 from another sender), so the text of two times does not order them
  // (rvevpage34 LOW 2). A date alone (2026-03-12, 2026-03) is placed at the start of its day (or
  // month) in Beijing, before that day's timed results: it states no time. Not readable, or no
  // time at all: [Infinity, 2], after every known one.
  function takenAt(resource) {
    const s = String(whenOf(resource) || "");
    const d = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(s);
    if (d) return [Date.parse(d[1] + "-" + (d[2] || "01") + "-" + (d[3] || "01") + "T00:00:00+08:00"), 0];
    const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s) ? Date.parse(s) : NaN;
    return Number.isNaN(t) ? [Infinity, 2] : [t, 1];
  }
  function byTaken(a, b) {
    const [ta, pa] = takenAt(a.resource), [tb, pb] = takenAt(b.resource);
    return ta !== tb ? (ta < tb ? -1 : 1) : pa !== pb ? pa - pb : String(a.reference).localeCompare(String(b.reference));
  }

  // The analyte's other results on one side, oldest first (by the instant: ``takenAt``): value ·
  // time · institution · status.
  function others(also, billed) {
    const box = document.createElement("div"); box.className = "also";
    box.appendChild(text(document.createElement("h5"), "同项其他结果 " + also.length + " 条（北京时间） Other results of this analyte"));
    const ol = box.appendChild(document.createElement("ol"));
    const sorted = also.slice().sort(byTaken);
    for (const o of sorted) {
      const li = ol.appendChild(document.createElement("li"));
      li.dataset.ref = o.reference;
      if (!o.resource) { li.appendChild(text(document.createElement("span"), "（无权查看或已不存在 not available）")); }
      else {
        const v = li.appendChild(text(document.createElement("b"), valueOf(o.resource) || testName(o.resource) || "—"));
        v.className = "value";
        const when = whenOf(o.resource);
        const facts = [testName(o.resource), when ? W.instant(when) : "", o.institution ? W.place(o.institution) : "",
          resultStatus(o.resource.status)].filter(Boolean);
        li.appendChild(text(document.createElement("span"), " " + facts.join(" · ")));
      }
      const mark = billedMark(o.reference, billed); if (mark) { li.appendChild(document.createTextNode(" ")); li.appendChild(mark); }
      li.appendChild(document.createTextNode(" ")); li.appendChild(trace(["ref", o.reference]));
    }
    return box;
  }

  // The evidence pairs: every repeated analyte with the prior result of the same analyte, then the
  // analytes the repeat did that no prior covered, and those of the panel it did not do. A flag
  // stored before the pairs were kept says so (paired now from the records, or not paired at all).
  // An analyte both sides measured, but in no measurement alike (PT in seconds against an INR), is
  // drawn with both sides and said not to be compared (``unlike``).
  function showPairs(ev) {
    const pairs = (ev.pairs || []).filter((p) => p.analyte);
    const box = $("#ev-pairs"), list = $("#ev-pairs-list"); list.replaceChildren();
    const note = $("#ev-pairs-note");
    const before = ev.pairsSource === "before-pairs", derived = ev.pairsSource === "derived";
    const billed = (ev.flag || {}).result;
    box.hidden = !pairs.length && !before;
    $(".results").hidden = pairs.length > 0; // the whole results are shown only where they are what was compared
    note.hidden = !(before || derived);
    text(note, before ? "此标记记录于分项配对之前，下方前次结果与复查结果未按分析项目核对，可能不是同一项目。 Recorded before analyte pairs were kept: the two results below may be different analytes."
      : derived ? "此标记记录于分项配对之前，分项按当前记录配对。 Recorded before analyte pairs were kept: paired now from the records." : "");
    // the billed result when no row draws it, said once above the rows: the test's report, or a result
    // of an analyte not repeated against a prior (the test's first entry: its charge line is found by it)
    const drawn = new Set(pairs.flatMap((p) => [p.result, p.prior, ...(p.resultAlso || []).map((o) => o.reference),
      ...(p.priorAlso || []).map((o) => o.reference)]));
    if (pairs.length && billed && !drawn.has(billed)) {
      const b = text(document.createElement("p"), billed.startsWith("DiagnosticReport/")
        ? "计费结果是本次检查检验的整份报告（见上方“计费结果”），以下为其中各分析项目的结果。 The billed result is the test's report as a whole (above); its analytes' results follow."
        : "计费结果（见上方“计费结果”）不是以下对照中的结果。 The billed result (above) is none of the results compared below.");
      b.className = "note billed-note"; list.appendChild(b);
    }
    for (const p of pairs) {
      const row = document.createElement("section"); row.className = "pair" + (p.unlike ? " unlike" : "");
      row.dataset.analyte = p.analyte;
      row.appendChild(text(document.createElement("h4"), analyteName(p) + (p.measure ? " · " + measureName(p.priorResource, p.measure) : "")));
      if (p.unlike) {
        const n = text(document.createElement("p"), "两次测量的指标不同（复查：" + measureName(p.resultResource, p.result_measure)
          + "；前次：" + measureName(p.priorResource, p.prior_measure) + "），不作对照。 Measured differently on each side: not compared.");
        n.className = "note unlike-note"; row.appendChild(n);
        // the codes the two measurements were told apart by, for whoever checks the rule: folded
        n.appendChild(document.createTextNode(" ")); n.appendChild(trace(["code", "LOINC 复查 repeat " + (p.result_measure || "—") + " · 前次 prior " + (p.prior_measure || "—")]));
        // not compared is not "not deducted": the analyte is still one the flag repeated and priced
        // (``analytes``, its price), so the auditor is told the billing stands (rvevpage34 note 4)
        if (((ev.flag || {}).analytes || []).includes(p.analyte)) {
          const b = text(document.createElement("p"), "同一分析项目，仍属本标记，计费不变。 The same analyte, still part of this flag: billing unchanged.");
          b.className = "note unlike-billing"; row.appendChild(b);
        }
      }
      const cols = document.createElement("div"); cols.className = "pair-sides";
      cols.appendChild(side("前次结果 Prior", p.priorResource, p.prior, p.prior_panel, p.priorInstitution, p.priorAlso, billed));
      cols.appendChild(side("复查结果 Repeat", p.resultResource, p.result, p.result_panel, p.resultInstitution, p.resultAlso, billed));
      row.appendChild(cols); list.appendChild(row);
    }
    const unpaired = ev.unpaired || [], notDone = ev.notDone || [];
    const u = $("#ev-unpaired"), n = $("#ev-not-done");
    u.hidden = !unpaired.length; n.hidden = !notDone.length;
    text(u, unpaired.length ? "未与前次结果重复（前次无此项，不属本标记）Not repeated against a prior: " + unpaired.map(analyteName).join("、") : "");
    text(n, notDone.length ? "本次未检 Not done in this test: " + notDone.map(analyteName).join("、") : "");
    u.dataset.analytes = unpaired.map((a) => a.analyte).join(" ");
  }
  // which of an analyte's measurements a result is: its test's name as the lab gave it (PT 秒 / INR);
  // the LOINC code only when the lab gave no name (its code is in the note's 溯源 Trace otherwise)
  function measureName(resource, loinc) {
    return testName(resource) || loinc || "";
  }

  async function openFlag(id, tr) {
    const mine = evidence.ask();
    try {
      const ev = await api("/reports/duplicates/" + encodeURIComponent(id));
      if (!evidence.counts(mine)) return; // another flag was opened (or the evidence closed) meanwhile
      currentFlag = id;
      document.querySelectorAll("#flags tr.selected").forEach((el) => el.classList.remove("selected"));
      if (tr) tr.classList.add("selected");
      const f = ev.flag;
      text($("#ev-id"), id);
      const dl = $("#ev-facts"); dl.replaceChildren();
      const [zh, en] = W.status(f.status);
      const facts = [["状态 Status", zh + (en ? " " + en : "")], ["项目 Item", f.item_name + " (" + f.item + "), " + f.category],
        ["时限 Window", f.window + " 天 days"],
        ["重复于 Repeated at", W.place(f.inst) + " · " + W.day(f.day) + "（开单 ordered " + W.day(f.order_day) + "）"],
        ["前次结果 Prior result", [W.place(f.prior_inst) + " · " + W.day(f.prior_day) + " — ", f.prior, ev.priorResource]],
        // a panel's repeated result is where its charge line is found; what was compared is below, analyte by analyte
        [paired(ev) ? "计费结果 Billed result" : "重复结果 Repeated result", ["", f.result, ev.resultResource]],
        ["医嘱 Order", f.order ? { order: ev } : "（无 none）"],
        // a panel's repeated analytes by name, their codes after them (丙氨酸氨基转移酶（ALT）)
        ["重复内容 Repeated", (f.analytes && f.analytes.length ? f.analytes.map((a) => { const n = W.said("analytes", a); return n ? n + "（" + a + "）" : a; }).join("、")
          + (f.partial ? "（部分重叠 partial overlap）" : "") : "整项 the whole item")],
        ["价格 Price", money(amount(f, "price"), f.currency) + "（" + (f.price_source === "charge" ? "收费明细 billed charge line" : "价格目录 price catalogue") + "）"],
        // HR is the national recognition mark (互认标志, "HR" for 互认) a QC-passed result carries, with the
        // scopes it is recognised in beyond the community (盐城市HR): said in words, the mark's name after them
        ["互认范围 Recognition scope", W.scope(f.basis) + (f.hr && f.hr.length ? "；前次结果另可在以下范围互认（互认标志 HR）："
          + f.hr.map(W.scope).join("、") + " (the prior result's recognition mark also covers these)" : "")],
        ["理由 Reason", f.reason ? W.reason(f.reason) + (f.reason_text ? "：" + f.reason_text : "") + (f.effect ? "（" + effect(f.effect) + "）" : "") : "（无 none）"]];
      if (f.late_reasons && f.late_reasons.length) {
        // recorded after the result: not counted (DOMAIN: the reason recorded at order time stands), shown for the auditor
        facts.push(["迟录理由 Late reason", f.late_reasons.map(W.reason).join("、") + (f.late_reason_text ? "：" + f.late_reason_text : "")
          + " — 结果之后录入，不计入 recorded after the result, not counted"]);
      }
      // the note in the site's words with Beijing times (the server's); the engine's own sentence only if none came
      // and beneath it, folded and small, the sentence as recorded (what the JSON API and a review compare)
      if (f.contradicted) facts.push(["复核提示 Review note", { note: f.contradicted_note || f.contradicted, recorded: f.contradicted_note ? f.contradicted : "" }]);
      for (const r of f.reviews || []) {
        const [rz, re] = W.status(r.decision);
        facts.push(["复核 Review", rz + " " + re + " · " + W.reviewer(r.by) + " · " + beijingTime(r.at) + "：" + r.reason]);
      }
      for (const [k, v] of facts) {
        dl.appendChild(text(document.createElement("dt"), k));
        const dd = dl.appendChild(document.createElement("dd"));
        if (Array.isArray(v)) { named(dd, v[1], v[2]); dd.insertBefore(document.createTextNode(v[0]), dd.firstChild); }
        else if (v && v.order) orderLine(dd, v.order);
        else if (v && typeof v === "object") {
          dd.appendChild(text(document.createElement("span"), v.note));
          if (v.recorded) {  // folded beneath the note: one click away, small, as the engine recorded it
            const rec = dd.appendChild(document.createElement("details"));
            rec.className = "recorded";
            rec.appendChild(text(document.createElement("summary"), "记录原文 As recorded"));
            rec.appendChild(text(document.createElement("small"), v.recorded));
          }
        }
        else text(dd, v);
      }
      // a whole item's one pair is the flag's own result and prior: where each was performed, from it
      const item = (ev.pairs || []).find((p) => !p.analyte) || {};
      text($("#ev-prior"), summarise(ev.priorResource));
      describe($("#ev-prior-words"), ev.priorResource, item.prior === f.prior ? item.priorInstitution : null);
      text($("#ev-repeat"), summarise(ev.resultResource));
      describe($("#ev-repeat-words"), ev.resultResource, item.result === f.result ? item.resultInstitution : null);
      showPairs(ev);
      const review = $("#review"); // absent for a role that may not review (an operator)
      if (review) review.hidden = !(f.status === "flagged" || f.status === "upheld" || f.status === "overturned");
      if (review && !review.dataset.sending) text($("#review-said"), "");
      $("#evidence").hidden = false;
      // keyboard and screen-reader users land on what they opened; on a phone it is below the list
      $("#ev-title").focus({ preventScroll: true });
      $("#evidence").scrollIntoView({ block: "start" });
      message("");
    } catch (e) { if (evidence.counts(mine)) message(e.message); }
  }

  async function whoami() {
    session = await window.hurenStaff.whoami("/ui/duplicates");
    if (!session) return false;
    if (!session.can.duplicates) { // a clinician: no report to show, said in words instead of a 403
      document.querySelectorAll("main > :not(#message)").forEach((e) => { e.hidden = true; });
      message("您的角色（" + session.role_zh + "）不能查看疑似重复清单；如需查看请联系系统管理员。 Your role may not see the duplicate-test report.");
      document.body.dataset.loaded = "1";
      return false;
    }
    // the status filter's choices in the session's words (the page's HTML names them only as a fallback)
    for (const opt of $("#filters").elements.status.options) if (opt.value) text(opt, W.status(opt.value).join(" "));
    if (!session.can.review) $("#review").remove(); // the API refuses it too; the page does not offer it
    return true;
  }

  async function load() {
    const mine = lists.ask();
    let q;
    try { q = filterQuery(); } // a name that matches nothing is said here, before anything is sent
    catch (e) { message(e.message); return; }
    q.set("_count", String(PAGE));
    $("#more").disabled = true; // no page of the old list while the new one is on its way
    // said while it is on its way: on a slow connection a tap on "查询" had shown nothing for seconds
    text($("#message"), "正在查询…… Loading…"); $("#message").className = "busy";
    try {
      const report = await api("/reports/duplicates?" + q.toString());
      if (!lists.counts(mine)) return; // a later load's list is the one to show
      listed = q.toString(); render(report);
      message(""); document.body.dataset.loaded = "1";
    }
    catch (e) { if (lists.counts(mine)) message(e.message); }
    finally { if (lists.counts(mine)) $("#more").disabled = false; }
  }

  for (const picker of $("#filters").querySelectorAll("input[data-picker]")) W.sayPicked(picker);
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); evidence.drop(); $("#evidence").hidden = true; load(); });
  $("#rate-by").addEventListener("change", () => load());
  $("#more").addEventListener("click", () => more());
  $("#ev-close").addEventListener("click", () => {
    evidence.drop(); // a reply still on its way does not open the evidence again
    $("#evidence").hidden = true;
    const back = document.querySelector('#flags tr.selected button.open');
    if (back) back.focus();
  });
  // A review is sent once: both buttons are off and say so while it is on its way (a second tap,
  // or Enter pressed again, had recorded the same review twice), and what became of it is said
  // beside the buttons -- on a phone the page's message line is screens above them.
  $("#review").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = $("#review"), said = $("#review-said");
    if (form.dataset.sending) return;
    const decision = e.submitter ? e.submitter.value : "upheld";
    const reason = form.elements.reason.value;
    const buttons = form.querySelectorAll("button");
    form.dataset.sending = "1"; buttons.forEach((b) => { b.disabled = true; });
    said.className = ""; text(said, "正在提交复核…… Sending the review…");
    try {
      await api("/reports/duplicates/" + encodeURIComponent(currentFlag) + "/review", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ decision, reason }) });
      const id = currentFlag; await load();
      await openFlag(id, document.querySelector('#flags tr[data-id="' + id + '"]'));
      const [zh, en] = W.status(decision);
      const done = "已记录复核：" + zh + " — " + session.display + "。 Review recorded: " + en;
      message(done, true); text(said, done); said.className = "ok";
    } catch (err) {
      // a reason the API refuses (message_time.reason_of: its English words end with the Chinese in brackets) is
      // said as what it is, Chinese first, not as the list's "查询条件有误" -- the review was not recorded; the
      // reason stays in its box to be typed again
      const zh = err.status === 400 && err.diag ? /\(([^()]*[\u4e00-\u9fff][^()]*)\)\s*$/.exec(err.diag) : null;
      const why = err.status === 400 && err.diag
        ? "复核未记录：" + (zh ? zh[1] + "。" : "") + " The review was not recorded: " + err.diag : err.message;
      message(why); text(said, why); said.className = "";
    }
    finally { delete form.dataset.sending; buttons.forEach((b) => { b.disabled = false; }); }
    // the evidence opened again moved focus and the view to its top: back to the button pressed (it
    // could not hold focus while off), with what became of the review in view
    if (e.submitter && form.isConnected) e.submitter.focus({ preventScroll: true });
    said.scrollIntoView({ block: "nearest" });
  });
  whoami().then((ok) => { if (ok) load(); });
})();
