// parley supervisor dashboard: logs in through /api/login when /api/me
// says 401, then draws /api/kpis. Every value from the server is put in
// the page as text (textContent), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let csrf = "";
  const charts = {};

  async function getJSON(url) {
    const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* empty or not JSON */ }
    return { status: res.status, body };
  }

  function show(which) {
    $("login").hidden = which !== "login";
    $("board").hidden = which !== "board";
    $("who").hidden = which !== "board";
  }

  async function start() {
    const me = await getJSON("/api/me");
    if (me.status === 200 && me.body) {
      signedIn(me.body);
      return;
    }
    show("login");
  }

  function signedIn(me) {
    csrf = me.csrf || "";
    $("user").textContent = me.user ? me.user.name + " (" + me.user.role + ")" : "";
    show("board");
    if (!$("from").value) setLastHours(168);
    load();
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    const res = await fetch("/api/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }),
    });
    let body = null;
    try { body = await res.json(); } catch (_) { /* ignore */ }
    $("login-password").value = "";
    if (res.status !== 200 || !body) {
      $("login-error").textContent = (body && body.error) || "Login failed (" + res.status + ")";
      return;
    }
    signedIn(body);
  });

  $("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    csrf = "";
    show("login");
  });

  // Period: datetime-local inputs in the browser's time zone.
  function localValue(d) {
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }
  function setLastHours(h) {
    const to = new Date();
    to.setSeconds(0, 0);
    to.setMinutes(to.getMinutes() + 1);
    $("to").value = localValue(to);
    $("from").value = localValue(new Date(to.getTime() - h * 3600e3));
  }
  document.querySelectorAll("#period button[data-hours]").forEach((b) => {
    b.addEventListener("click", () => { setLastHours(Number(b.dataset.hours)); load(); });
  });
  $("period").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });

  async function load() {
    const from = new Date($("from").value), to = new Date($("to").value);
    if (isNaN(from) || isNaN(to) || from >= to) {
      $("status").textContent = "Choose a period with From before To.";
      return;
    }
    $("status").textContent = "Loading…";
    const t0 = performance.now();
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    const res = await getJSON("/api/kpis?" + q.toString());
    if (res.status === 401) { show("login"); return; }
    if (res.status !== 200 || !res.body) {
      $("status").textContent = (res.body && res.body.error) || "Could not load the KPIs (" + res.status + ")";
      return;
    }
    draw(res.body);
    $("status").textContent = "Updated " + new Date().toLocaleTimeString() + " in " + Math.round(performance.now() - t0) + " ms";
  }

  // Formatting.
  const pct = (x) => (100 * x).toFixed(1) + " %";
  const num = (x) => Number(x).toLocaleString();
  function dur(ms) {
    if (!ms) return "–";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
    return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
  }

  function tile(label, value, sub) {
    const d = document.createElement("div");
    d.className = "tile";
    for (const [cls, text] of [["label", label], ["value", value], ["sub", sub || ""]]) {
      const e = document.createElement("div");
      e.className = cls;
      e.textContent = text;
      d.appendChild(e);
    }
    return d;
  }

  function draw(r) {
    const tiles = $("tiles");
    tiles.replaceChildren(
      tile("Calls", num(r.calls), num(r.ended) + " ended"),
      tile("AI containment", pct(r.containment_rate), num(r.contained) + " resolved without a human"),
      tile("Escalation rate", pct(r.escalation_rate), num(r.escalated) + " to a human"),
      tile("AI handle time", dur(r.ai_handle_ms), "average, start to hand-off or end"),
      tile("AI resolution time", dur(r.ai_resolution_ms), "average contained call"),
      tile("Human handle time", dur(r.human_handle_ms), "average, agent connected to end"),
      tile("Time to human p50", dur(r.time_to_human.p50_ms), "p95 " + dur(r.time_to_human.p95_ms) + " · " + num(r.time_to_human.count) + " connected"),
      tile("Queue wait", dur(r.queue_wait_ms), "average"),
      tile("Abandoned in queue", num(r.abandoned_in_queue), num(r.abandoned) + " abandoned in all"),
      tile("Callbacks / voicemails", num(r.callbacks) + " / " + num(r.voicemails), "instead of waiting"),
      tile("Repeat contacts", pct(r.repeats.rate), num(r.repeats.calls) + " called again within 7 days"),
      tile("CSAT", r.csat.responses ? r.csat.average.toFixed(2) + " / 5" : "–", num(r.csat.responses) + " survey answers"),
      tile("Dropped / failed", num(r.dropped) + " / " + num(r.failed), ""),
    );

    const day = r.step === "day";
    const labels = r.series.map((p) => {
      const d = new Date(p.start);
      return day ? d.toLocaleDateString() : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    });
    chart("chart-calls", {
      type: "bar",
      data: { labels, datasets: [
        { label: "Calls", data: r.series.map((p) => p.calls), backgroundColor: "#93c5fd" },
        { label: "Escalated", data: r.series.map((p) => p.escalated), backgroundColor: "#f97316" },
        { label: "Contained", data: r.series.map((p) => p.contained), backgroundColor: "#22c55e" },
      ] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    chart("chart-rates", {
      type: "line",
      data: { labels, datasets: [
        { label: "Containment", data: r.series.map((p) => p.ended ? 100 * p.containment_rate : null), borderColor: "#16a34a", backgroundColor: "#16a34a", spanGaps: true, pointRadius: 0 },
        { label: "Escalation", data: r.series.map((p) => p.ended ? 100 * p.escalation_rate : null), borderColor: "#ea580c", backgroundColor: "#ea580c", spanGaps: true, pointRadius: 0 },
      ] },
      options: { scales: { y: { beginAtZero: true, max: 100, ticks: { callback: (v) => v + " %" } } } },
    });
    chart("chart-reasons", {
      type: "bar",
      data: { labels: r.escalation_reasons.map((x) => x.reason.replaceAll("_", " ")), datasets: [
        { label: "Escalated calls", data: r.escalation_reasons.map((x) => x.calls), backgroundColor: "#f97316" },
      ] },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false }, tooltip: { callbacks: {
        label: (c) => num(c.raw) + " calls (" + pct(r.escalation_reasons[c.dataIndex].share) + " of escalations)" } } } },
    });
    chart("chart-csat", {
      type: "bar",
      data: { labels: ["1", "2", "3", "4", "5"], datasets: [
        { label: "Answers", data: r.csat.distribution, backgroundColor: ["#dc2626", "#f97316", "#eab308", "#84cc16", "#16a34a"] },
      ] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });

    rows("intents", r.worst_intents, (x) => [
      x.intent, [num(x.turns), true], [num(x.low_confidence_turns) + " (" + pct(x.low_confidence_share) + ")", true],
      [x.mean_nlu_confidence.toFixed(2), true], [num(x.calls), true], [num(x.escalated), true]]);
    rows("repeats", r.repeats.by_intent.slice(0, 10), (x) => [x.intent || "(no intent)", [num(x.calls), true]]);
    rows("review", r.review, (x) => {
      const a = document.createElement("a");
      a.href = "/api/calls/" + encodeURIComponent(x.id);
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = x.id;
      return [new Date(x.started_at).toLocaleString(), x.from, x.intent || "–", x.outcome || "live",
        x.escalated ? "yes" : "no", [num(x.low_confidence_turns), true], x.csat ? String(x.csat) : "–", a];
    });
  }

  // rows fills a table body; a cell is text, [text, numeric] or an element.
  function rows(id, items, cells) {
    const body = $(id).tBodies[0];
    const out = [];
    for (const item of items) {
      const tr = document.createElement("tr");
      for (const c of cells(item)) {
        const td = document.createElement("td");
        if (c instanceof Node) td.appendChild(c);
        else if (Array.isArray(c)) { td.textContent = c[0]; if (c[1]) td.className = "num"; }
        else td.textContent = c;
        tr.appendChild(td);
      }
      out.push(tr);
    }
    if (out.length === 0) {
      const tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.className = "empty";
      td.textContent = "Nothing in this period.";
      tr.appendChild(td);
      out.push(tr);
    }
    body.replaceChildren(...out);
  }

  function chart(id, cfg) {
    if (typeof Chart === "undefined") return;
    cfg.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, cfg.options);
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), cfg);
  }

  start();
})();
