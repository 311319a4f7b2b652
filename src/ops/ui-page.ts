/**
 * The /ui page and its script (src/ops/ui.ts serves them), plain HTML and browser JavaScript kept as
 * strings so they ship inside the module (no build step, no asset copying). The script refreshes every
 * `?refresh=` seconds (default 10), reuses its two uPlot charts (setData) and rebuilds tables with DOM
 * calls and textContent only (values from the network never become markup).
 */

export const UI_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clarion Collector</title>
<link rel="stylesheet" href="/ui/uplot.css">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #1d232a; background: #fafbfc; }
  header { display: flex; align-items: baseline; gap: 1em; border-bottom: 1px solid #d0d7de; }
  h1 { font-size: 1.4em; margin: .6em 0; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; } h3 { font-size: 1em; margin: .4em 0; }
  table { border-collapse: collapse; background: #fff; } th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; }
  th { text-align: left; background: #f3f5f7; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .tops { display: flex; flex-wrap: wrap; gap: 1.5em; } .note { color: #57606a; } .err { color: #cf222e; white-space: pre; font-family: monospace; }
  .ok { color: #1a7f37; } .degraded, .bad { color: #cf222e; } .charts { display: flex; flex-wrap: wrap; gap: 1em; }
  input[name=filter] { width: 36em; font-family: monospace; }
</style>
</head>
<body>
<header><h1>Clarion Collector</h1><span id="status" class="note">loading…</span><span id="updated" class="note"></span></header>
<section>
  <h2>Exporters</h2>
  <table id="exporters"><thead><tr><th>Exporter</th><th>Flows/s</th><th>Flows</th><th>Datagrams</th><th>Templates</th><th>Sampling</th><th>Errors</th><th>Loss</th><th>Last seen</th></tr></thead><tbody></tbody></table>
</section>
<section>
  <h2>Last hour</h2>
  <div class="charts"><div id="chart-flows"></div><div id="chart-bytes"></div></div>
  <p id="chart-note" class="note"></p>
</section>
<section>
  <h2>Top</h2>
  <form id="query">
    <label>Window <select name="last"><option>5m</option><option selected>15m</option><option>1h</option><option>6h</option><option>24h</option><option>7d</option></select></label>
    <label>Filter <input name="filter" placeholder="proto tcp and dst port 443 and not src net 10.0.0.0/8"></label>
    <button type="submit">Apply</button>
  </form>
  <div id="filter-error" class="err"></div>
  <p id="top-note" class="note"></p>
  <div class="tops">
    <div><h3>Talkers (source)</h3><table id="top-src_ip"></table></div>
    <div><h3>Destinations</h3><table id="top-dst_ip"></table></div>
    <div><h3>Ports (destination)</h3><table id="top-dst_port"></table></div>
    <div><h3>Protocols</h3><table id="top-proto"></table></div>
  </div>
</section>
<section>
  <h2>Loss</h2>
  <table id="loss"><thead><tr><th>Counter</th><th>Value</th></tr></thead><tbody></tbody></table>
  <p class="note">Every counter of /metrics about drops, losses, sequence gaps, missing templates and errors (summed over labels). All zero: nothing lost.</p>
</section>
<script src="/ui/uplot.js"></script>
<script src="/ui/app.js"></script>
</body>
</html>
`;

export const UI_SCRIPT = `"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var refreshMs = Math.max(1, Number(params.get("refresh") || 10)) * 1000;
  var state = { last: "15m", filter: params.get("filter") || "" };
  var prevFlows = new Map();
  var prevAt = 0;
  var charts = {};
  var seq = 0;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function human(n, unit) {
    if (!isFinite(n)) return "-";
    var p = ["", " k", " M", " G", " T", " P"];
    var i = 0;
    while (Math.abs(n) >= 1000 && i < p.length - 1) { n /= 1000; i++; }
    var s = i === 0 ? (Number.isInteger(n) ? String(n) : n.toFixed(1)) : n.toFixed(Math.abs(n) >= 100 ? 0 : 1);
    return s + (i === 0 ? (unit ? " " + unit : "") : p[i] + (unit || ""));
  }
  function ago(iso) {
    if (!iso) return "-";
    var s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    return s < 1 ? "now" : s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : new Date(iso).toLocaleString();
  }
  function fill(tbody, rows) {
    var frag = document.createDocumentFragment();
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(el("td", c.v, c.n ? "n" : "")); });
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
  }
  function getJson(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    });
  }
  function lossy(name) { return /(drop|lost|loss|gap|missing|error|evict|overflow|refused)/.test(name); }

  function exporters() {
    return Promise.all([getJson("/exporters"), getJson("/templates")]).then(function (rs) {
      var body = rs[0].body || {};
      var list = Array.isArray(body) ? body : body.exporters || body.items || [];
      var tpl = new Map();
      ((rs[1].body || {}).templates || []).forEach(function (t) { tpl.set(t.exporter, (tpl.get(t.exporter) || 0) + 1); });
      var now = Date.now();
      var dt = prevAt ? (now - prevAt) / 1000 : 0;
      var rows = list.map(function (e) {
        var loss = 0;
        Object.keys(e).forEach(function (k) { if (k !== "errors" && lossy(k) && typeof e[k] === "number") loss += e[k]; });
        var prev = prevFlows.get(e.exporter);
        var rate = dt > 0 && prev !== undefined ? Math.max(0, (e.flows - prev) / dt) : null;
        prevFlows.set(e.exporter, e.flows);
        return [
          { v: e.exporter }, { v: rate === null ? "…" : human(Math.round(rate * 10) / 10), n: 1 }, { v: human(e.flows), n: 1 },
          { v: human(e.packets !== undefined ? e.packets : e.datagrams), n: 1 }, { v: tpl.get(e.exporter) || 0, n: 1 },
          { v: e.sampling_rate > 1 ? "1:" + e.sampling_rate : "none" }, { v: e.errors || 0, n: 1 }, { v: loss, n: 1 },
          { v: ago(e.last_seen) },
        ];
      });
      prevAt = now;
      if (rows.length === 0) rows = [[{ v: "no exporter seen yet" }]];
      fill(document.querySelector("#exporters tbody"), rows);
    });
  }

  function chart(id, title, label, unit, data) {
    var box = document.getElementById(id);
    if (!charts[id]) {
      charts[id] = new uPlot({
        title: title, width: Math.min(640, Math.max(320, (window.innerWidth - 80) / 2)), height: 220,
        series: [{}, { label: label, stroke: "#0969da", fill: "rgba(9,105,218,0.08)", value: function (u, v) { return v == null ? "-" : human(v, unit); } }],
        axes: [{}, { size: 70, values: function (u, vals) { return vals.map(function (v) { return human(v, unit); }); } }],
      }, data, box);
    } else charts[id].setData(data);
  }

  function series() {
    var q = "/ui/api/series?last=1h&step=60" + (state.filter ? "&filter=" + encodeURIComponent(state.filter) : "");
    return getJson(q).then(function (r) {
      var note = document.getElementById("chart-note");
      if (r.status !== 200) { note.textContent = r.body.error || "no data"; return; }
      var t = r.body.t.map(function (x) { return x / 1000; });
      chart("chart-flows", "Flows/s", "flows/s", "", [t, r.body.flowsPerSec]);
      chart("chart-bytes", "Bytes/s" + (r.body.scaled ? " (scaled by sampling)" : ""), "bytes/s", "B", [t, r.body.bytesPerSec]);
      note.textContent = "One-minute buckets from the SQLite store" + (state.filter ? ", filter: " + state.filter : "") + ".";
    });
  }

  function tops() {
    var base = "/ui/api/top?n=10&last=" + encodeURIComponent(state.last) + (state.filter ? "&filter=" + encodeURIComponent(state.filter) : "");
    var keys = ["src_ip", "dst_ip", "dst_port", "proto"];
    var my = ++seq;
    return Promise.all(keys.map(function (k) { return getJson(base + "&by=" + k); })).then(function (rs) {
      if (my !== seq) return;
      var errBox = document.getElementById("filter-error");
      var bad = rs.find(function (r) { return r.status !== 200; });
      if (bad) {
        var b = bad.body || {};
        errBox.textContent = b.position !== undefined
          ? b.error + "\\n" + state.filter + "\\n" + " ".repeat(b.position) + "^"
          : (b.error || "query failed");
        return;
      }
      errBox.textContent = "";
      var first = rs[0].body;
      document.getElementById("top-note").textContent =
        "Last " + state.last + ": " + human(first.total.bytes, "B") + ", " + human(first.total.packets) + " packets, " + human(first.total.flows) + " flows" +
        (first.sampled ? (first.scaled ? " — sampled data, scaled by the sampling rate" : " — sampled data, not scaled") : "");
      keys.forEach(function (k, i) {
        var r = rs[i].body;
        var table = document.getElementById("top-" + k);
        var head = el("thead");
        var hr = el("tr");
        [k === "proto" ? "Protocol" : k, "Bytes", "%", "Packets", "Flows"].forEach(function (h) { hr.appendChild(el("th", h)); });
        head.appendChild(hr);
        var body = el("tbody");
        fill(body, r.rows.map(function (row) {
          return [
            { v: row.labels.join(" ") }, { v: human(row.bytes, "B"), n: 1 },
            { v: r.total.bytes > 0 ? (100 * row.bytes / r.total.bytes).toFixed(1) + "%" : "-", n: 1 },
            { v: human(row.packets), n: 1 }, { v: human(row.flows), n: 1 },
          ];
        }));
        table.replaceChildren(head, body);
      });
    });
  }

  function loss() {
    return fetch("/metrics", { headers: { accept: "text/plain" }, cache: "no-store" }).then(function (r) { return r.text(); }).then(function (text) {
      var sums = new Map();
      text.split("\\n").forEach(function (line) {
        if (!line || line[0] === "#") return;
        var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})?\\s+(\\S+)/.exec(line);
        if (!m || !/_total$/.test(m[1]) || !lossy(m[1])) return;
        sums.set(m[1], (sums.get(m[1]) || 0) + Number(m[3]));
      });
      var rows = Array.from(sums.keys()).sort().map(function (k) { return [{ v: k }, { v: human(sums.get(k)), n: 1 }]; });
      fill(document.querySelector("#loss tbody"), rows);
    });
  }

  function health() {
    return getJson("/health").then(function (r) {
      var s = document.getElementById("status");
      s.textContent = r.body.status + ((r.body.reasons || []).length ? ": " + r.body.reasons.join("; ") : "");
      s.className = r.body.status === "ok" ? "ok" : "degraded";
    });
  }

  var running = null;
  function refresh() {
    if (running) return running;
    running = Promise.all([health(), exporters(), series(), tops(), loss()]).then(function () {
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    }).catch(function (e) {
      document.getElementById("status").textContent = "cannot reach the collector: " + e;
    }).finally(function () { running = null; });
    return running;
  }

  var form = document.getElementById("query");
  form.filter.value = state.filter;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    state.last = form.last.value;
    state.filter = form.filter.value.trim();
    refresh();
  });
  window.clarionRefresh = refresh;
  refresh();
  setInterval(refresh, refreshMs);
})();
`;
