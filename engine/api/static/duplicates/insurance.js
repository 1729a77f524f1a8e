// The settlement and indicators page for /reports/settlement and /reports/indicators. Plain DOM,
// no framework, no network beyond this server; the API decides what the signed-in person may see.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const EXT = "urn:huren:StructureDefinition:measure-figures";
  const ALERT = "urn:huren:StructureDefinition:indicator-alert";
  let session = null;

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function el(tag, value, cls) { const e = text(document.createElement(tag), value); if (cls) e.className = cls; return e; }
  function row(cells, classes, labels) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => {
      const td = tr.appendChild(el("td", c, (classes || [])[i]));
      if (labels) td.dataset.label = labels[i]; // the card layout's caption at phone width
    });
    return tr;
  }
  function message(where, msg, ok) { text($(where), msg); $(where).className = ok ? "ok" : ""; }

  async function api(path) {
    try { return await window.hurenWords.api(path, {}, "/ui/insurance" + location.search); }
    catch (e) {
      // the settlement's own 409: the site's rules lack a setting an administrator must give. Said
      // in words: its diagnostics (the server's file path and line, the rule's English field names)
      // are for the administrator, who reads them with the command on the server, not on this page
      if (e.status === 409) throw new Error("结算规则缺少必要的设置，暂时无法结算。请联系系统管理员补全"
        + "（管理员在服务器上运行“huren settle 年度”即可看到缺少哪一项）。"
        + " The settlement rules need a setting first; an administrator can see which with huren settle on the server.");
      throw e;
    }
  }

  // A proportion as a percentage, a ratio or a count as the number. Which it is comes from the
  // measure's definition, not from the number (a rate of exactly 1 had been shown as "1") nor from a
  // stated denominator (a ratio has one too: 2 downward referrals per upward one had read "200.00%").
  function shown(q, percent) {
    if (!q || q.value == null) return "—";
    if (q.unit === "1") return percent ? (100 * q.value).toFixed(2) + "%" : String(q.value);
    return money(window.hurenExact.digits(q, "value"), q.code || q.unit); // its digits as sent
  }
  // Money as it is read in China (shared/money.js, the one formatter of every page that shows money):
  // the figure to the fen with its thousands grouped, on its digits (never a float's rounding), then
  // the unit's word from the session (mappings/insurance/words.yaml ``currencies``: CNY -> 元) --
  // "2,550.25 元", not "CNY 2550.25". A currency the words do not name keeps its code after the figure.
  function money(v, currency) {
    return window.hurenMoney.said(v, currency, window.hurenWords.said("currencies", currency));
  }
  // measure url -> is its score read as a percentage, from the published Measures: FHIR's
  // proportion is a percentage of its population; any other scoring is one when its definition
  // says so with R5's scoringUnit (UCUM "%", the cross-version extension) -- out-of-pocket share and
  // spending growth are ratios read as percentages. The report's value is not changed, only shown
  // at 100 times ("1" to "%" by UCUM). Null until they are read; asked again at the next load when
  // they could not be read.
  const SCORING_UNIT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Measure.scoringUnit";
  let percents = null;
  function readAsPercent(measure) {
    const code = (((measure.scoring || {}).coding || [])[0] || {}).code;
    const unit = (measure.extension || []).find((x) => x.url === SCORING_UNIT);
    const ucum = unit ? (((unit.valueCodeableConcept || {}).coding || []).find((c) => c.system === "http://unitsofmeasure.org") || {}).code : null;
    return ucum ? ucum === "%" : code === "proportion";
  }
  async function definitions() {
    if (percents) return percents;
    const found = {};
    try {
      const bundle = await window.hurenWords.api("/fhir/Measure?_count=100", {}, "/ui/insurance" + location.search);
      for (const e of bundle.entry || []) if (e.resource.url) found[e.resource.url] = readAsPercent(e.resource);
    } catch (e) { return null; } // a role that may not read them (403), or no network: said by the note
    percents = found;
    return found;
  }
  // Without the definitions no figure can be known to be a percentage: each is shown as its number,
  // and the page says why rather than leaving "0.6667" unexplained.
  function definitionsNote(defs) {
    const note = $("#ind-note");
    note.hidden = defs !== null;
    text(note, defs === null ? "无法读取指标定义，不能显示百分比：以下数值均为原始比值（如 0.5 即 50%）。" +
      " The indicator definitions could not be read, so no figure is shown as a percentage." : "");
  }
  function isPercent(report) { return (percents || {})[report.measure] === true; }
  function figures(g, raw) {
    const ext = (g.extension || []).find((e) => e.url === EXT);
    if (!ext) return ["", ""];
    const part = (url) => ext.extension.find((p) => p.url === url);
    // a count (duplicate tests, referrals out of the county) states no denominator: shown as "—", not 0;
    // an amount states its unit (measures.yaml numerator_unit: the money of admissions' charge lines)
    // and is shown as money, "5,100.50 元" -- its bare 5100.5 read as neither yuan nor to the fen
    return ["numerator", "denominator"].map((url) => {
      if (!part(url)) return "—";
      const unit = (part(url + "Unit") || {}).valueCoding;
      const value = window.hurenExact.digits(part(url), "valueDecimal"); // as sent
      return !raw && unit && unit.system === "urn:iso:std:iso:4217" ? money(value, unit.code) : value;
    });
  }
  // a measure by its published title (measures.yaml, through the session's words), else its id
  function titleOf(measure) { return window.hurenWords.said("measures", measure) || measure.split("/").pop(); }

  function renderIndicators(bundle) {
    const reports = bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === "MeasureReport");
    const flags = bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === "Flag");
    const rates = {}; // measure id -> a percentage? (an alert's code is the measure's with -above/-below)
    for (const r of reports) rates[r.measure.split("/").pop()] = isPercent(r);
    const alerts = $("#alerts"); alerts.replaceChildren();
    if (!flags.length) alerts.appendChild(el("li", "本月无预警 No alerts this month"));
    for (const f of flags) {
      const detail = ((f.extension || []).find((e) => e.url === ALERT) || { extension: [] }).extension;
      const level = (detail.find((p) => p.url === "level") || {}).valueCode || "warning";
      const score = (detail.find((p) => p.url === "score") || {}).valueQuantity;
      const who = f.subject.identifier.value, display = f.subject.display;
      // a community's alert names the community (阜宁县医共体（funing）), an institution's the institution:
      // the bare code "funing" had been shown (place() knows institutions only)
      const named = display && display !== who ? display + "（" + who + "）" : window.hurenWords.unit(who);
      const li = el("li", (level === "alert" ? "告警 ALERT " : "预警 warning ") + named + "：" + f.code.text +
        (score ? " — " + shown(score, rates[f.code.coding[0].code.replace(/-(above|below)$/, "")]) : ""), level);
      li.dataset.code = f.code.coding[0].code; li.dataset.subject = f.subject.identifier.value;
      alerts.appendChild(li);
    }
    alerts.dataset.count = flags.length;
    // a rate with nothing to divide by has no score: the "—" it is shown as is said in words above the
    // table, so that an empty month is not read as a month of zeros or as a broken page (pages31)
    $("#ind-empty").hidden = !reports.some((r) => !r.group[0].measureScore && Number(figures(r.group[0], true)[1]) === 0);
    const body = $("#indicators tbody"); body.replaceChildren();
    const charts = $("#ind-charts"); charts.replaceChildren();
    for (const r of reports) {
      const g = r.group[0];
      const who = ((r.reporter || {}).identifier || {}).value || "";
      const [num, den] = figures(g);
      const tr = row([titleOf(r.measure), window.hurenWords.unit(who), shown(g.measureScore, isPercent(r)), num, den], ["", "", "num", "num", "num"],
        ["指标 Indicator", "范围 For", "数值 Value", "分子 Numerator", "分母 Denominator"]);
      tr.dataset.measure = r.measure.split("/").pop(); tr.dataset.value = g.measureScore ? g.measureScore.value : "";
      body.appendChild(tr);
      const byInst = (g.stratifier || []).find((s) => s.code[0].text === "institution");
      if (!byInst || !byInst.stratum.length) continue;
      const fig = document.createElement("figure");
      fig.appendChild(el("figcaption", titleOf(r.measure) + " · " + window.hurenWords.unit(who) + " 按机构 by institution"));
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("role", "img"); svg.setAttribute("aria-label", titleOf(r.measure));
      svg.dataset.measure = r.measure.split("/").pop();
      fig.appendChild(svg); charts.appendChild(fig);
      const unit = g.measureScore ? g.measureScore.unit : "1";
      window.hurenCharts.bar(svg, byInst.stratum.filter((s) => s.measureScore).map((s) => ({
        label: s.value.text, name: window.hurenWords.place(s.value.text),
        tick: window.hurenWords.placeName(s.value.text).slice(0, 8), value: Number(s.measureScore.value),
        cls: flags.some((f) => f.subject.identifier.value === s.value.text && r.measure.endsWith(f.code.coding[0].code.replace(/-(above|below)$/, ""))) ? "over" : "",
      })), (v) => shown({ value: v, unit }, isPercent(r)));
    }
  }

  // The settlement's steps in Chinese, from each step's key and the rate it applied, in the words of
  // the session (mappings/insurance/words.yaml); the API's label, in English, follows in small type
  // for whoever checks it against `huren settle`.
  const fixed = (v) => window.hurenMoney.figure(v); // to the fen, thousands grouped (the heading names the unit: 元)
  // an amount's size, its sign dropped on its digits (the words say which way it goes)
  const size = (v) => window.hurenMoney.decimalText(v).replace(/^[+-]/, "");
  const pctOf = (share) => String(+(Number(share) * 100).toFixed(4)) + "%";
  function span(label) { // "overspend 0 %–5 %: ..." / "surplus above 15 %: ..." -> "0%–5% 段" / "15% 以上部分"
    const m = /(\d+(?:\.\d+)?) %–(\d+(?:\.\d+)?) %/.exec(label), above = /above (\d+(?:\.\d+)?) %/.exec(label);
    return m ? window.hurenWords.said("spans", "between", { low: m[1], high: m[2] })
      : above ? window.hurenWords.said("spans", "above", { low: above[1] }) : "";
  }
  function stepWords(step, months) {
    let key = step.step; // the steps said two ways have a key for each
    if (key === "prepaid" && months) key = "prepaid-months";
    else if (key === "fund-pays") key = /overspend/.test(step.label) ? "fund-pays-overspend" : "fund-pays-surplus";
    else if (key === "year-end") key = Number(step.amount) > 0 ? "year-end-pays" : Number(step.amount) < 0 ? "year-end-returns" : "year-end-even";
    return window.hurenWords.said("steps", key, { share: step.share == null ? "" : pctOf(step.share), span: span(step.label), months });
  }
  function stepRow(step) {
    const months = (/prepaid in (\d+) months/.exec(step.label) || [])[1];
    const zh = stepWords(step, months);
    const tr = document.createElement("tr"); tr.dataset.step = step.step;
    const what = tr.appendChild(el("td", zh || step.label));
    if (zh) { what.appendChild(document.createTextNode(" ")); what.appendChild(el("small", step.label)); }
    // the year-end's words say which way the money goes (医共体退还基金 / 基金向医共体补付): the amount
    // beside them is its size, as the totals line says it ("医共体退还基金 -490.00" read as a double
    // negative); without the words the signed amount stays
    const amount = zh && step.step === "year-end" ? size(step.amount) : step.amount;
    tr.appendChild(el("td", fixed(amount), "num"));
    return tr;
  }
  // The community's totals keep only what adds up across its funds: the budgets, the spending, what
  // was prepaid and what the funds pay over the year (each fund's figure plus the other's). The
  // year-end is not among them: each settlement is one insurance type's fund, and a fund pays or is
  // paid back on its own (below).
  function totalsLine(t) {
    const p = el("p", "合计（各险种之和）：", "totals");
    [["预算 ", t.budget], ["支出 ", t.spending], ["已预付 ", t.prepaid], ["基金全年支付 ", t.fund_pays]].forEach(([what, v], i) => {
      if (i) p.appendChild(document.createTextNode(" · "));
      p.appendChild(el("span", what + fixed(v))).style.display = "inline-block"; // a word with its figure, on a phone too
    });
    p.appendChild(document.createTextNode(" "));
    p.appendChild(el("small", "Totals of the funds: budget, spending, prepaid, fund pays"));
    return p;
  }
  // a settlement's direction -> the key of its words (steps, words.yaml) and its English for the small print
  const YEAR_END = { "fund-pays": ["year-end-fund-pays", "the fund pays "],
    "community-returns": ["year-end-fund-returns", "the community returns "] };
  const EVEN = ["year-end-fund-even", "settled "];
  // The year-end fund by fund, who pays whom and how much (the residents' fund pays 3,600.00 元; the
  // community returns 490.00 元 to the employees' fund). One line "基金补付 3110.00" had netted the
  // two: separate funds, so no fund pays 3,110 -- a figure an auditor or the insurance bureau would
  // act on wrongly. The report's net
  // (totals.balance, kept for the API's readers) is not shown: it is no payment. The words are the
  // session's (steps year-end-fund-*), the money said as the indicators say it (money(): grouped, to
  // the fen, 元).
  function yearEnd(settlements, currency) {
    const p = el("p", "年终清算（各基金分别结算）：", "totals year-end");
    settlements.forEach((s, i) => {
      // the fund's name from the words (funds), else the settlement rules' name for its insurance type
      const fund = window.hurenWords.said("funds", s.insurance_type) || s.name || s.insurance_type;
      const words = window.hurenWords.said("steps", (YEAR_END[s.direction] || EVEN)[0],
        { fund, amount: money(size(s.balance), currency) }) || fund + " " + fixed(s.balance);
      if (i) p.appendChild(document.createTextNode("；"));
      // a fund's words and its amount kept on one line where they fit: on a phone the words had
      // broken mid-phrase, and the amount from its unit
      const one = p.appendChild(el("span", words, "fund"));
      one.style.display = "inline-block"; one.dataset.fund = s.insurance_type;
    });
    p.appendChild(document.createTextNode(" "));
    p.dataset.funds = String(settlements.length);
    p.appendChild(el("small", "Year-end, fund by fund (never netted): " + settlements.map((s) => s.insurance_type + ": "
      + (YEAR_END[s.direction] || EVEN)[1] + fixed(size(s.balance))).join("; ")));
    return p;
  }
  function renderSettlement(report) {
    const out = $("#settlement"); out.replaceChildren();
    for (const region of report.regions) {
      for (const c of region.communities) {
        const sec = document.createElement("div"); sec.className = "community"; sec.dataset.community = c.community;
        // the year and the unit of every amount below, in words: "(2026, CNY)" had left the tables'
        // bare figures (1000.00) to a currency code
        const unit = window.hurenWords.said("currencies", report.currency);
        sec.appendChild(el("h3", region.name + " · " + window.hurenWords.community(c.community) + " · " + report.year
          + "年度 · 金额单位：" + (unit ? unit + "（" + report.currency + "）" : report.currency)));
        const fig = document.createElement("figure");
        fig.appendChild(el("figcaption", "预算、支出与基金支付 Budget, spending and what the fund pays"));
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg"); svg.setAttribute("class", "settlement-chart");
        svg.setAttribute("role", "img"); svg.setAttribute("aria-label", "预算、支出与基金支付 budget, spending, fund pays");
        fig.appendChild(svg); sec.appendChild(fig);
        const bars = [];
        for (const s of c.settlements) {
          const short = window.hurenWords.said("insurance_types", s.insurance_type) || s.name || s.insurance_type; // its short word
          bars.push({ label: short + " 预算", value: Number(s.budget), keep: 30 });
          bars.push({ label: short + " 支出", value: Number(s.spending), cls: Number(s.spending) > Number(s.budget) ? "over" : "spend", keep: 30 });
          bars.push({ label: short + " 基金支付", value: Number(s.fund_pays), cls: "fund", keep: 30 });
          const table = document.createElement("table"); table.className = "steps";
          table.appendChild(el("caption", s.name + "：" + s.lines + " 条费用明细 charge lines"));
          const tb = document.createElement("tbody");
          for (const step of s.steps) tb.appendChild(stepRow(step));
          table.appendChild(tb); sec.appendChild(table);
        }
        const pc = c.primary_care;
        const pcWords = pc.share == null ? "没有计入结算的支出" : "基层医疗机构支出 " + fixed(pc.spending) + "，占 " + fixed(pc.of) + " 的 "
          + pctOf(pc.share) + "（要求不低于 " + pctOf(pc.min_share) + "）";
        const pcLine = el("p", "基层占比：" + pcWords + " — " + (pc.met ? "达标" : "未达标") + " ", pc.met ? "ok" : "alert");
        pcLine.appendChild(el("small", "Primary care: " + pc.label + (pc.met ? " — met" : " — NOT met")));
        sec.appendChild(pcLine);
        sec.appendChild(totalsLine(c.totals));
        sec.appendChild(yearEnd(c.settlements, report.currency));
        out.appendChild(sec);
        setTimeout(() => window.hurenCharts.bar(svg, bars, (v) => window.hurenMoney.figure(v, 0)), 0); // whole yuan, grouped
      }
    }
    out.dataset.loaded = "1";
  }

  // Which month's indicators and which year's settlement are to be shown: each load asks for a new
  // one and a reply for an older one is dropped -- else March asked, then April, and March's slower
  // reply landed last and was shown under "April".
  const months = window.hurenWords.latest(), years = window.hurenWords.latest();
  async function loadIndicators() {
    const mine = months.ask();
    const form = $("#indicators-form");
    const q = new URLSearchParams({ month: form.elements.month.value });
    let community;
    try { community = window.hurenWords.codeFor("communities", form.elements.community.value); } // a name typed: its code
    catch (e) { // no such community: said, nothing sent, and the last month's figures taken away with it
      $("#alerts").replaceChildren(); $("#indicators tbody").replaceChildren(); $("#ind-charts").replaceChildren();
      // and the notes about those figures with them ("数值为“—”的指标……" had stayed above an empty table)
      $("#ind-empty").hidden = true; $("#ind-note").hidden = true;
      delete $("#indicators").dataset.month; message("#message", e.message); return;
    }
    if (community) q.set("community", community);
    message("#message", "正在查询…… Loading…"); $("#message").className = "busy"; // said while on its way
    try {
      const [bundle, defs] = await Promise.all([api("/reports/indicators?" + q), definitions()]);
      if (!months.counts(mine)) return;
      definitionsNote(defs);
      renderIndicators(bundle); message("#message", "");
      $("#indicators").dataset.month = q.get("month"); document.body.dataset.indicators = "1";
    }
    catch (e) { if (months.counts(mine)) message("#message", e.message); }
  }
  async function loadSettlement() {
    const mine = years.ask();
    const form = $("#settlement-form");
    const q = new URLSearchParams({ year: form.elements.year.value });
    let community;
    try { community = window.hurenWords.codeFor("communities", form.elements.community.value); } // a name typed: its code
    catch (e) { // no such community: said, nothing sent (the report had come back empty, or a remit's 403)
      $("#settlement").replaceChildren(); message("#set-message", e.message);
      document.body.dataset.settlement = "1"; return;
    }
    if (community) q.set("community", community);
    $("#settlement").replaceChildren();
    message("#set-message", "正在结算…… Settling…"); $("#set-message").className = "busy";
    try {
      const report = await api("/reports/settlement?" + q);
      if (!years.counts(mine)) return;
      renderSettlement(report); message("#set-message", "");
      $("#settlement").dataset.year = q.get("year");
    }
    catch (e) {
      if (!years.counts(mine)) return;
      // the settlement's 404 is "no rules for that year (or community)", not a record gone from the remit
      message("#set-message", e.status === 404 ? q.get("year") + "年" + (q.get("community") ? "医共体 " + q.get("community") + " " : "")
        + "没有结算规则（预算），无法结算。请选择已设预算的年度，或请系统管理员在结算规则中加入该年度。 No budget is set for that year."
        // a bound auditor's 403 is their remit, not their role: a settlement is of a whole medical community
        : e.status === 403 && session && session.remit ? "结算按医共体进行，您的监管范围（" + window.hurenWords.unit(session.remit)
          + "）不包含一个完整的医共体，因此不能查看结算。 The settlement is of a whole medical community, which your remit does not cover."
        : e.message);
    }
    document.body.dataset.settlement = "1";
  }

  async function whoami() {
    session = await window.hurenStaff.whoami("/ui/insurance" + location.search);
    return session !== null;
  }

  // last month and this year in Beijing (the browser's own zone had been used)
  const [thisYear, thisMonth] = window.hurenWords.today().split("-").map(Number);
  const lastMonth = thisMonth === 1 ? (thisYear - 1) + "-12" : thisYear + "-" + String(thisMonth - 1).padStart(2, "0");
  const params = new URLSearchParams(location.search);
  $("#indicators-form").elements.month.value = params.get("month") || lastMonth;
  $("#settlement-form").elements.year.value = params.get("year") || String(thisYear);
  if (params.get("community")) {
    $("#indicators-form").elements.community.value = params.get("community");
    $("#settlement-form").elements.community.value = params.get("community");
  }
  window.hurenWords.sayPicked($("#indicators-form").elements.month);
  $("#indicators-form").addEventListener("submit", (e) => { e.preventDefault(); loadIndicators(); });
  $("#settlement-form").addEventListener("submit", (e) => { e.preventDefault(); loadSettlement(); });
  whoami().then(async (ok) => {
    if (!ok) return;
    if (!session.can.insurance) {
      document.querySelectorAll("main section").forEach((sec) => { sec.hidden = true; });
      message("#message", "您的角色（" + session.role_zh + "）不能查看结算与指标；如需查看请联系系统管理员。 Your role may not see the settlement and indicators.");
      document.body.dataset.loaded = "1"; return;
    }
    await Promise.all([loadIndicators(), loadSettlement()]);
    document.body.dataset.loaded = "1";
  });
})();
