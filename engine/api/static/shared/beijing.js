// Beijing's wall clock, whatever zone the browser or phone is set to (a phone abroad, a browser set to
// UTC): the records, the clinics, the month an auditor reviews and a resident's own day are China's.
// One owner for the staff pages (words.js) and the resident's page (i18n.js), which had each built it.
(function () {
  "use strict";
  const PARTS = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  /** [year, month, day, hour, minute] of the instant `t` on Beijing's clock, as two-digit texts. */
  function beijing(t) {
    const p = {};
    for (const part of PARTS.formatToParts(t)) p[part.type] = part.value;
    return [p.year, p.month, p.day, p.hour, p.minute];
  }
  /** Today in Beijing as a FHIR date (2026-09-20), `years` years on (29 Feb -> 1 Mar). */
  function beijingDay(years) {
    const [y, mo, d] = beijing(new Date());
    if (!years) return `${y}-${mo}-${d}`;
    return new Date(Date.UTC(Number(y) + years, Number(mo) - 1, Number(d))).toISOString().slice(0, 10);
  }
  window.hurenBeijing = { beijing, beijingDay };
})();
