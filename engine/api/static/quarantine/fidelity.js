// /admin/fidelity as a page (engine/api/ui_fidelity.py): the report is drawn by the server; this only
// fills the staff pages' shared header -- who is signed in, 退出登录, the links to the other staff pages
// this person may open (hurenStaff.whoami, the one place that fills it) -- and lets the filter take an
// institution by its name as the other staff pages' filters do (the address takes its code).
"use strict";
(function () {
  const W = window.hurenWords, form = document.querySelector("#filters"), said = document.querySelector("#message");
  window.hurenStaff.whoami(location.pathname + location.search); // (sends to sign in when the session ended)
  form.addEventListener("submit", (e) => {
    const box = form.elements.institution, typed = box.value.trim();
    // a code the report itself shows goes as it is: one the site no longer names (drawn 本站未登记的机构代码)
    // is not among the site's names, and codeFor had stopped it here (rv39c LOW 5)
    const shown = [...document.querySelectorAll("section.institution[data-code]")].map((s) => s.dataset.code);
    if (shown.includes(typed)) { box.value = typed; said.textContent = ""; return; }
    if (!W.names.places) return; // the site's names not come yet: what was typed goes as it is
    try { box.value = W.codeFor("places", box.value); said.textContent = ""; } // a name typed: its code
    catch (err) { e.preventDefault(); said.textContent = err.message; box.focus(); } // a name naming none: said
  });
})();
