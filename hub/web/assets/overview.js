// The overview: failures per second stacked by errno (an SVG chart of GetStats' time
// buckets), the top pods, nodes, processes and errnos (GetStats), the warnings, the tappers
// and the alerts firing.

import { getJson } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#d9534f", "#f0ad4e", "#5bc0de", "#5cb85c", "#9b59b6", "#34495e", "#e67e22",
  "#16a085", "#c0392b", "#7f8c8d"];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Per bucket: {start (s), counts: Map errno name -> failures}; and the errnos seen. */
function perErrno(answer) {
  const errnos = [];
  const buckets = (answer.buckets || []).map((b) => {
    const counts = new Map();
    for (const row of b.rows || []) {
      const name = row.errno_name || String(row.errno);
      if (!errnos.includes(name)) errnos.push(name);
      counts.set(name, (counts.get(name) || 0) + Number(row.count || 0));
    }
    return { start: Date.parse(b.since) / 1000, counts };
  });
  return { buckets, errnos: errnos.sort() };
}

/** Draws the answer of stats?group_by=errno&bucket=AUTO as stacked bars per second. */
function drawChart(box, legend, answer) {
  const size = Number(answer.bucket_seconds || 1);
  const { buckets, errnos } = perErrno(answer);
  const colorOf = (name) => COLORS[errnos.indexOf(name) % COLORS.length];
  let peak = 0;
  for (const b of buckets) {
    let total = 0;
    for (const n of b.counts.values()) total += n;
    peak = Math.max(peak, total / size);
  }
  const [w, h, left, bottom] = [Math.max(box.clientWidth, 300), 200, 48, 20];
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart-svg", role: "img" });
  chart.appendChild(svg("title", {}, `failures per second, ${size} s buckets`));
  const plotH = h - bottom - 10;
  const barW = (w - left) / Math.max(buckets.length, 1);
  const scale = peak > 0 ? plotH / peak : 0;
  buckets.forEach((b, i) => {
    let y = h - bottom;
    for (const name of errnos) {
      const perSecond = (b.counts.get(name) || 0) / size;
      if (!perSecond) continue;
      const height = perSecond * scale;
      y -= height;
      const rect = svg("rect", { x: left + i * barW, y, width: Math.max(barW - 1, 1), height,
        fill: colorOf(name) });
      rect.appendChild(svg("title", {}, `${name}: ${perSecond.toFixed(2)}/s`));
      chart.appendChild(rect);
    }
  });
  chart.appendChild(svg("line", { x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: "axis" }));
  chart.appendChild(svg("text", { x: 2, y: 14, class: "tick" }, `${peak.toFixed(2)}/s`));
  chart.appendChild(svg("text", { x: 2, y: h - bottom, class: "tick" }, "0"));
  if (buckets.length) {
    const clock = (s) => new Date(s * 1000).toISOString().slice(11, 19);
    chart.appendChild(svg("text", { x: left, y: h - 4, class: "tick" }, clock(buckets[0].start)));
    chart.appendChild(svg("text", { x: w - 60, y: h - 4, class: "tick" },
      clock(buckets[buckets.length - 1].start + size)));
  }
  box.replaceChildren(chart);
  legend.replaceChildren(...errnos.map((name) => {
    const item = document.createElement("li");
    const swatch = svg("svg", { width: 10, height: 10, class: "swatch" });
    swatch.appendChild(svg("rect", { width: 10, height: 10, fill: colorOf(name) }));
    item.append(swatch, document.createTextNode(` ${name} `));
    return item;
  }), `${size} s buckets`);
}

/** Fills `table` with a header and rows of text cells. */
function fillTable(table, headers, rows, empty) {
  const head = document.createElement("tr");
  for (const h of headers) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const body = rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c === null || c === undefined ? "—" : String(c);
      tr.appendChild(td);
    }
    return tr;
  });
  if (body.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = headers.length;
    td.className = "empty";
    td.textContent = empty;
    tr.appendChild(td);
    body.push(tr);
  }
  table.replaceChildren(head, ...body);
}

const WINDOWS = { 60: "1m", 300: "5m", 900: "15m", 3600: "1h" };

/** GetStats takes the node filter only. */
function nodeFilter(filters) {
  const params = new URLSearchParams();
  for (const v of filters.getAll("node")) params.append("node", v);
  return params;
}

/** `namespace/pod`, or an empty cell for an event outside any pod. */
function podCell(namespace, name) {
  return namespace || name ? `${namespace || ""}/${name || ""}` : "";
}

const TOPS = [
  ["pod", "top-pod", "pod", (r) => podCell(r.namespace, r.pod)],
  ["node", "top-node", "node", (r) => r.node],
  ["comm", "top-comm", "process", (r) => r.comm],
  ["errno", "top-errno", "errno", (r) => r.errno_name || r.errno],
];

async function tops(filters, range) {
  await Promise.all(TOPS.map(async ([groupBy, id, label, name]) => {
    const params = nodeFilter(filters);
    params.set("group_by", groupBy);
    params.set("window", WINDOWS[range] || "1h");
    const table = document.getElementById(id);
    try {
      const stats = await getJson("api/v1/stats", params);
      const rows = (stats.rows || []).slice().sort((a, b) => Number(b.count) - Number(a.count));
      fillTable(table, [label, "failures"], rows.slice(0, 10).map((r) => [name(r), r.count]),
        "no failures in this window");
    } catch (err) {
      fillTable(table, [label, "failures"], [], err.message);
    }
  }));
}

async function warnings(filters) {
  const params = new URLSearchParams();
  for (const n of ["node", "namespace", "pod", "container", "comm", "pid"]) {
    for (const v of filters.getAll(n)) params.append(n, v);
  }
  params.set("since", "1h");
  params.set("limit", "1000");
  const table = document.getElementById("warnings");
  const headers = ["kind", "node", "namespace/pod", "comm", "pid", "used / limit", "exhausted in", "time"];
  try {
    const page = await getJson("api/v1/warnings", params);
    const latest = new Map();
    for (const item of page.items || []) {
      const w = item.warning || item;
      latest.set(`${w.node}|${w.kind}|${w.pid}`, w);
    }
    const rows = [...latest.values()].reverse().map((w) => [
      w.kind, w.node, podCell(w.pod && w.pod.namespace, w.pod && w.pod.name),
      w.comm, w.pid, `${w.used} / ${w.limit}`,
      typeof w.eta_seconds === "number" ? `${Math.round(w.eta_seconds)} s` : "—", w.ts]);
    fillTable(table, headers, rows, "no warnings in the last hour");
  } catch (err) {
    fillTable(table, headers, [], err.message);
  }
}

async function tappers(filters) {
  const params = nodeFilter(filters);
  const table = document.getElementById("tappers");
  const headers = ["node", "connected", "last seen", "probe mode", "kernel", "events", "losses"];
  try {
    const answer = await getJson("api/v1/tappers", params);
    fillTable(table, headers, (answer.tappers || []).map((t) => [
      t.node, t.connected ? "yes" : "no", t.last_seen, t.probe_mode, t.kernel_release,
      t.events_received, t.losses_reported]), "no tapper has reported yet");
  } catch (err) {
    fillTable(table, headers, [], err.message);
  }
}

async function alerts() {
  const table = document.getElementById("alerts");
  const headers = ["alert", "labels", "summary", "since"];
  try {
    const answer = await getJson("api/v1/alerts");
    fillTable(table, headers, (answer.alerts || []).map((a) => {
      const { alertname, ...labels } = a.labels || {};
      const summary = (a.annotations || {}).summary || (a.annotations || {}).description;
      return [alertname, Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(" "),
        summary, a.startsAt];
    }),
    "no alert is firing (rules come from the hub's --alert-rules)");
  } catch (err) {
    fillTable(table, headers, [], err.status === 404 ? "this hub exposes no alerts" : err.message);
  }
}

async function chart(filters, range) {
  const params = nodeFilter(filters);
  params.set("group_by", "errno");
  params.set("window", WINDOWS[range] || "1h");
  params.set("bucket", "AUTO");
  const box = document.getElementById("chart");
  try {
    drawChart(box, document.getElementById("legend"), await getJson("api/v1/stats", params));
  } catch (err) {
    box.textContent = err.message;
  }
}

/** Refreshes every panel for the last `range` seconds. */
export function refreshOverview(filters, range) {
  return Promise.all([chart(filters, range), tops(filters, range), warnings(filters),
    tappers(filters), alerts()]);
}
