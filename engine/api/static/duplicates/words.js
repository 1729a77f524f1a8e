// What the staff pages say to a person, Chinese first: a flag's status in words, dates as people in
// China read them (2026年3月3日; instants in Asia/Shanghai, never UTC), and an API failure as a plain
// sentence of what to do (not "400 Bad Request"). Shared by the duplicate-test and insurance pages.
"use strict";
window.hurenWords = (function () {
  // a flag's status (engine.recognition.reports.STATUSES) in the auditors' words, [Chinese, English],
  // from the session's words (mappings/insurance/words.yaml); a status the words do not list stays a code
  function status(code) { return (words.names.statuses || {})[code] || [String(code || ""), ""]; }

  // "2026-03-03" (a local day as the report stores it) -> "2026年3月3日"; anything else as it is
  function day(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value || ""));
    return m ? m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日" : String(value == null ? "" : value);
  }

  // "2026-03-05T06:03:00Z" -> "2026年3月5日 14:03" (Asia/Shanghai, where the bureau works). A FHIR
  // date or partial date ("2026", "2026-03", "2026-03-04") is said at its own precision, with no
  // time: it states none (Date.parse had read it as UTC midnight, shown as 08:00 of the 1st).
  const CLOCK = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "long",
    day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function instant(value) {
    const s = String(value == null ? "" : value);
    const date = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(s);
    if (date) return date[1] + "年" + (date[2] ? Number(date[2]) + "月" : "") + (date[3] ? Number(date[3]) + "日" : "");
    const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s) ? Date.parse(s) : NaN; // a time is needed to convert
    return Number.isNaN(t) ? s : CLOCK.format(new Date(t));
  }

  // Today in Beijing as "2026-03-05": the month and year a page starts at are Beijing's, whatever
  // zone the browser is set to (a browser set to UTC was still in last year on 1 January before 08:00).
  function today() {
    return window.hurenBeijing.beijingDay();
  }

  // A date or month field, typed as people in China write it (2026-03-05, 2026-03), says what it
  // holds in words beside it (2026年3月5日, 2026年3月). pages32: the fields had been the browser's own
  // pickers, drawn in the browser's language -- on an English browser or headless Chromium (whatever
  // the page's lang) 03/05/2026, the 5th of March or the 3rd of May, and "March 2026". They are text
  // fields now (data-picker="date" or "month"): anything but a real day or month is refused before
  // anything is sent, with the form it takes said in words (请按“年-月-日”填写，如 2026-03-05).
  const FORMS = { date: ["年-月-日", "2026-03-05", "year-month-day"], month: ["年-月", "2026-03", "year-month"] };
  function realValue(kind, value) {
    const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(value);
    if (!m || (kind === "date") !== (m[3] !== undefined)) return false;
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3] || 1)];
    const t = new Date(Date.UTC(y, mo - 1, d));
    return mo >= 1 && mo <= 12 && t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
  }
  function sayPicked(input) {
    const kind = input.dataset.picker === "month" ? "month" : "date";
    let out = input.parentElement.querySelector("output.said");
    if (!out) {
      out = document.createElement("output"); out.className = "said";
      out.id = input.name + "-said"; out.htmlFor = input.id || ""; input.setAttribute("aria-describedby", out.id);
      input.insertAdjacentElement("afterend", out);
    }
    const [zh, example, en] = FORMS[kind];
    const update = () => {
      const v = input.value.trim();
      if (v !== input.value) input.value = v;
      const wrong = v ? !realValue(kind, v) : input.required;
      const msg = !v ? "请填写" + (kind === "month" ? "月份" : "日期") + "，如 " + example + " Enter a " + kind + ", e.g. " + example
        : "请按“" + zh + "”填写，如 " + example + " Use " + en + ", e.g. " + example;
      input.setCustomValidity(wrong ? msg : "");
      input.toggleAttribute("aria-invalid", wrong);
      out.classList.toggle("bad", wrong);
      out.textContent = wrong ? msg : v ? instant(v) : "不限 any";
    };
    input.addEventListener("input", update); input.addEventListener("change", update);
    // said again when the form is sent (a value set by a script fires no input event); the submit
    // button's click comes before the browser checks the form
    if (input.form) {
      input.form.addEventListener("submit", update);
      for (const b of input.form.querySelectorAll("button[type=submit], button:not([type])")) b.addEventListener("click", update);
    }
    update();
    return update;
  }

  // An API failure as a sentence: what went wrong and what to do, Chinese first; the server's own
  // words (diagnostics) follow for the administrator.
  function failure(status, diag) {
    const said = diag ? "（" + diag + "）" : "";
    if (status === 0) return "无法连接服务器，请检查网络后再试。 The server cannot be reached; check the network and try again.";
    if (status === 400) return "查询条件有误，请检查后再试" + said + "。 Please check what you entered.";
    if (status === 401) return "登录已过期，正在转到登录页…… Your sign-in has expired.";
    if (status === 403) return "您的角色无权执行此操作" + said + "。 You may not do this.";
    if (status === 404) return "找不到这条记录，可能已不在您的监管范围内。 Not found.";
    if (status === 409) return "操作与当前状态冲突，请刷新后再试" + said + "。 Refresh and try again.";
    if (status === 429) return "操作过于频繁，请稍后再试。 Too many requests; try again shortly.";
    return "服务器出错，请稍后再试；如仍有问题请联系系统管理员" + said + "。 Server error; try again later.";
  }

  // fetch + JSON with the failure worded; a 401 sends the browser to sign in again, back to `page`
  async function api(path, options, page) {
    let res;
    // no-store: the reports name patients and money; the browser's cache is no place for them
    try { res = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {})); }
    catch (e) { const err = new Error(failure(0)); err.status = 0; throw err; }
    // numbers keep their digits (hurenExact): an evidence's 0.50 mmol/L had read 0.5
    const body = await res.text().then((t) => window.hurenExact.parse(t)).catch(() => null);
    if (!res.ok) {
      const diag = body && body.issue && body.issue[0] ? body.issue[0].diagnostics : "";
      if (res.status === 401) signInAgain(page);
      const err = new Error(failure(res.status, diag)); err.status = res.status; err.diag = diag; throw err;
    }
    return body;
  }

  // the session ended (idle, signed out in another tab): the sign-in page says so and comes back here
  function signInAgain(page) {
    location.assign("/ui/signin?expired=1&next=" + encodeURIComponent(page || location.pathname + location.search));
  }

  // A code as people know it, from the site's words that come with the session (/ui/session: its
  // institutions, re-test reasons and recognition scopes); a code the site does not list stays a code.
  // An institution is its name with its code (the code is what the filters take); a reason its code
  // with its words (R04 急诊急救 ...); a scope its name (community: 医共体内).
  function place(code) {
    const name = (words.names.places || {})[code];
    return name ? name + "（" + code + "）" : String(code == null ? "" : code);
  }
  // An institution's name alone (its code when the site does not name it): where the code would not
  // fit, as under a chart's bar (the bar's title still says both).
  function placeName(code) {
    return (words.names.places || {})[code] || String(code == null ? "" : code);
  }
  function reason(code) {
    const said = (words.names.reasons || {})[code];
    return said ? code + " " + said : String(code == null ? "" : code);
  }
  function scope(code) {
    if (!code || code === "community") return "医共体内互认 community";
    if (code === "optional") return "可选互认 optional";
    return (words.names.scopes || {})[code] || String(code);
  }

  // Any other code the session's words name (communities, insurance_types, effects,
  // result_statuses, roles, measures, steps, spans), with its {placeholders} filled: "" when the
  // words do not list it, so the caller decides what to show instead.
  function said(kind, code, fills) {
    const words_ = (words.names[kind] || {})[code];
    if (words_ == null) return "";
    return String(words_).replace(/\{(\w+)\}/g, (m, k) => (fills && fills[k] != null ? String(fills[k]) : m));
  }
  // What a person typed into a filter that takes a code (an institution, an item, a community), as
  // the code: the code itself, the site's name for it (阜宁县中医院), or both as the pages write them
  // (阜宁县中医院（FNZYY）). Anything else matches nothing the site has: an Error saying so (e.g.
  // 没有名为“阜宁医共体”的医共体), thrown before anything is sent -- a name sent as typed had found
  // nothing and said nothing. The one way every filter turns a name into a code.
  const KINDS = { places: "机构 institution", items: "检验检查项目 test", communities: "医共体 medical community" };
  function codeFor(kind, typed) {
    const v = String(typed || "").trim(), table = words.names[kind] || {};
    // own keys only: "constructor" or "toString" is in every object, and had been sent as a code
    if (!v || Object.hasOwn(table, v) || (words.codes[kind] || []).includes(v)) return v;
    const both = /^(.*)（([^（）]+)）$/.exec(v);
    if (both && Object.hasOwn(table, both[2])) return both[2];
    const named = Object.keys(table).filter((code) => table[code] === v);
    if (named.length === 1) return named[0];
    // the Chinese word, then the English in full ("medical community": split at every space, the
    // English had read "No medical is named 阜宁医共体")
    const label = KINDS[kind] || "名称 name", cut = label.indexOf(" ");
    const zh = label.slice(0, cut), en = label.slice(cut + 1);
    const err = new Error("没有名为“" + v + "”的" + zh + "，请从列表中选择或检查拼写。 No " + en + " is named " + v + ".");
    err.unknown = kind; throw err;
  }
  // A medical community by its name with its code (the filters take the code): 阜宁县医共体（funing）
  function community(code) {
    const name = said("communities", code);
    return name ? name + "（" + code + "）" : "医共体 " + String(code == null ? "" : code);
  }
  // What a figure is for: a medical community (the whole-site auditor's reports), or one institution
  // (an auditor bound to it), each by its name; a code neither lists stays as it is.
  function unit(code) {
    if (said("communities", code)) return community(code);
    return place(code);
  }
  // Who reviewed, from the review's author as the API records it ("staff:wang.li 王丽 (auditor)"):
  // the person's name and role in words (王丽（审核员）); another form of author is shown as it is.
  function reviewer(label) {
    const m = /^staff:(\S+)(?: (.+?))? \((\S+)\)$/.exec(String(label || ""));
    if (!m) return String(label || "");
    return (m[2] || m[1]) + "（" + (said("roles", m[3]) || m[3]) + "）";
  }

  // Only the latest request's reply counts. A page asks again before an answer has come (a new
  // filter, another flag opened, another month); on a slow connection the older reply can land
  // last, and shown it would put the old figures, or the other flag's evidence, under what the
  // person asked for now. Each kind of request has one `latest()`: `ask()` starts a new request
  // and gives its ticket, `join()` the ticket of the one now current (a further page of the same
  // list), `drop()` makes every reply on its way stale (the view it was for was closed), and
  // `counts(ticket)` says whether a reply with that ticket may still be shown.
  function latest() {
    let asked = 0;
    return {
      ask() { asked += 1; return asked; },
      join() { return asked; },
      drop() { asked += 1; },
      counts(ticket) { return ticket === asked; },
    };
  }

  const words = { status, day, instant, failure, api, signInAgain, latest, today, sayPicked, place, placeName, reason, scope,
    said, community, unit, reviewer, codeFor, names: {}, codes: {} };
  return words;
})();
