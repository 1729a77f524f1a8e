// Money as it is read in China, one owner for every page that shows an amount: the figure to the fen
// with its thousands grouped, then the word the page's words give its currency (words.yaml
// ``currencies``: CNY -> 元) -- "2,550.25 元". The auditors' duplicates page had its own rule
// ("CNY 10.00", "金额 ¥20.00") beside the insurance page's (ui36). The figure is made from the amount's
// decimal digits, never through a float: Number(1.005).toFixed(2) is "1.00" and 0.125 reads "0.13" only
// by luck of its binary form; here a digit past the fen rounds half away from zero on the digits
// themselves, as the engine rounds money (ROUND_HALF_UP, engine.insurance.tiers).
(function () {
  "use strict";
  /** The decimal text of an amount: a string as it is ("8600.00", or hurenExact.digits' text as sent),
   * a number as JavaScript writes it (the shortest digits of its double: a JSON number of up to 15
   * significant digits reads back as sent), an exponent written out. "" for none. */
  function decimalText(v) {
    if (v === null || v === undefined || v === "") return "";
    let s = String(v).trim();
    const e = /^([+-]?)(\d*)(?:\.(\d*))?[eE]([+-]?\d+)$/.exec(s);
    if (e) { // 1e21, 1.5e-7: the point moved along the digits
      const digits = (e[2] || "") + (e[3] || ""), point = (e[2] || "").length + Number(e[4]);
      s = e[1] + (point <= 0 ? "0." + "0".repeat(-point) + digits
        : point >= digits.length ? digits + "0".repeat(point - digits.length) : digits.slice(0, point) + "." + digits.slice(point));
    }
    return /^[+-]?(\d+\.?\d*|\.\d+)$/.test(s) ? s : "";
  }
  /** One added to a string of digits ("0999" -> "1000"). */
  function increment(digits) {
    const d = digits.split("");
    for (let i = d.length - 1; i >= 0; i -= 1) {
      if (d[i] !== "9") { d[i] = String(Number(d[i]) + 1); return d.join(""); }
      d[i] = "0";
    }
    return "1" + d.join("");
  }
  /** An amount to `places` decimals (2: the fen; 0: whole yuan), its thousands grouped: "2,550.25",
   * "-490.00". "—" where there is no amount (an absent price is not 0.00). */
  function figure(v, places) {
    const p = places === undefined ? 2 : places;
    const s = decimalText(v);
    if (!s) return "—";
    const m = /^([+-]?)(\d*)\.?(\d*)$/.exec(s);
    const whole = (m[2] || "0"), frac = m[3] || "";
    let kept = whole + (frac + "0".repeat(p)).slice(0, p);
    if (frac.length > p && frac[p] >= "5") kept = increment(kept); // half away from zero, on the digits
    let int = kept.slice(0, kept.length - p).replace(/^0+(?=\d)/, "") || "0";
    const fen = p ? kept.slice(kept.length - p) : "";
    int = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const zero = !/[1-9]/.test(int + fen);
    return (m[1] === "-" && !zero ? "-" : "") + int + (p ? "." + fen : "");
  }
  /** An amount with its unit as a reader says it: the figure, then `word` (the page's words for the
   * currency code: 元), else the code itself after the figure ("12.00 USD"). */
  function said(v, currency, word) {
    const f = figure(v);
    return f === "—" ? f : (f + " " + (word || currency || "")).trim();
  }
  window.hurenMoney = { figure, said, decimalText };
})();
