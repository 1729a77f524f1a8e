// What the staff pages say to a person, Chinese first: a flag's status in words, dates as people in
// China read them (2026年3月3日; instants in Asia/Shanghai, never UTC), and an API failure as a plain
// sentence of what to do (not "400 Bad Request"). Shared by the duplicate-test and insurance pages.
"use strict";
window.hurenWords = (function () {
  // the report's status codes (engine.recognition.reports.STATUSES) in the auditors' words
  const STATUS = {
    flagged: ["待复核", "open"], upheld: ["已维持（不予支付）", "upheld"], overturned: ["已撤销", "overturned"],
    justified: ["有理由复查", "justified"], self_pay: ["自费复查", "self-pay"], reported: ["仅报告", "reported only"],
    void: ["已作废", "void"],
  };
  function status(code) { return STATUS[code] || [String(code || ""), ""]; }

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
    try { res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {})); }
    catch (e) { const err = new Error(failure(0)); err.status = 0; throw err; }
    const body = await res.json().catch(() => null);
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

  return { status, day, instant, failure, api, signInAgain };
})();
