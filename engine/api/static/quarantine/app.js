// The operator's page of refused messages: /admin/quarantine with the page session (its CSRF token
// echoed on the replay). Plain DOM, no framework, nothing from the internet; every value is put on
// the page as text (textContent), never as HTML, so a message's bytes cannot become markup.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const W = window.hurenWords;
  const PAGE = 50;
  let session = null;
  let words = { codes: {}, reasons: [], acks: {}, severities: {}, segments: {}, fields: {}, messages: {}, channels: {} };
  let patterns = []; // [regexp, words] of huren's own reasons, in the data's order
  let shown = 0, total = 0, listed = "", current = null;
  const lists = W.latest(), details = W.latest();

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function el(tag, value, cls) { const e = text(document.createElement(tag), value); if (cls) e.className = cls; return e; }
  function cell(tr, value, cls, label) { const td = el("td", value, cls); if (label) td.dataset.label = label; tr.appendChild(td); return td; }
  function message(msg, ok) { text($("#message"), msg); $("#message").className = ok ? "ok" : ""; }
  function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (opts.method && opts.method !== "GET" && session) opts.headers["X-CSRF-Token"] = session.csrf;
    return W.api(path, opts, "/ui/quarantine" + location.search);
  }

  // --- what an ERR says, in Chinese (mappings/quarantine/words.yaml) -------------------------------
  function ack(code) { const w = words.acks[code]; return w ? code + " " + w : String(code || "—"); }
  function codeWords(code) { return words.codes[String(code)] || ""; }
  // The sending institution by its name; a code the site does not register (an AR's usual reason) is
  // said to be one, not shown bare as if it were a name (pages34: "FNNEWHOSP")
  function facility(code) {
    if (!code) return "（未知 unknown）";
    return W.placeName(code) !== String(code) ? W.place(code) : code + "（本站未登记的机构代码 not registered）";
  }
  // MSH-9 with what it is (ADT^A04 门诊登记（挂号）): the event's words, else the message code's
  function messageType(type) {
    if (!type) return "—";
    const said = words.messages[type] || words.messages[String(type).split("^")[0]];
    return said ? type + " " + said : type;
  }
  // how it came, in words: "http · 127.0.0.1 client=interface-engine http-charset=GB18030" had been shown
  // as stored -> HTTP 接口（POST /hl7v2） · 来自 127.0.0.1 · 接口账号 interface-engine · 字符集 GB18030
  function channel(m) {
    const parts = [m.channel ? words.channels[m.channel] || m.channel : "—"];
    const peer = String(m.peer || "").trim();
    if (peer) {
      const file = /^file:(.*?)(?:#(\d+))?$/.exec(peer);
      if (file) parts.push("文件 " + file[1] + (file[2] != null ? " 第 " + file[2] + " 条" : ""));
      else for (const token of peer.split(/\s+/)) {
        const kv = /^(client|http-charset)=(.*)$/.exec(token);
        parts.push(!kv ? "来自 " + token : kv[1] === "client" ? "接口账号 " + kv[2] : "字符集 " + kv[2]);
      }
    }
    return parts.join(" · ");
  }
  // a filled value's English terms in Chinese (a reason's ``terms``, the longest first): ui_quarantine._termed
  function termed(value, terms) {
    for (const english of Object.keys(terms).sort((a, b) => b.length - a.length)) value = value.split(english).join(terms[english]);
    return value;
  }
  function explain(e) {
    if (!e.segment && e.location) { // a replay's answer names the place as "PID-3.1"
      const at = /^([A-Z][A-Z0-9]{2})(?:-(\d+)(?:\.(\d+))?)?$/.exec(e.location);
      if (at) e = Object.assign({}, e, { segment: at[1], field: at[2] ? Number(at[2]) : null, component: at[3] ? Number(at[3]) : null });
    }
    const seg = e.segment || "";
    const segment = seg ? seg + (words.segments[seg] ? " " + words.segments[seg] : "") + (e.sequence > 1 ? "（第 " + e.sequence + " 个）" : "") : "—";
    const key = seg && e.field != null ? seg + "-" + e.field : "";
    const field = key ? key + (e.component != null ? "." + e.component : "") + (words.fields[key] ? " " + words.fields[key] : "") : "—";
    const english = String(e.message || "");
    let reason = "";
    for (const [re, zh, terms] of patterns) {
      const m = re.exec(english);
      if (m) { reason = zh.replace(/\{(\w+)\}/g, (all, k) => (m.groups && m.groups[k] != null ? termed(m.groups[k], terms) : all)); break; }
    }
    const said = codeWords(e.code);
    if (!reason) reason = said || "错误代码 " + e.code; // a code the table does not list stays its code
    const code = String(e.code == null ? "" : e.code) + (said ? " " + said : "（未知代码 unknown code）")
      + (e.severity && e.severity !== "E" ? " · " + (words.severities[e.severity] || e.severity) : "");
    return { segment, field, reason, code, english };
  }
  function reasonCell(td, x) { // the Chinese, then huren's own English sentence for whoever traces it
    const box = el("div", x.reason); // one box: on a phone the cell is a grid of caption and value
    if (x.english && x.english !== x.reason) box.appendChild(el("small", "原文 " + x.english, "en"));
    td.replaceChildren(box);
    return td;
  }

  // --- the list ---------------------------------------------------------------------------------------
  function beijingMidnight(day) { return day + "T00:00:00+08:00"; }
  function nextDay(day) {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  }
  function filterQuery() {
    const f = $("#filters").elements, q = new URLSearchParams();
    const facility = W.codeFor("places", f.facility.value); // a name typed: its code; an unknown one is said
    if (facility) q.set("facility", facility);
    if (f.from.value) q.set("since", beijingMidnight(f.from.value)); // the days are Beijing's
    if (f.to.value) q.set("before", beijingMidnight(nextDay(f.to.value)));
    if (f.from.value && f.to.value && f.from.value > f.to.value) throw new Error("起始日期晚于截止日期，请检查。 The From date is after the To date.");
    return q;
  }
  function remember() { // the filters in the address: a reload, or signing in again, comes back to them
    const f = $("#filters").elements, q = new URLSearchParams();
    for (const name of ["facility", "from", "to"]) if (f[name].value) q.set(name, f[name].value);
    history.replaceState(null, "", "/ui/quarantine" + (q.toString() ? "?" + q.toString() : ""));
  }
  function row(m, held) {
    const tr = document.createElement("tr"); tr.className = "msg"; tr.dataset.id = m.id;
    const first = cell(tr, "", "when", "接收时间（北京时间） Received");
    const open = el("button", W.instant(m.received_at), "open"); open.type = "button";
    open.setAttribute("aria-label", "查看消息 Open: " + W.instant(m.received_at) + " " + facility(m.facility) + " " + (m.control_id || ""));
    first.appendChild(open);
    cell(tr, facility(m.facility), "", "发送机构 Institution");
    cell(tr, messageType(m.message_type), "", "消息类型 Type");
    cell(tr, m.control_id || "—", "", "控制号 Control id");
    if (held) cell(tr, kinds(m).map((k) => KINDS[k]).join("、"), "kind", "类别 Kind"); // (reg41)
    cell(tr, ack(m.ack_code), "ack ack-" + m.ack_code, "应答 ACK");
    // a held change's row says the hold (its W 204, or W 205: an ID number's; reg41), a refused message's its first error (ord40)
    const errs = (m.errors || []).filter(held ? (e) => HELD_CODES.has(String(e.code)) && e.severity === "W" : (e) => e.severity !== "W" && e.severity !== "I");
    const first_ = errs[0] || (m.errors || [])[0];
    const reason = first_ ? explain(first_).reason + (errs.length > 1 ? "（另有 " + (errs.length - 1) + " 项）" : "") : (m.reason || "—");
    cell(tr, reason, "reason", "原因 Reason");
    open.addEventListener("click", () => openMessage(m.id, tr));
    tr.addEventListener("click", (e) => { if (e.target !== open) openMessage(m.id, tr); });
    return tr;
  }
  function counted() {
    text($("#list-count"), total ? (shown < total ? "已显示 " + shown + " 条，共 " + total + " 条 · showing " + shown + " of " + total : "共 " + total + " 条 · " + total + " in all") : "");
    $("#list-count").dataset.total = total; $("#list-count").dataset.shown = shown;
    $("#more").hidden = shown >= total;
  }
  async function load() {
    const mine = lists.ask();
    let q;
    try { q = filterQuery(); } catch (e) { message(e.message); return; }
    remember();
    text($("#message"), "正在查询…… Loading…"); $("#message").className = "busy";
    q.set("_count", String(PAGE));
    try {
      const page = await api("/admin/quarantine?" + q.toString());
      if (!lists.counts(mine)) return;
      listed = q.toString(); total = page.total; shown = 0;
      const body = $("#messages tbody"); body.replaceChildren();
      for (const m of page.items) { body.appendChild(row(m)); shown += 1; }
      if (!total) {
        const tr = document.createElement("tr"); tr.className = "empty";
        const td = el("td", "所选范围内没有拒收的消息。 No refused messages match these filters."); td.colSpan = 6;
        tr.appendChild(td); body.appendChild(tr);
      }
      counted(); message(""); document.body.dataset.loaded = "1";
    } catch (e) { if (lists.counts(mine)) message(e.message); }
  }
  // the messages accepted with a change held (W 204, GET /admin/held; ord40): the operator decides on them
  async function loadHeld() {
    let q;
    try { q = filterQuery(); } catch (e) { return; } // (a wrong range: the refused list says so)
    q.set("_count", String(PAGE));
    try {
      const page = await api("/admin/held?" + q.toString());
      const body = $("#held tbody"); body.replaceChildren();
      for (const m of page.items) body.appendChild(row(m, true));
      if (!page.total) {
        const tr = document.createElement("tr"); tr.className = "empty";
        const td = el("td", "没有暂未采用的更改。 No held changes."); td.colSpan = 7;
        tr.appendChild(td); body.appendChild(tr);
      }
      text($("#held-count"), page.total ? (page.count < page.total ? "已显示 " + page.count + " 条，共 " + page.total + " 条" : "共 " + page.total + " 条")
        + " · " + page.total + " held" : "");
      $("#held-count").dataset.total = page.total;
      document.body.dataset.held = "1";
    } catch (e) { message(e.message); }
  }
  async function more() {
    const button = $("#more"); if (button.disabled) return;
    button.disabled = true;
    const mine = lists.join(), q = new URLSearchParams(listed); q.set("_offset", String(shown));
    try {
      const page = await api("/admin/quarantine?" + q.toString());
      if (!lists.counts(mine)) return;
      for (const m of page.items) { $("#messages tbody").appendChild(row(m)); shown += 1; }
      total = page.total; counted();
    } catch (e) { message(e.message); } finally { button.disabled = false; }
  }

  // --- one message ------------------------------------------------------------------------------------
  const STATUS = { quarantined: "拒收，待处理 refused, waiting", processed: "已处理 processed", received: "已收到，处理中 received" };
  async function openMessage(id, tr, keep) {
    const mine = details.ask();
    try {
      const m = await api("/admin/quarantine/" + encodeURIComponent(id));
      if (!details.counts(mine)) return;
      show(m, tr, keep);
    } catch (e) { if (details.counts(mine)) message(e.message); }
  }
  function show(m, tr, keep) {
    current = m;
    document.querySelectorAll("#messages tr.selected, #held tr.selected").forEach((r) => r.classList.remove("selected"));
    if (tr) tr.classList.add("selected");
    text($("#d-id"), m.id);
    const facts = [["接收时间 Received", W.instant(m.received_at) + "（北京时间）"],
      ["发送机构 Institution", facility(m.facility)], ["发送系统 Application", m.application || "—"],
      ["消息类型 Type", messageType(m.message_type) + (m.version ? " · HL7 " + m.version : "")], ["控制号 Control id", m.control_id || "—"],
      ["应答 ACK", ack(m.ack_code)], ["状态 Status", STATUS[m.status] || m.status],
      ["通道 Channel", channel(m)]];
    // a replay's time is Beijing's as the receipt's is, and said so (it had stood bare under the
    // receipt's "（北京时间）"); who did it by their sign-in name
    // a decision "as later" the write did not use (it answered nothing: ``decision.used`` false, the
    // replay's answer or the message's record of its last decision) is said as asked, not taken (ordfix35)
    for (const r of m.replays || []) {
      const unused = r.as === "later" && (r.used === false
        || (m.decision && m.decision.at === r.at && m.decision.used === false));
      if (r.as === "owner") { // the operator's decision on a held change, with its reason (ord40)
        facts.push(["按号码所有者的更改处理 Taken as the owner's", W.instant(r.at) + "（北京时间） · 决定人 " + r.by
          + (r.reason ? " · 理由：" + r.reason : "")]);
        continue;
      }
      facts.push([r.as !== "later" ? "重新处理 Replayed" : unused ? "要求按较新处理（未使用） Asked as later, not used"
        : "按较新处理 Taken as later",
        W.instant(r.at) + "（北京时间） · " + (r.as === "later" ? "决定人 " : "操作人 ") + r.by]);
    }
    const dl = $("#d-facts"); dl.replaceChildren();
    for (const [k, v] of facts) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    const body = $("#errs tbody"); body.replaceChildren();
    for (const e of m.errors || []) {
      const x = explain(e), r = document.createElement("tr");
      cell(r, x.segment, "seg", "段 Segment"); cell(r, x.field, "field", "字段 Field");
      reasonCell(cell(r, "", "reason", "原因 Reason"), x); cell(r, x.code, "code", "代码 Code");
      body.appendChild(r);
    }
    if (!(m.errors || []).length) {
      const r = document.createElement("tr"); r.className = "empty";
      cell(r, m.status === "processed" ? "已处理，没有错误。 Processed, no errors." : m.reason || "—", "reason").colSpan = 4;
      body.appendChild(r);
    }
    text($("#d-raw"), m.text); // as text: escaped, whatever the message holds
    text($("#d-codec"), m.text_codec ? "（字符集 " + m.text_codec + "）" : "");
    $("#replay-box").hidden = !(session.can.replay && m.status === "quarantined");
    $("#later-box").hidden = !(session.can.replay && m.status === "quarantined" && untold(m));
    $("#owner-box").hidden = !(session.can.replay && m.status === "processed" && ownable(m));
    $("#owner-why").hidden = aboutRecord(m); $("#owner-why-id").hidden = !kinds(m).includes("id-number"); // (reg41)
    $("#owner-why-merge").hidden = !kinds(m).includes("merge"); // (a held merge: persons.merge_refused, idn43)
    barred(m); // (a number another record holds, a record merged away: said before any confirmation; regfix41b)
    if (!keep) {
      $("#owner-reason").value = ""; $("#owner-reason").removeAttribute("aria-invalid");
      text($("#replay-said"), ""); $("#replay-said").className = "";
    }
    $("#detail").hidden = false;
    $("#d-title").focus({ preventScroll: true });
    if (!keep) $("#detail").scrollIntoView({ block: "start" });
    message("");
  }

  // refused because its order against a stored result cannot be told (ERR-3 206): the operator may decide
  // it is the later one (POST .../replay?as=later, order35); never one whose own MSH-7 is unusable (102)
  function untold(m) { return (m.errors || []).some((e) => String(e.code) === "206" && (e.severity || "E") === "E"); }
  // accepted with a change held under a number of this order (not another order's: no decision makes it this one's):
  // the operator may take it as the owner's (POST .../owner, ord40)
  // -- nor a held ID-number change whose decision is barred now (GET /admin/quarantine/{id}'s ``unavailable``: the number
  // held by another record, or the record merged into another; the decision would be refused 409; regfix41b)
  function ownable(m) { return (m.held_claims || []).some((c) => !c.elsewhere && !c.unavailable); }
  // why a held ID-number change cannot be decided, in Chinese, the other record by its MRN at the sender (never the
  // other person's name or number): shown in place of the decision
  function barred(m) {
    const c = (m.held_claims || []).find((x) => x.unavailable && !x.elsewhere), box = $("#owner-barred");
    box.hidden = !(m.status === "processed" && c);
    if (box.hidden) return;
    const u = c.unavailable, other = u.mrn ? "病历号 " + u.mrn : "无本机构病历号的病历 " + (u.record || "");
    // another member's record (regfix41c): named by that member institution, never its MRN
    const member = !u.merged && !u.mrn && !!u.member;
    $("#owner-barred-held").hidden = !!u.merged || member; $("#owner-barred-merged").hidden = !u.merged;
    $("#owner-barred-member").hidden = !member;
    box.querySelectorAll(".other").forEach((s) => text(s, other));
    box.querySelectorAll(".member").forEach((s) => text(s, u.member || ""));
  }
  // what a held message's holds are about (reg41): an order's change (ord40's claims, no kind) or a record's resident ID
  // number (persons._hold_renumber: kind "id-number") -- the list's 类别 column and the decision's words
  // ... or a merge held (persons._merges_held: kind "merge"; idn43)
  const KINDS = { order: "医嘱更改 Order", "id-number": "身份证号更改 ID number", merge: "病历合并 Merge" };
  const HELD_CODES = new Set(["204", "205"]);
  function kinds(m) {
    const found = new Set((m.held_claims || []).map((c) => c.kind === "id-number" || c.kind === "merge" ? c.kind : "order"));
    return ["order", "id-number", "merge"].filter((k) => found.has(k));
  }
  // about a record (its ID number, a merge), not an order: the order's words hidden
  function aboutRecord(m) { const k = kinds(m); return k.length > 0 && !k.includes("order"); }
  function heldChange(m) {
    const k = kinds(m);
    return !aboutRecord(m) ? "其对医嘱的更改" : k.includes("merge") && k.includes("id-number") ? "其病历合并及对病历身份证号的更改"
      : k.includes("merge") ? "其病历合并" : "其对病历身份证号的更改";
  }

  function said(outcome) { // the replay's answer, in Chinese: the new ACK and why
    const box = $("#replay-said"); box.replaceChildren();
    const ok = outcome.ack_code === "AA";
    box.className = ok ? "ok" : "bad"; box.dataset.ack = outcome.ack_code;
    const n = (outcome.resources || []).length;
    box.appendChild(el("p", ok ? "重新处理成功：" + ack("AA") + "，写入 " + n + " 条记录。这条消息已移出拒收清单。"
      : "重新处理后仍未通过：" + ack(outcome.ack_code) + "。原因如下，消息仍在拒收清单中。"));
    const errs = (outcome.errors || []).filter((e) => !ok || e.severity !== "E");
    if (errs.length) {
      const ul = box.appendChild(document.createElement("ul"));
      for (const e of errs) {
        const x = explain(e), li = ul.appendChild(document.createElement("li"));
        li.appendChild(document.createTextNode([x.segment !== "—" ? x.segment : "", x.field !== "—" ? x.field : "", x.reason].filter(Boolean).join(" / ")));
        li.appendChild(el("small", "原文 " + x.english + " · " + x.code, "en"));
      }
    }
  }
  async function replay(later) {
    if (!current) return;
    const id = current.id, button = later ? $("#later") : $("#replay"), box = $("#replay-said");
    if (button.disabled) return;
    button.disabled = true; box.className = "busy"; text(box, later ? "正在按较新处理…… Taking it as later…" : "正在重新处理…… Replaying…");
    const reload = !later && $("#reload").checked; // (as later: the message as it was refused, the site as it runs)
    try {
      const outcome = await api("/admin/quarantine/" + encodeURIComponent(id) + "/replay"
        + (later ? "?as=later" : reload ? "?reload_site=true" : ""), { method: "POST" });
      await load(); // a message that went through leaves the list
      if (outcome.status === "quarantined") {
        await openMessage(id, document.querySelector('#messages tr[data-id="' + CSS.escape(id) + '"]'), true);
      } else if (current && current.id === id) { // no longer refused: /admin/quarantine/{id} answers for refused
        // messages only, so the page says what the replay made of it from the replay's own answer
        details.drop();
        const entry = outcome.decided ? { at: outcome.decided.at, by: outcome.decided.by, as: "later", used: outcome.decided.used }
          : { at: new Date().toISOString(), by: session.name || "" };
        show(Object.assign({}, current, { status: outcome.status, ack_code: outcome.ack_code, errors: outcome.errors || [],
          replays: (current.replays || []).concat([entry]) }), null, true);
      }
      said(outcome);
      if (outcome.decided && outcome.ack_code === "AA") { // (used: the decision answered a comparison -- ordfix35)
        const older = (outcome.errors || []).some((e) => e.severity === "W" && /not later/.test(e.message || ""));
        box.insertBefore(el("p", outcome.decided.used
          ? "已按较新处理：决定人 " + outcome.decided.by + "，写入的记录注明由您决定。 Taken as later; what it wrote names you as the one who decided."
          : older ? "未使用您的决定：发送方自身的发送时间表明该消息较早，仍按较早保留，已存结果未被覆盖；写入的记录未注明您为决定人。"
            + " Your decision was not used: the sender's own time shows this message older, so the stored result stands; no record names you."
          : "未使用您的决定：各项先后已能按发送时间判断，按发送时间处理；写入的记录未注明您为决定人。"
            + " Your decision was not used: every order could be told from the sending times; no record names you."),
        box.firstChild.nextSibling);
      }
      box.scrollIntoView({ block: "nearest" });
    } catch (e) {
      const changed = e.status === 409 && /changed after the refusal|the refusal did not name/.test(e.diag || ""); // (ingest's RecordChanged)
      if (later && changed) { // its refusal now names what is stored
        try { await load(); await openMessage(id, document.querySelector('#messages tr[data-id="' + CSS.escape(id) + '"]'), true); } catch (x) { /* the answer below stands */ }
      }
      box.className = "bad";
      text(box, e.status === 422 ? "站点配置文件有误，没有重新读取，仍使用原来的配置；消息未重新处理（" + e.diag + "）。 The site files have a mistake; nothing was replayed."
        : changed
          ? (/refused before versions were recorded/.test(e.diag)
            ? "不能按较新处理：这条消息拒收时未记录所比较的结果版本，无法确认拒收之后该结果是否已被改写。本次未写入任何内容。请先“重新处理”，让系统按现存版本再次判断，再决定。"
            : /the refusal did not name/.test(e.diag)
            ? "不能按较新处理：这条消息拒收时只记录了第一个无法判断先后的结果版本，另有拒收前已存的结果版本当时未列出（并非拒收后被改写）。本次未写入任何内容；拒收原因已更新为全部相关版本，请核实后再决定。"
            : "不能按较新处理：拒收之后，该结果已被其他消息改写。您的决定只针对拒收时显示的版本，本次未写入任何内容；拒收原因已更新为现存版本，请核实后再决定。")
            + "（" + e.diag + "） " + (/the refusal did not name/.test(e.diag)
              ? "Not taken as later: the refusal did not name every version; nothing was written."
              : "Not taken as later: the record changed after the refusal; nothing was written.")
          : e.status === 409 ? "不能按较新处理（" + e.diag + "）。 Not taken as later." : e.message);
    } finally { button.disabled = false; }
  }

  $("#replay").addEventListener("click", () => {
    if (!current) return;
    text($("#confirm-text"), "将按" + ($("#reload").checked ? "重新读取后的" : "当前的") + "站点配置再处理一次消息 "
      + (current.control_id || current.id) + "（" + facility(current.facility) + "）。若通过，消息中的数据将写入档案。此操作会记入审计日志。");
    $("#confirm").returnValue = "";
    $("#confirm").showModal();
    $("#confirm-no").focus();
  });
  $("#confirm").addEventListener("close", () => { if ($("#confirm").returnValue === "yes") replay(false); else $("#replay").focus(); });
  $("#later").addEventListener("click", () => {
    if (!current) return;
    text($("#confirm-later-text"), "消息 " + (current.control_id || current.id) + "（" + facility(current.facility) + "）将按原样重新处理，"
      + "凡无法从发送时间判断先后的比较，一律按“本消息较新”处理，以本消息的结果为准（例如恢复被撤回的结果或写入更正）。"
      + "若发送方自己的发送时间表明本消息较旧，仍不会覆盖。写入的记录（Provenance）和审计日志将记录您是决定人。请仅在已核实本消息确为较新报告时确认。");
    $("#confirm-later").returnValue = "";
    $("#confirm-later").showModal();
    $("#confirm-later-no").focus();
  });
  $("#confirm-later").addEventListener("close", () => { if ($("#confirm-later").returnValue === "yes") replay(true); else $("#later").focus(); });
  // the operator's decision on a held change: a reason first (required), a confirmation, then POST .../owner (ord40)
  async function takeAsOwner() {
    if (!current) return;
    const id = current.id, button = $("#owner"), box = $("#replay-said"), reason = $("#owner-reason").value.trim();
    if (button.disabled) return;
    button.disabled = true; box.className = "busy"; text(box, "正在按号码所有者的更改处理…… Taking it as the owner's…");
    const wasRecord = aboutRecord(current); // (what was held: the words of the answer; reg41)
    const taken = kinds(current).includes("id-number") ? "病历已采用本消息的身份证号" : "两份病历已合并"; // (idn43)
    const takenEn = !wasRecord ? "the order took it" : kinds(current).includes("id-number")
      ? "the record took the message's ID number" : "the two records are merged"; // (the lead: the order's words for all)
    try {
      const outcome = await api("/admin/quarantine/" + encodeURIComponent(id) + "/owner",
        { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason: reason }) });
      await loadHeld(); // a change taken leaves the list
      const d = outcome.decided || {};
      if (current && current.id === id) { // no longer held: the page says what the decision made of it from its answer
        details.drop();
        const entry = { at: d.at, by: d.by, as: "owner", reason: d.reason };
        // decided already (by another operator, another tab): held no longer, its decision shown and the reason
        // box gone -- there is nothing left to decide (rv40f LOW 9, ordfix40)
        const had = (current.replays || []).some((r) => r.as === "owner" && r.at === d.at);
        show(Object.assign({}, current, outcome.already
          ? { held_claims: [], decision: d, replays: had ? current.replays : (current.replays || []).concat([entry]) }
          : { status: outcome.status, ack_code: outcome.ack_code,
            errors: outcome.errors || [], held_claims: outcome.held_claims || [],
            replays: (current.replays || []).concat([entry]) }), null, true);
      }
      box.replaceChildren(); box.dataset.ack = outcome.ack_code || "";
      if (outcome.already) {
        box.className = "ok";
        box.appendChild(el("p", "这条消息的更改此前已按号码所有者的更改处理（决定人 " + (d.by || "") + "，" + W.instant(d.at) + "，理由："
          + (d.reason || "") + "），本次未重复处理。 Already taken as the owner's; nothing was done again."));
      } else if (outcome.ack_code === "AA" && d.used) {
        box.className = "ok";
        box.appendChild(el("p", "已按号码所有者的更改处理：" + (wasRecord ? taken : "医嘱已采用本消息的更改") + "。决定人 " + d.by + "，理由：" + d.reason
          + "。写入的记录（Provenance）已注明决定人，理由记入审计日志与本消息的处理记录。 Taken as the owner's change; " + takenEn + ", and you are recorded with your reason."));
      } else {
        box.className = "bad";
        box.appendChild(el("p", "处理后仍未采用：" + ack(outcome.ack_code) + "。 The change was still not taken."));
      }
    } catch (e) {
      box.className = "bad";
      text(box, e.status === 409 && /changed after the hold/.test(e.diag || "")
        ? (wasRecord ? "不能按号码所有者的更改处理：暂未采用之后，该病历已被其他消息改写。您的决定只针对当时显示的版本，本次未写入任何内容。请先“重新处理”，让系统按现存病历再次判断，再决定。（" + e.diag + "） Not taken: the record changed after the hold; nothing was written."
          : "不能按号码所有者的更改处理：暂未采用之后，该医嘱已被其他消息改写。您的决定只针对当时显示的版本，本次未写入任何内容。请先“重新处理”，让系统按现存医嘱再次判断，再决定。（" + e.diag + "） Not taken: the order changed after the hold; nothing was written.")
        : e.status === 503 ? "数据库正忙，本次决定未写入任何内容，消息仍按原样暂未采用，请稍后再决定一次（" + e.diag + "）。 The store was busy: nothing was written, the message is held as before; ask again in a moment." // (dfix40)
        : e.status === 409 ? "不能按号码所有者的更改处理（" + e.diag + "）。 Not taken as the owner's."
        : e.status === 400 ? "理由未被接受（" + e.diag + "）。 The reason was not taken." : e.message);
    } finally { button.disabled = false; }
  }
  $("#owner").addEventListener("click", () => {
    if (!current) return;
    const reason = $("#owner-reason").value.trim();
    if (!reason) { // said at the box, the focus put there: no request without words
      $("#owner-reason").setAttribute("aria-invalid", "true"); $("#owner-reason").focus();
      const box = $("#replay-said"); box.className = "bad"; text(box, "请先填写理由：为什么确认这是号码所有者的更改。 Please give a reason first.");
      return;
    }
    $("#owner-reason").removeAttribute("aria-invalid");
    text($("#replay-said"), ""); $("#replay-said").className = ""; // (the ask for a reason, answered)
    text($("#confirm-owner-text"), "消息 " + (current.control_id || current.id) + "（" + facility(current.facility) + "）将按原样重新处理一次，"
      + heldChange(current) + "按号码所有者的更改采用。理由：" + reason + "。您的姓名和时间将记入写入的记录（Provenance），理由记入审计日志与本消息的处理记录（患者看不到理由）。此决定只执行一次。");
    $("#confirm-owner").returnValue = "";
    $("#confirm-owner").showModal();
    $("#confirm-owner-no").focus();
  });
  $("#confirm-owner").addEventListener("close", () => { if ($("#confirm-owner").returnValue === "yes") takeAsOwner(); else $("#owner").focus(); });
  $("#d-close").addEventListener("click", () => {
    details.drop(); $("#detail").hidden = true; current = null;
    const back = document.querySelector("#messages tr.selected button.open, #held tr.selected button.open"); if (back) back.focus();
  });
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); details.drop(); $("#detail").hidden = true; load(); loadHeld(); });
  $("#more").addEventListener("click", () => more());
  for (const picker of $("#filters").querySelectorAll("input[data-picker]")) W.sayPicked(picker);

  async function start() {
    session = await window.hurenStaff.whoami("/ui/quarantine" + location.search);
    if (!session) return;
    try {
      words = Object.assign(words, await api("/ui/quarantine/words"));
      patterns = (words.reasons || []).map((r) => { try { return [new RegExp(r.match), r.zh, r.terms || {}]; } catch (e) { return null; } }).filter(Boolean);
    } catch (e) { message(e.message); return; }
    const params = new URLSearchParams(location.search), f = $("#filters").elements;
    for (const name of ["facility", "from", "to"]) if (params.get(name)) { f[name].value = params.get(name); f[name].dispatchEvent(new Event("change")); }
    await load();
    await loadHeld();
  }
  start();
})();
