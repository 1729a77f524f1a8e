// What the staff pages share (the duplicate-test page and the settlement and indicators page): bar
// charts (SVG, no library) and the signed-in person in the header (every staff page's: the header is
// ui_shared's staff_header.html, on the refused-messages and fidelity pages too).
"use strict";
window.hurenStaff = (function () {
  // Who is signed in (/ui/session), shown in the header with the sign-out form's CSRF token; null
  // (after sending the browser to the sign-in page) when nobody is.
  // The body a signed-in person belongs to, by its name (institutions.yaml, or the words' places for
  // the bureau); a code the site names nowhere is said to be a code, not shown as if a name
  // (pages32: an auditor of FNYBJ read "审核员 auditor · FNYBJ") -- its name is never guessed.
  function whose(code) {
    const W = window.hurenWords;
    return W.placeName(code) !== String(code) ? W.place(code) : "机构代码 " + code + "（本站未登记名称 name not listed）";
  }

  async function whoami(page) {
    let res;
    try { res = await fetch("/ui/session", { credentials: "same-origin" }); }
    catch (e) { document.querySelector("#message").textContent = window.hurenWords.failure(0); return null; }
    if (res.status === 401) { window.hurenWords.signInAgain(page); return null; } // words.js decides how
    if (!res.ok) { // any other failure is the server's, not the sign-in's: said on the page, no loop to sign in
      const body = await res.json().catch(() => null);
      const diag = body && body.issue && body.issue[0] ? body.issue[0].diagnostics : "";
      document.querySelector("#message").textContent = window.hurenWords.failure(res.status, diag);
      return null;
    }
    const session = await res.json();
    // every code name the pages show comes from here (the server's one owner of them, ui_signin._names)
    const names = {};
    for (const kind of ["places", "reasons", "scopes", "items", "analytes", "roles", "measures", "communities", "insurance_types",
      "statuses", "effects", "result_statuses", "steps", "spans", "currencies", "funds"]) names[kind] = session[kind] || {};
    window.hurenWords.names = names;
    window.hurenWords.codes = { communities: session.community_codes || [] }; // codes the site has but may not name
    // a filter that takes a code offers the site's names to choose from (the code is what is sent)
    for (const input of document.querySelectorAll("input[data-names]")) {
      const kind = input.dataset.names, id = "choices-" + kind;
      let list = document.getElementById(id);
      if (!list) {
        list = document.body.appendChild(document.createElement("datalist")); list.id = id;
        for (const [code, name] of Object.entries(names[kind] || {})) {
          const opt = list.appendChild(document.createElement("option")); opt.value = code; opt.label = name;
        }
      }
      input.setAttribute("list", id);
    }
    document.querySelector("#who-name").textContent = session.display + " (" + session.name + ")";
    document.querySelector("#who-role").textContent = session.role_zh + " " + session.role_en + " · " +
      whose(session.institution) + (session.remit ? " · 监管范围 remit " + window.hurenWords.unit(session.remit) : "");
    document.querySelector("#signout [name=csrf]").value = session.csrf;
    // the header's links to the other staff pages (ui_shared.STAFF_PAGES): each shown as the policy allows
    for (const link of document.querySelectorAll("header nav a[data-can]")) link.hidden = !(session.can && session.can[link.dataset.can]);
    document.querySelector("#who").hidden = false; // (last: a shown bar is a filled header)
    return session;
  }
  return { whoami };
})();
window.hurenCharts = (function () {
  const NS = "http://www.w3.org/2000/svg";
  function label(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function rect(svg, d, x, y, width, height) {
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("class", "bar" + (d.cls ? " " + d.cls : "")); r.setAttribute("x", x); r.setAttribute("y", y);
    r.setAttribute("width", width); r.setAttribute("height", height);
    r.setAttribute("data-label", d.label); r.setAttribute("data-value", d.value);
    return svg.appendChild(r);
  }
  function words(svg, value, x, y, anchor) {
    const t = document.createElementNS(NS, "text"); t.setAttribute("x", x); t.setAttribute("y", y);
    if (anchor) t.setAttribute("text-anchor", anchor);
    return svg.appendChild(label(t, value));
  }
  // A phone's chart (narrower than 480 px): one line a bar, its whole label above it and its value at
  // the end, so no label is cut to fit a column a few pixels wide or drawn over its neighbour's.
  function rows(svg, data, format, w) {
    const line = 38, max = Math.max(1e-9, ...data.map((d) => Math.abs(d.value)));
    svg.style.height = Math.max(40, data.length * line + 4) + "px";
    data.forEach((d, i) => {
      const y = i * line;
      words(svg, d.name || d.label, 0, y + 12);
      words(svg, format(d.value), w - 2, y + 12, "end"); // inside the edge: a glyph's box (元) overhangs its advance
      const r = rect(svg, d, 0, y + 17, Math.max(1, ((w - 2) * Math.max(0, d.value)) / max), 14);
      r.appendChild(label(document.createElementNS(NS, "title"), (d.name || d.label) + ": " + format(d.value)));
    });
  }
  // data: [{label, value, cls?, name?, tick?}] (name: the words shown for the label, a code's name; tick:
  // what fits under a wide chart's bar, else the last `keep` (8) characters of the name); bars scaled to the largest value; a negative value is drawn as 0 high.
  function bar(svg, data, format) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.style.height = "";
    drawn.set(svg, [data, format]);
    const w = svg.clientWidth || 500, h = 180, pad = 22;
    if (!data.length) { // an empty chart says so, instead of a blank box under its title
      svg.style.height = "40px";
      words(svg, "所选范围内没有数据 No data in this range", 0, 24).setAttribute("class", "empty");
      return;
    }
    if (w < 480) return rows(svg, data, format, w);
    const max = Math.max(1e-9, ...data.map((d) => Math.abs(d.value)));
    const bw = (w - pad) / data.length;
    const ticks = [], values = [], tops = [];
    data.forEach((d, i) => {
      const bh = ((h - 2 * pad) * Math.max(0, d.value)) / max;
      const r = rect(svg, d, pad + i * bw + 2, h - pad - bh, Math.max(1, bw - 4), bh);
      tops.push(h - pad - bh);
      r.appendChild(label(document.createElementNS(NS, "title"), (d.name || d.label) + ": " + format(d.value)));
      ticks.push(words(svg, d.tick || String(d.name || d.label).slice(-(d.keep || 8)), pad + i * bw + 2, h - 6));
      values.push(words(svg, format(d.value), pad + i * bw + 2, Math.max(10, h - pad - bh - 3)));
    });
    fit(ticks, values, tops, bw, w);
  }
  // Many bars (a month of days) leave each a few pixels: labels written side by side ran into one
  // another ("3月1日3月2日3月3日…"). Only every k-th label is written, k the fewest bars a label
  // needs; a value that does not fit across its bar is written upwards along it, and left to the
  // bar's title (shown on pointing, read by screen readers) when even that does not fit.
  function fit(ticks, values, tops, bw, w) {
    const widest = (list) => Math.max(0, ...list.map((t) => t.getComputedTextLength()));
    const k = Math.max(1, Math.ceil((widest(ticks) + 6) / bw));
    ticks.forEach((t, i) => { if (i % k || Number(t.getAttribute("x")) + t.getComputedTextLength() > w) t.remove(); }); // none cut at the edge
    if (widest(values) + 2 <= bw) return;
    values.forEach((v, i) => {
      if (bw < 12) { v.remove(); return; }
      // upwards from just above its bar (from the top of the chart's room when the bar is tall)
      const x = Number(v.getAttribute("x")) + bw / 2 + 2, top = tops[i] - 3;
      const y = Math.max(v.getComputedTextLength() + 2, top);
      v.setAttribute("x", x); v.setAttribute("y", y); v.setAttribute("class", "upright");
      v.setAttribute("transform", "rotate(-90 " + x + " " + y + ")");
    });
  }
  // drawn again when the screen's width changes (a phone turned sideways), in the layout that fits it
  const drawn = new Map();
  let pending = 0;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => drawn.forEach(([data, format], svg) => {
      if (svg.isConnected) bar(svg, data, format); else drawn.delete(svg);
    }), 150);
  });
  return { bar };
})();
