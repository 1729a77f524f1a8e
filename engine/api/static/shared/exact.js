// Numbers as they were sent. A FHIR decimal carries its precision in its digits (0.50 mmol/L is not
// 0.5: the lab measured to two places), and huren returns them byte for byte -- but JSON.parse makes
// a JavaScript number of 0.50, and the pages showed "0.5" (and the resident's download and the
// auditor's folded JSON wrote 0.5). `parse` keeps the text of every number whose digits a number
// would change (JSON.parse's source text, Chrome 114+), beside the value, which stays a number for
// comparisons and charts; `digits(holder, key)` says it as sent; `stringify` writes it back as sent.
// One owner for the resident's page and the staff pages, and of how a measured value is said
// (`quantity`: the comparator, the digits, the unit), which both pages draw.
(function () {
  "use strict";
  const SOURCES = new WeakMap(); // holder object -> {key: source text}

  function keep(key, value, context) {
    if (typeof value === "number" && context && typeof context.source === "string" && context.source !== String(value)) {
      let texts = SOURCES.get(this);
      if (!texts) { texts = Object.create(null); SOURCES.set(this, texts); }
      texts[key] = context.source;
    }
    return value;
  }
  // When a number's JavaScript rendering (String(n)) can differ from its JSON text: a JSON number
  // is -?int(.frac)?(e±exp)?, and JavaScript writes the shortest digits that give the same double,
  // in plain notation for 1e-6 <= |n| < 1e21, with no trailing zero in a fraction and 0 for -0.
  // So it differs only for a number with
  //   - a fraction ending in 0 (0.50, 2.0);
  //   - an exponent (1e2; JavaScript writes 1e+21, 1e-7 and 100 itself, never as sent);
  //   - a magnitude under 1e-6 written out (0.0000001 reads 1e-7): "0." and six zeros;
  //   - 16 or more digits, counted across the point (12345678.123456789 reads 12345678.12345679;
  //     an integer of 22+ digits reads 1e+21): 15 significant digits always round-trip a double;
  //   - a negative zero (-0 reads 0).
  // An answer where none of these patterns occurs (anywhere, strings included: a false alarm only
  // costs time) holds no such number and is parsed without the reviver, which costs ~4x.
  const CHANGED = /\d\.\d*0(?![\d.])|\d[eE][+-]?\d|0\.0{6}|\d(?:\.?\d){15}|-0(?![.\d])/;
  /** JSON text to values, every number's digits remembered where they differ from the number's
   * (where the browser gives a reviver the source text: Chrome 114+; elsewhere as before). */
  function parse(text) { return CHANGED.test(text) ? JSON.parse(text, keep) : JSON.parse(text); }
  /** `holder[key]` as it was sent (0.50), else as a number reads ("" when absent). */
  function digits(holder, key) {
    if (!holder || holder[key] === undefined || holder[key] === null) return "";
    const texts = SOURCES.get(holder);
    const v = holder[key];
    return texts && typeof v === "number" && texts[key] !== undefined ? texts[key] : String(v);
  }
  /** JSON text of values read by `parse`, every number in the digits it was sent with. */
  function stringify(value, space) {
    return JSON.stringify(value, function (key, v) {
      const texts = typeof v === "number" ? SOURCES.get(this) : undefined;
      return texts && texts[key] !== undefined && JSON.rawJSON ? JSON.rawJSON(texts[key]) : v;
    }, space);
  }
  /** A Quantity as the lab reported it: its comparator (an assay's range: "<5", ">500" -- SN "<^5",
   * stored as ``comparator``), its digits as sent, its unit (the code when it has no unit). A value
   * beyond the assay's range drawn without its comparator is a value the lab never reported (rvui35
   * MED: the evidence page drew "<5" as "5 U/L"). A UCUM annotation unit ({INR}, {ratio}) is said
   * without its braces: they are the code's syntax, not words. "" for no quantity. */
  function quantity(q) {
    if (!q) return "";
    const unit = String(q.unit || q.code || "").replace(/^\{([^{}]*)\}$/, "$1");
    return ((q.comparator || "") + digits(q, "value") + " " + unit).trim();
  }
  window.hurenExact = { parse, digits, stringify, quantity };
})();
