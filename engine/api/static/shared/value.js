// A result's value as the lab reported it, one owner for every page that draws one: the resident's
// page (me/values.js) and the auditors' evidence (duplicates/app.js). The evidence had its own reader,
// which knew a quantity, a text and a coded finding only, so a titer (OBX-2 SN ^1^:^320, stored as a
// valueRatio) or a range (SN 10^-^20, NR: a valueRange) was evidence with no value (rv36b LOW 9); the
// resident's page said them, but dropped a titer's comparator (<1:128 read 1/128) and a range's unit.
// Every value[x] the converter writes (adapters/convert/results.py) is said here, in the digits it was
// sent with (shared/exact.js), and nothing is said that the record does not state.
(function () {
  "use strict";
  const exact = () => window.hurenExact; // shared/exact.js, loaded before this file

  // The words a value is said with, in each language the pages speak ("zh-CN", "en": the resident's
  // page's language keys): yes/no, and why a result has no value (R4 data-absent-reason; the
  // v2-to-FHIR IG's "cannot-be-obtained" for OBX-11 X). A page passes its language's; the auditors'
  // page, Chinese first, both (`words("zh-CN", "en")`).
  const WORDS = {
    "zh-CN": {
      yes: "是", no: "否",
      absent: { unknown: "结果不详", "asked-unknown": "不详", "temp-unknown": "暂时不详", "not-asked": "未检测",
        "asked-declined": "本人未提供", masked: "已隐去", "not-applicable": "不适用", unsupported: "无法显示",
        "as-text": "见文字说明", error: "检测出错", "not-a-number": "不是数值", "negative-infinity": "低于可测范围",
        "positive-infinity": "高于可测范围", "not-performed": "未做", "not-permitted": "不允许检测",
        "cannot-be-obtained": "未能测出" },
    },
    en: {
      yes: "Yes", no: "No",
      absent: { unknown: "Not known", "asked-unknown": "Not known", "temp-unknown": "Not known yet",
        "not-asked": "Not tested", "asked-declined": "Declined", masked: "Withheld", "not-applicable": "Not applicable",
        unsupported: "Cannot be shown", "as-text": "See the text", error: "Test error", "not-a-number": "Not a number",
        "negative-infinity": "Below the measurable range", "positive-infinity": "Above the measurable range",
        "not-performed": "Not done", "not-permitted": "Not permitted", "cannot-be-obtained": "Could not be measured" },
    },
  };

  /** The words of `langs` joined, the first language first ("是 Yes", "未检测 Not tested"): a page
   * in one language passes one. A code one language does not word is left to the others. */
  function words(...langs) {
    const tables = langs.map((l) => WORDS[l] || WORDS.en);
    const join = (pick) => tables.map(pick).filter(Boolean).join(" ");
    const codes = new Set(tables.flatMap((t) => Object.keys(t.absent)));
    const absent = {};
    for (const code of codes) absent[code] = join((t) => t.absent[code]);
    return { yes: join((t) => t.yes), no: join((t) => t.no), absent };
  }

  /** A CodeableConcept in words: its text, else its first coding's display, else its first code. */
  function concept(cc) {
    if (!cc) return "";
    const codings = cc.coding || [];
    return cc.text || (codings.find((c) => c.display) || {}).display || (codings.find((c) => c.code) || {}).code || "";
  }

  const unitOf = (q) => String((q && (q.unit || q.code)) || "");
  /** A Range as stated: "10–20 /HP" (one unit said once), "3.9 mmol/L–6.1 g/L" (two); an open end is
   * the bound the record states, said as one: "≥10 /HP", "≤5.0 mmol/L" (R4: a Range's bounds are
   * inclusive, a missing one unbounded) -- "–5.0" would read as minus five. "" for neither. */
  function range(r) {
    const q = exact().quantity, lo = r && r.low, hi = r && r.high;
    const has = (b) => b && b.value !== undefined && b.value !== null;
    if (has(lo) && has(hi)) {
      if (unitOf(lo) === unitOf(hi)) return ((lo.comparator || "") + exact().digits(lo, "value") + "–" + q(hi)).trim();
      return q(lo) + "–" + q(hi);
    }
    if (has(lo)) return "≥" + q(lo);
    if (has(hi)) return "≤" + q(hi);
    return "";
  }
  /** A Ratio as a titer is written: "1:320", "<1:128" (a titre's comparator is its numerator's, as the
   * converter stores SN <^1^:^128), each side's unit after its digits when it has one. SN's separator
   * (":" or "/") is not kept by FHIR; ":" is the Ratio's own notation. */
  function ratio(r) {
    const q = exact().quantity;
    const n = q(r && r.numerator), d = q(r && r.denominator);
    return n && d ? n + ":" + d : "";
  }

  /** `o`'s value (an Observation, or one of its components) as the lab reported it, in `w`'s words
   * (`words(...)`, with `when(dateTime)`: how the page says a date or instant -- on Beijing's clock).
   * Kinds: Quantity ("<5 U/L", shared/exact.js), text, coded finding (阴性), integer, yes/no, Range,
   * Ratio, time, date or date-time, Period, a component list ("收缩压 120 mmHg; 舒张压 80 mmHg"), else
   * why there is no value (dataAbsentReason: its text, else its code in words). "" for none. */
  function said(o, w) {
    if (!o) return "";
    const when = (w && w.when) || String;
    if (o.valueQuantity) return exact().quantity(o.valueQuantity);
    if (o.valueString !== undefined && o.valueString !== null) return String(o.valueString);
    if (o.valueCodeableConcept) return concept(o.valueCodeableConcept);
    if (o.valueInteger !== undefined && o.valueInteger !== null) return exact().digits(o, "valueInteger");
    if (o.valueBoolean !== undefined && o.valueBoolean !== null) return o.valueBoolean ? w.yes : w.no;
    if (o.valueRange) return range(o.valueRange);
    if (o.valueRatio) return ratio(o.valueRatio);
    if (o.valueTime) return String(o.valueTime);
    if (o.valueDateTime) return when(o.valueDateTime);
    if (o.valuePeriod) {
      const p = o.valuePeriod;
      return p.start || p.end ? (p.start ? when(p.start) : "") + "–" + (p.end ? when(p.end) : "") : "";
    }
    if (o.component && o.component.length) return o.component.map((c) => `${concept(c.code)} ${said(c, w)}`.trim()).join("; ");
    // why there is no value, in words: the codes (not-asked, cannot-be-obtained) carry no display
    const why = o.dataAbsentReason;
    if (!why) return "";
    const code = ((why.coding || [])[0] || {}).code;
    return why.text || (code && w && w.absent && Object.hasOwn(w.absent, code) ? w.absent[code] : "") || concept(why);
  }

  window.hurenValue = { said, words, concept, range };
})();
