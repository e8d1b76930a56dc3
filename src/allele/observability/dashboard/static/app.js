// The Allele dashboard page: plain JavaScript, no dependencies, served by the package itself.
// Views are sections switched by the URL hash; every read goes to /api/v1, live points arrive
// from the /api/v1/events stream once a second.
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
const state = { view: "overview", series: [], picked: [], data: {}, zoom: null, stream: null,
  timer: null, cross: null, suites: [] };

// --- helpers -----------------------------------------------------------------------------

async function api(path, options = {}) {
  const response = await fetch(API + path, options);
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((body && body.error) || response.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmt(v, unit = "") {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (unit === "s") {
    const a = Math.abs(v);
    return a >= 1 ? v.toFixed(2) + " s" : a >= 1e-3 ? (v * 1e3).toFixed(2) + " ms" : (v * 1e6).toFixed(1) + " us";
  }
  if (unit === "B") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; let x = v;
    while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return x.toFixed(1) + " " + units[i];
  }
  const a = Math.abs(v);
  return (a !== 0 && (a >= 1e6 || a < 1e-3)) ? v.toExponential(2) : String(+v.toPrecision(4));
}

function when(t) { return t ? new Date(typeof t === "number" ? t * 1000 : t).toLocaleString() : "–"; }

function seriesId(s) { return s.id; }

// --- views -------------------------------------------------------------------------------

function show(view) {
  state.view = view;
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.dataset.view !== view;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  ({ overview: loadOverview, metrics: loadMetrics, alerts: loadAlerts, benchmarks: loadBenchmarks,
     analytics: loadAnalytics })[view]().catch(report);
}

function report(error) {
  const target = { alerts: "alert-message", analytics: "analytics-message" }[state.view];
  if (target) $(target).textContent = error.message; else console.error(error);
}

// --- overview ----------------------------------------------------------------------------

async function loadOverview() {
  // One request for the first view: one round trip, one read of the store.
  const { components, system, firing: alerts } = await api("/overview");
  renderSystem(system);
  renderComponents(components);
  const list = $("firing"); list.replaceChildren();
  if (!alerts.length) list.append(el("li", {}, "none"));
  for (const a of alerts) list.append(el("li", {}, el("span", { class: "badge " + a.severity }, a.severity), " ",
    a.rule_name, " — ", a.labels && a.labels.component_id || a.metric, " = ", fmt(a.value)));
}

function renderSystem(system) {
  const dl = $("system"); dl.replaceChildren();
  const rows = [["CPU", "cpu_percent", "allele_system_cpu_percent", "%"], ["Memory", "memory_percent", "allele_system_memory_percent", "%"],
    ["Process RSS", "process_rss_bytes", "allele_process_resident_memory_bytes", "B"], ["Process CPU", "process_cpu_percent", "allele_process_cpu_percent", "%"]];
  for (const [label, live, stored, unit] of rows) {
    const item = system[live] || system[stored];
    if (!item) continue;
    dl.append(el("dt", {}, label), el("dd", {}, unit === "%" ? fmt(item.value) + " %" : fmt(item.value, unit)));
  }
  if (!dl.children.length) dl.append(el("dt", {}, "no sample yet"), el("dd"));
}

function renderComponents(components) {
  const box = $("components"); box.replaceChildren();
  if (!components.length) box.append(el("p", { class: "hint" }, "No component has reported yet."));
  for (const c of components) {
    const p = c.performance || {};
    const stale = c.stale ? " (stale)" : "";
    box.append(el("article", { class: "card", "data-component": c.component_id },
      el("h4", {}, c.component_id),
      el("span", { class: "badge " + (c.stale ? "stale" : c.health), "data-health": c.health }, c.health + stale), " ",
      el("span", { class: "hint" }, c.component_type),
      el("dl", { class: "figures" },
        el("dt", {}, "p50 / p95"), el("dd", {}, fmt(p.latency_p50_s, "s") + " / " + fmt(p.latency_p95_s, "s")),
        el("dt", {}, "throughput"), el("dd", {}, fmt(p.throughput_per_s) + " /s"),
        el("dt", {}, "errors"), el("dd", {}, fmt(100 * (p.error_rate || 0)) + " %"),
        el("dt", {}, "heartbeat"), el("dd", {}, c.heartbeat_age_s == null ? "–" : fmt(c.heartbeat_age_s, "s") + " ago"))));
  }
}

// --- metrics explorer ----------------------------------------------------------------------

async function loadMetrics() {
  state.series = await api("/series");
  fillSeriesPicker();
  if (!state.picked.length && state.series.length) {
    state.picked = state.series.slice(0, 2).map(seriesId);
    fillSeriesPicker();
  }
  await refreshCharts();
  restartRefresh();
}

function fillSeriesPicker() {
  const filter = $("series-filter").value.toLowerCase();
  const pick = $("series-pick"); pick.replaceChildren();
  for (const s of state.series) {
    if (filter && !s.id.toLowerCase().includes(filter)) continue;
    pick.append(el("option", { value: s.id, selected: state.picked.includes(s.id) ? "" : null }, s.id));
  }
}

function timeWindow() {
  if (state.zoom) return state.zoom;
  const range = $("range").value;
  if (range === "abs") {
    const start = Date.parse($("abs-start").value) / 1000, end = Date.parse($("abs-end").value) / 1000;
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) return { start, end };
  }
  const seconds = { "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 }[range] || 900;
  const end = Date.now() / 1000;
  return { start: end - seconds, end };
}

async function refreshCharts() {
  const { start, end } = timeWindow();
  const step = Math.max((end - start) / 600, 0.001);
  const results = await Promise.all(state.picked.map((id) =>
    api(`/series/query?id=${encodeURIComponent(id)}&start=${start}&end=${end}&step=${step}`).catch((e) => ({ id, t: [], v: [], error: e.message }))));
  for (const r of results) state.data[r.id] = { t: r.t, v: r.v, error: r.error };
  drawCharts();
}

function drawCharts() {
  const box = $("charts"); box.replaceChildren();
  const win = timeWindow();
  for (const id of state.picked) box.append(chart(id, state.data[id] || { t: [], v: [] }, win));
}

// One SVG line chart; the crosshair time is shared through state.cross.
function chart(id, data, win, extra = {}) {
  // Drawn at the container's own width, so text keeps its size on a phone and a laptop.
  const W = Math.max(320, Math.round(($("main").clientWidth || 800) - 32)), H = 180, L = 56, R = 8, T = 8, B = 22;
  const wrap = el("div", { class: "chart", "data-series": id });
  const readout = el("div", { class: "readout" });
  wrap.append(el("h4", {}, id));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("data-points", String(data.t.length));
  svg.setAttribute("aria-label", `chart of ${id}, ${data.t.length} points`);
  const values = data.v.filter((v) => v !== null);
  const bandLo = extra.lower || [], bandHi = extra.upper || [];
  const all = values.concat(bandLo, bandHi, extra.mean || []);
  let lo = Math.min(...all), hi = Math.max(...all);
  if (!all.length) { lo = 0; hi = 1; }
  // A near-constant series (100 % CPU with float noise) gets a readable span around its level.
  const span = Math.max(1e-4 * Math.max(Math.abs(lo), Math.abs(hi)), 1e-9);
  if (hi - lo < span) { const mid = (hi + lo) / 2; lo = mid - span / 2; hi = mid + span / 2; }
  if (hi === lo) { hi += 1; lo -= 1; }
  const t0 = extra.t0 ?? win.start, t1 = extra.t1 ?? win.end;
  const x = (t) => L + (W - L - R) * (t - t0) / Math.max(t1 - t0, 1e-9);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const add = (tag, attrs) => { const n = document.createElementNS(svg.namespaceURI, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); svg.append(n); return n; };
  add("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B });
  // Enough decimals that the three axis labels differ, however narrow the range (99.9-100.0).
  const decimals = Math.min(6, Math.max(0, 1 - Math.floor(Math.log10(hi - lo))));
  const tick = (v) => Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-3 && hi - lo < 1e-3) ? v.toExponential(2) : v.toFixed(decimals);
  for (const v of [lo, (lo + hi) / 2, hi]) { const tx = add("text", { x: 4, y: y(v) + 4 }); tx.textContent = tick(v); }
  [t0, (t0 + t1) / 2, t1].forEach((t, i) => {
    const tx = add("text", { x: x(t), y: H - 6, "text-anchor": ["start", "middle", "end"][i] });
    tx.textContent = new Date(t * 1000).toLocaleTimeString(); });
  if (extra.ft && bandLo.length) {
    const pts = extra.ft.map((t, i) => `${x(t)},${y(bandHi[i])}`).concat(extra.ft.map((t, i) => `${x(t)},${y(bandLo[i])}`).reverse());
    add("polygon", { class: "band", points: pts.join(" ") });
    add("polyline", { class: "forecast", points: extra.ft.map((t, i) => `${x(t)},${y(extra.mean[i])}`).join(" ") });
  }
  const line = [];
  data.t.forEach((t, i) => { if (data.v[i] !== null) line.push(`${x(t).toFixed(1)},${y(data.v[i]).toFixed(1)}`); });
  add("polyline", { class: "line", points: line.join(" ") });
  for (const d of extra.detections || []) add("circle", { class: "detect", cx: x(d.t), cy: y(d.v), r: 4 });
  const cross = add("line", { class: "cross", y1: T, y2: H - B, x1: -10, x2: -10, visibility: "hidden" });
  const zoom = add("rect", { class: "zoom", y: T, height: H - T - B, x: 0, width: 0 });
  const toTime = (ev) => { const box = svg.getBoundingClientRect();
    return t0 + (t1 - t0) * (((ev.clientX - box.left) / box.width * W) - L) / (W - L - R); };
  let dragFrom = null;
  svg.addEventListener("pointermove", (ev) => {
    const t = toTime(ev); setCross(t);
    if (dragFrom !== null) { zoom.setAttribute("x", Math.min(x(dragFrom), x(t))); zoom.setAttribute("width", Math.abs(x(t) - x(dragFrom))); }
  });
  svg.addEventListener("pointerleave", () => setCross(null));
  if (!extra.static) {
    svg.addEventListener("pointerdown", (ev) => { dragFrom = toTime(ev); svg.setPointerCapture(ev.pointerId); });
    svg.addEventListener("pointerup", (ev) => {
      const t = toTime(ev); const a = Math.min(dragFrom, t), b = Math.max(dragFrom, t); dragFrom = null;
      zoom.setAttribute("width", 0);
      if (b - a > (t1 - t0) / 200) { state.zoom = { start: a, end: b }; $("reset-zoom").hidden = false; refreshCharts().catch(report); }
    });
  }
  wrap.crossAt = (t) => {
    if (t === null || t < t0 || t > t1) { cross.setAttribute("visibility", "hidden"); readout.textContent = ""; return; }
    cross.setAttribute("visibility", "visible"); cross.setAttribute("x1", x(t)); cross.setAttribute("x2", x(t));
    let best = -1, gap = Infinity;
    data.t.forEach((s, i) => { const g = Math.abs(s - t); if (g < gap) { gap = g; best = i; } });
    readout.textContent = best >= 0 ? `${new Date(data.t[best] * 1000).toLocaleTimeString()}  ${fmt(data.v[best])}` : "";
  };
  wrap.append(svg, readout);
  if (data.error) wrap.append(el("p", { class: "message" }, data.error));
  return wrap;
}

function setCross(t) {
  state.cross = t;
  for (const c of document.querySelectorAll(".chart")) if (c.crossAt) c.crossAt(t);
}

function restartRefresh() {
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
  const mode = $("refresh").value;
  openStream(mode === "live" && !state.zoom && $("range").value !== "abs");
  if (mode !== "live" && mode !== "0") state.timer = setInterval(() => refreshCharts().catch(report), 1000 * +mode);
}

// --- the event stream ----------------------------------------------------------------------

function openStream(withSeries) {
  if (state.stream) state.stream.close();
  const query = withSeries ? state.picked.map((id) => "series=" + encodeURIComponent(id)).join("&") : "";
  const stream = new EventSource(`${API}/events${query ? "?" + query : ""}`);
  state.stream = stream;
  stream.onopen = () => { $("live").textContent = "live"; $("live").classList.add("on"); };
  stream.onerror = () => { $("live").textContent = "reconnecting"; $("live").classList.remove("on"); };
  stream.onmessage = (ev) => onEvent(JSON.parse(ev.data));
}

function onEvent(message) {
  $("live").dataset.last = String(message.time);
  let grew = false;
  for (const [id, pts] of Object.entries(message.points || {})) {
    const d = state.data[id]; if (!d) continue;
    d.t.push(...pts.t); d.v.push(...pts.v); grew = true;
    const start = timeWindow().start;
    while (d.t.length && d.t[0] < start) { d.t.shift(); d.v.shift(); }
  }
  if (grew && state.view === "metrics") { drawCharts(); setCross(state.cross); }
  const changedHealth = Object.keys(message.health || {}).length, changedAlerts = (message.alerts || []).length;
  if ((changedHealth || changedAlerts) && state.view === "overview") loadOverview().catch(report);
  if (changedAlerts && state.view === "alerts") loadAlerts().catch(report);
}

// --- alerts --------------------------------------------------------------------------------

async function loadAlerts() {
  const stateFilter = $("alert-state").value;
  const alerts = await api("/alerts" + (stateFilter ? "?state=" + stateFilter : ""));
  const rows = $("alert-rows"); rows.replaceChildren();
  if (!alerts.length) rows.append(el("tr", {}, el("td", { colspan: 7 }, "No alerts.")));
  for (const a of alerts) {
    const actions = el("td");
    if (a.state !== "resolved") {
      if (!a.acknowledged_at) actions.append(el("button", { type: "button", "data-action": "acknowledge", onclick: () => act(a.alert_id, "acknowledge") }, "Acknowledge"), " ");
      else actions.append(el("span", { class: "hint" }, "acknowledged by " + a.acknowledged_by + " "));
      actions.append(el("button", { type: "button", "data-action": "resolve", onclick: () => act(a.alert_id, "resolve") }, "Resolve"));
    }
    rows.append(el("tr", { "data-alert": a.alert_id },
      el("td", {}, el("span", { class: "badge " + a.state }, a.state)), el("td", { class: a.severity }, a.severity),
      el("td", {}, a.rule_name), el("td", {}, (a.labels && a.labels.component_id) || "–"),
      el("td", { class: "num" }, fmt(a.value)), el("td", {}, when(a.started_at)), actions));
  }
  await Promise.all([loadIncidents(), loadSilences()]);
}

async function loadIncidents() {
  const box = $("clusters"); box.replaceChildren();
  let clusters = [];
  try { clusters = await api("/clusters?limit=20"); } catch (error) { box.append(el("p", { class: "hint" }, error.message)); return; }
  if (!clusters.length) box.append(el("p", { class: "hint" }, "No incidents recorded."));
  for (const c of clusters) {
    const taken = c.common_attributes && c.common_attributes.acknowledged_by;
    const roots = el("ol", { class: "list" }, ...(c.root_cause_candidates || []).slice(0, 3).map((r) => el("li", {}, r)));
    const card = el("article", { class: "card", "data-cluster": c.cluster_id },
      el("h4", {}, `${(c.alerts || []).length} alerts · priority ${fmt(c.priority_score)}`),
      el("p", { class: "hint" }, `${when(c.first_alert_time)} – ${when(c.last_alert_time)}`),
      el("div", {}, "Root cause, most likely first:"), roots);
    if (taken) card.append(el("p", { class: "hint" }, "taken by " + taken));
    else card.append(el("button", { type: "button", onclick: () => takeCluster(c.cluster_id) }, "Take incident"));
    box.append(card);
  }
}

function authHeaders() {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function takeCluster(id) {
  try {
    await api(`/clusters/${encodeURIComponent(id)}/acknowledge`, { method: "POST", headers: authHeaders(), body: JSON.stringify({ by: $("who").value.trim() || "dashboard" }) });
    await loadIncidents();
  } catch (error) { $("alert-message").textContent = error.message; }
}

async function loadSilences() {
  const rows = $("silence-rows"); rows.replaceChildren();
  let silences = [];
  try { silences = await api("/silences"); } catch (error) { rows.append(el("tr", {}, el("td", { colspan: 6 }, error.message))); return; }
  if (!silences.length) rows.append(el("tr", {}, el("td", { colspan: 6 }, "No silences.")));
  for (const s of silences) {
    const end = el("td");
    if (s.state !== "expired") end.append(el("button", { type: "button", onclick: () => expireSilence(s.silence_id) }, "Expire"));
    rows.append(el("tr", { "data-silence": s.silence_id }, el("td", {}, s.state), el("td", {}, (s.matchers || []).join(" ")),
      el("td", {}, when(s.ends_at)), el("td", {}, s.created_by), el("td", {}, s.comment), end));
  }
}

async function addSilence(ev) {
  ev.preventDefault();
  const matchers = $("silence-matchers").value.match(/(?:[^\s"]+|"[^"]*")+/g) || [];
  try {
    await api("/silences", { method: "POST", headers: authHeaders(), body: JSON.stringify({
      matchers, created_by: $("who").value.trim() || "dashboard", comment: $("silence-comment").value, duration: $("silence-duration").value }) });
    $("alert-message").textContent = "silence added";
    await loadSilences();
  } catch (error) { $("alert-message").textContent = error.message; }
}

async function expireSilence(id) {
  try { await api(`/silences/${encodeURIComponent(id)}/expire`, { method: "POST", headers: authHeaders() }); await loadSilences(); }
  catch (error) { $("alert-message").textContent = error.message; }
}

async function act(alertId, action) {
  const by = $("who").value.trim() || "dashboard";
  const token = $("token").value.trim();
  localStorage.setItem("allele-who", by);
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  try {
    await api(`/alerts/${encodeURIComponent(alertId)}/${action}`, { method: "POST", headers, body: JSON.stringify({ by }) });
    $("alert-message").textContent = `${action === "resolve" ? "resolved" : "acknowledged"} ${alertId}`;
    await loadAlerts();
  } catch (error) { $("alert-message").textContent = error.message; }
}

// --- benchmarks ----------------------------------------------------------------------------

async function loadBenchmarks() {
  state.suites = await api("/suites");
  const pick = $("suite-pick"), base = $("suite-base");
  const keep = pick.value, keepBase = base.value;
  pick.replaceChildren(); base.replaceChildren(el("option", { value: "" }, "—"));
  for (const s of state.suites) {
    const label = `${s.name} · ${when(s.created_at)} · ${s.status}`;
    pick.append(el("option", { value: s.suite_id }, label));
    base.append(el("option", { value: s.suite_id }, label));
  }
  if (keep) pick.value = keep; if (keepBase) base.value = keepBase;
  if (!state.suites.length) { $("suite-detail").replaceChildren(el("p", { class: "hint" }, "No stored benchmark runs: run `allele bench run SUITE`.")); return; }
  await showSuite();
}

// A refresh and a user's pick can both be rendering the suite view; only the newest call may
// draw, or two comparison tables end up on the page.
let suiteRender = 0;

async function showSuite() {
  const id = $("suite-pick").value; if (!id) return;
  const token = ++suiteRender;
  const base = $("suite-base").value;
  const run = await api("/suites/" + encodeURIComponent(id));
  const c = base && base !== id
    ? await api(`/suites/compare?baseline=${encodeURIComponent(base)}&current=${encodeURIComponent(id)}`) : null;
  if (token !== suiteRender) return;
  const box = $("suite-detail"); box.replaceChildren(el("h3", {}, `${run.name} (${run.suite_id.slice(0, 8)}) — ${run.metric} per operation`));
  box.append(heatmap(run), boxplots(run));
  const cmp = $("suite-compare"); cmp.replaceChildren();
  if (c) {
    const table = el("table", { class: "table", id: "verdicts" }, el("thead", {}, el("tr", {}, ...["cell", "baseline", "current", "change", "verdict"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    for (const cell of c.cells) {
      const change = cell.baseline_median && cell.current_median ? (100 * (cell.current_median / cell.baseline_median - 1)).toFixed(1) + " %" : "–";
      body.append(el("tr", {}, el("td", {}, cell.key), el("td", { class: "num" }, fmt(cell.baseline_median, "s")),
        el("td", { class: "num" }, fmt(cell.current_median, "s")), el("td", { class: "num" }, change),
        el("td", { class: cell.verdict }, cell.verdict)));
    }
    table.append(body);
    cmp.append(el("h3", {}, `Compared with ${base.slice(0, 8)}: ${Object.entries(c.counts).map(([k, v]) => `${v} ${k}`).join(", ")}`), el("div", { class: "scroll" }, table));
  }
}

function heatmap(run) {
  const [rowsP, colsP] = run.varying.length >= 2 ? run.varying : [run.varying[0], null];
  const wrap = el("div", { class: "scroll" });
  if (!rowsP) return wrap;
  const rows = run.params[rowsP], cols = colsP ? run.params[colsP] : [""];
  const medians = run.cells.map((c) => c.stats && c.stats.median).filter((m) => m != null);
  const lo = Math.log(Math.min(...medians)), hi = Math.log(Math.max(...medians));
  const table = el("table", { class: "table heat", id: "heatmap", "aria-label": "median per cell" },
    el("thead", {}, el("tr", {}, el("th", {}, colsP ? `${rowsP} \\ ${colsP}` : rowsP), ...cols.map((c) => el("th", {}, String(c))))));
  const body = el("tbody");
  for (const r of rows) {
    const tr = el("tr", {}, el("th", {}, String(r)));
    for (const c of cols) {
      const cell = run.cells.find((x) => x.params[rowsP] === r && (!colsP || x.params[colsP] === c));
      const m = cell && cell.stats ? cell.stats.median : null;
      const f = m == null || hi === lo ? 0.5 : (Math.log(m) - lo) / (hi - lo);
      tr.append(el("td", { style: `background:hsl(${120 - 120 * f} 70% 70%)`, title: cell ? cell.key : "" }, m == null ? (cell ? cell.status : "–") : fmt(m, "s")));
    }
    body.append(tr);
  }
  table.append(body); wrap.append(table);
  return wrap;
}

function boxplots(run) {
  const cells = run.cells.filter((c) => c.samples.length);
  const W = 800, rowH = 18, H = 24 + rowH * cells.length, L = 260;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "box plots of each cell's samples"); svg.id = "boxplots";
  const all = cells.flatMap((c) => c.samples); if (!all.length) return el("p", { class: "hint" }, "No samples.");
  const lo = Math.log(Math.min(...all)), hi = Math.log(Math.max(...all)) + 1e-9;
  const x = (v) => L + (W - L - 10) * (Math.log(v) - lo) / (hi - lo);
  const add = (tag, attrs, text) => { const n = document.createElementNS(svg.namespaceURI, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); return n; };
  cells.forEach((c, i) => {
    const s = [...c.samples].sort((a, b) => a - b); const q = (p) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))];
    const yy = 12 + i * rowH;
    add("text", { x: 4, y: yy + 4 }, c.key.length > 40 ? c.key.slice(0, 39) + "…" : c.key);
    add("line", { class: "axis", x1: x(s[0]), x2: x(s[s.length - 1]), y1: yy, y2: yy });
    add("rect", { class: "band", x: x(q(0.25)), y: yy - 6, width: Math.max(1, x(q(0.75)) - x(q(0.25))), height: 12 });
    add("line", { class: "line", x1: x(q(0.5)), x2: x(q(0.5)), y1: yy - 6, y2: yy + 6 });
  });
  add("text", { x: L, y: H - 2 }, fmt(Math.exp(lo), "s"));
  add("text", { x: W - 70, y: H - 2 }, fmt(Math.exp(hi), "s"));
  return el("div", { class: "chart" }, el("h4", {}, "samples per cell (log scale)"), svg);
}

// --- analytics -----------------------------------------------------------------------------

async function loadAnalytics() {
  if (!state.series.length) state.series = await api("/series");
  const pick = $("analytics-series");
  if (!pick.children.length) for (const s of state.series) pick.append(el("option", { value: s.id }, s.id));
  await showAnalytics();
}

let analyticsRender = 0;  // as for suites: only the newest call draws

async function showAnalytics() {
  const id = $("analytics-series").value; if (!id) { $("analytics-message").textContent = "No series stored yet."; return; }
  const token = ++analyticsRender;
  const horizon = $("analytics-horizon").value;
  const history = await api(`/series/query?id=${encodeURIComponent(id)}&range=24h`);
  const problems = [];
  let extra = { static: true };
  try {
    const f = await api(`/analytics/forecast?id=${encodeURIComponent(id)}&horizon=${horizon}`);
    extra = { ...extra, ft: f.t, mean: f.mean, lower: f.lower, upper: f.upper };
  } catch (error) { problems.push(error.message); }
  try {
    const a = await api(`/analytics/anomalies?id=${encodeURIComponent(id)}`);
    extra.detections = a.detections;
  } catch (error) { problems.push(error.message); }
  if (token !== analyticsRender) return;
  $("analytics-message").textContent = problems.join(" ");
  const box = $("analytics-chart"); box.replaceChildren();
  const t0 = history.t.length ? history.t[0] : Date.now() / 1000 - 3600;
  const t1 = extra.ft && extra.ft.length ? extra.ft[extra.ft.length - 1] : (history.t.length ? history.t[history.t.length - 1] : Date.now() / 1000);
  box.append(chart(id, history, { start: t0, end: t1 }, { ...extra, t0, t1 }));
}

// --- start ---------------------------------------------------------------------------------

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme; else delete document.documentElement.dataset.theme;
  localStorage.setItem("allele-theme", theme || "");
}

function start() {
  applyTheme(localStorage.getItem("allele-theme") || "");
  $("who").value = localStorage.getItem("allele-who") || "";
  $("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme === "dark" ||
      (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
    applyTheme(dark ? "light" : "dark");
  });
  $("series-filter").addEventListener("input", fillSeriesPicker);
  $("series-pick").addEventListener("change", () => {
    state.picked = [...$("series-pick").selectedOptions].map((o) => o.value);
    refreshCharts().then(restartRefresh).catch(report);
  });
  $("range").addEventListener("change", () => {
    const abs = $("range").value === "abs";
    $("abs-start").hidden = !abs; $("abs-end").hidden = !abs; state.zoom = null; $("reset-zoom").hidden = true;
    refreshCharts().then(restartRefresh).catch(report);
  });
  for (const id of ["abs-start", "abs-end"]) $(id).addEventListener("change", () => refreshCharts().catch(report));
  $("reset-zoom").addEventListener("click", () => { state.zoom = null; $("reset-zoom").hidden = true; refreshCharts().then(restartRefresh).catch(report); });
  $("refresh").addEventListener("change", restartRefresh);
  $("alert-state").addEventListener("change", () => loadAlerts().catch(report));
  $("silence-form").addEventListener("submit", addSilence);
  $("suite-pick").addEventListener("change", () => showSuite().catch(report));
  $("suite-base").addEventListener("change", () => showSuite().catch(report));
  $("analytics-series").addEventListener("change", () => showAnalytics().catch(report));
  $("analytics-horizon").addEventListener("change", () => showAnalytics().catch(report));
  window.addEventListener("hashchange", () => show(location.hash.slice(1) || "overview"));
  openStream(false);
  api("/status").then((status) => {
    if (status.mlflow) { $("mlflow-link").href = status.mlflow; $("mlflow-link").hidden = false; }
  }).catch(report);
  show(location.hash.slice(1) || "overview");
}

start();
