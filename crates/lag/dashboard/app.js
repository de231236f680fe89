// orderflow lag dashboard: polls the JSON API and redraws without reloading.
"use strict";

const state = { groups: [], selected: null, history: [], lastAt: null, interval: 5000, charts: {}, takenAt: null, dlq: [] };
const COLORS = ["#3b7dd8", "#d33a3a", "#2e9d5b", "#e0a100", "#8a4fd0", "#1aa3a3", "#e06a00", "#6b7385"];

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};
const fmtInt = (n) => Number(n).toLocaleString("en-US");
const fmtNum = (n, d = 1) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
const fmtSecs = (s) => {
  if (s === null || s === undefined) return "–";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
};

async function getJson(url) {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(url + ": HTTP " + res.status);
  return res.json();
}

const fmtTime = (ms) => new Date(ms).toLocaleTimeString("en-GB");
const fmtAge = (ms) => fmtSecs(Math.max(0, Date.now() - ms) / 1000);

function renderMeta(body) {
  const s = body.snapshot;
  const meta = document.getElementById("meta");
  meta.textContent =
    `updated ${fmtTime(s.taken_at_ms)} · poll ${s.poll_millis} ms · every ${body.interval_ms / 1000} s` +
    (body.stale ? " · STALE" : "");
  meta.setAttribute("data-taken-at", String(s.taken_at_ms));
  const warn = document.getElementById("warnings");
  warn.hidden = s.warnings.length === 0;
  warn.textContent = s.warnings.join(" · ");
  if (body.stale) {
    showStale(`Stale figures: the last ${body.failed_polls} poll(s) of Kafka failed, so what you see is from ` +
      `${fmtTime(s.taken_at_ms)} (${fmtAge(s.taken_at_ms)} ago). Last error: ${body.last_error || "unknown"}`);
  } else {
    showStale(null);
  }
}

// The banner over everything when the figures are old: the exporter cannot poll Kafka,
// or the page cannot reach the exporter.
function showStale(text) {
  const banner = document.getElementById("stale");
  banner.hidden = text === null;
  banner.textContent = text || "";
}

const measuring = (text = "measuring") => el("span", { class: "measuring-text", text });

// Catch-up time, or why there is none: not measured yet, or the group is not gaining.
function catchupCell(g) {
  if (g.lag > 0 && g.measuring) return measuring();
  if (g.catchup_seconds === null) return el("span", { text: "not gaining" });
  return el("span", { text: fmtSecs(g.catchup_seconds) });
}

// Members listed on a card; the Members table of the selected group lists all.
const CARD_MEMBERS = 5;

function memberList(g) {
  const list = el("ul", { class: "members", "data-field": "members" });
  const m = g.membership;
  if (m.kind !== "known") {
    list.append(el("li", { class: "empty", text: "members unknown: " + m.reason }));
  } else if (m.members.length === 0) {
    list.append(el("li", { class: "empty", text: `no active members (${m.state})` }));
  } else {
    for (const member of m.members.slice(0, CARD_MEMBERS)) {
      list.append(el("li", { "data-client-id": member.client_id },
        el("b", { text: member.client_id }), el("span", { class: "host", text: " @ " + member.client_host }),
        " · " + fmtAssignment(member.assignment)));
    }
    const more = m.members.length - CARD_MEMBERS;
    if (more > 0) list.append(el("li", { class: "empty", text: `and ${more} more: select the group for all members` }));
  }
  return list;
}

// A link that opens the records of a dead-letter topic in the panel below.
function dlqLink(d) {
  const link = el("a", { href: "#dlq-records-box", "data-dlq-topic": d.dlq_topic,
    text: `${fmtInt(d.records)} record(s) in ${d.dlq_topic}` });
  link.addEventListener("click", (ev) => { ev.stopPropagation(); showDlq(d.dlq_topic); });
  return link;
}

// The dead-letter topics of a group's topics, as links.
function dlqOf(g) {
  const topics = new Set(g.topics.map((t) => t.topic));
  const mine = state.dlq.filter((d) => topics.has(d.source_topic));
  if (mine.length === 0) return el("div", { class: "dlq", "data-field": "dlq", text: "DLQ: no dead-letter topic" });
  const line = el("div", { class: "dlq", "data-field": "dlq" }, "DLQ: ");
  mine.forEach((d, i) => { if (i > 0) line.append(", "); line.append(dlqLink(d)); });
  return line;
}

async function showDlq(topic) {
  const box = document.getElementById("dlq-records-box");
  const meta = document.getElementById("dlq-records-meta");
  const cats = document.querySelector("#dlq-categories tbody");
  const rows = document.querySelector("#dlq-records tbody");
  box.hidden = false;
  document.getElementById("dlq-records-title").textContent = `Dead-letter records of ${topic}, newest first`;
  meta.textContent = "reading…";
  cats.replaceChildren();
  rows.replaceChildren();
  box.setAttribute("data-dlq-topic", topic);
  box.removeAttribute("data-loaded");
  try {
    const body = await getJson("/api/dlq?topic=" + encodeURIComponent(topic));
    meta.textContent = `The newest ${body.records.length} record(s), at most ${body.per_partition} per partition` +
      (body.complete ? "." : "; reading took too long, some partitions are missing.") +
      " To replay them: orderflow dlq redrive.";
    for (const c of body.by_category) {
      cats.append(el("tr", { "data-category": c.category },
        el("td", { text: c.category }), el("td", { class: "num", text: fmtInt(c.records) })));
    }
    if (body.records.length === 0) rows.append(el("tr", {}, el("td", { class: "empty", colspan: "7", text: "no records" })));
    for (const r of body.records) {
      const source = r.source_topic === null ? "–" : `${r.source_topic}[${r.source_partition ?? "?"}]@${r.source_offset ?? "?"}`;
      rows.append(el("tr", { "data-offset": `${r.partition}:${r.offset}` },
        el("td", { text: r.timestamp_ms === null ? "–" : new Date(r.timestamp_ms).toLocaleString("en-GB") }),
        el("td", {}, el("b", { text: r.category })), el("td", { class: "error", text: r.error || "–" }),
        el("td", { text: source }), el("td", { text: r.consumer_group || "–" }),
        el("td", { class: "num", text: r.attempts === null ? "–" : String(r.attempts) }),
        el("td", { text: `[${r.partition}]@${r.offset}` })));
    }
  } catch (err) {
    meta.textContent = "could not read the records: " + err.message;
  }
  box.setAttribute("data-loaded", "true");
}

// Worst first, as the engine ranks statuses (model.rs declares them best to worst).
const SEVERITY = ["NOT_FOUND", "STOPPED", "STALLED", "BLOCKED_BY_TRANSACTION", "REWIND", "LAGGING", "UNKNOWN", "OK", "CAUGHT_UP"];
const severity = (status) => { const i = SEVERITY.indexOf(status); return i < 0 ? SEVERITY.length : i; };

// The order a person wants with many groups: those that need attention first (status
// severity, then lag in records), then by name.
function byAttention(a, b) {
  return severity(a.status) - severity(b.status) || b.lag - a.lag || a.group.localeCompare(b.group);
}

// A group with no members and no record waiting for one folds away: with hundreds of
// groups, most are such leftovers. A group without members whose records wait (STOPPED
// once its window is full) stays in view.
const folds = (g) => g.membership.kind === "known" && g.membership.members.length === 0
  && g.lag === 0 && (g.status === "CAUGHT_UP" || g.status === "OK");

function groupCard(g) {
  const members = g.membership.kind === "known"
    ? `${g.membership.state} · ${g.membership.members.length} member(s)` : "members unknown";
  const rates = g.measuring ? "rates measuring" : `${fmtNum(g.consume_rate)}/s in, ${fmtNum(g.produce_rate)}/s out`;
  const card = el("div", { class: "card" + (g.group === state.selected ? " selected" : ""), "data-group": g.group },
    el("div", { class: "name" }, g.group, el("span", { class: "badge " + g.status, text: g.status, "data-field": "status" })),
    el("div", { class: "figures" },
      el("div", {}, el("b", { text: fmtInt(g.lag), "data-field": "lag", "data-value": String(g.lag) }), el("small", { text: "records behind" })),
      el("div", {}, el("b", { text: fmtSecs(g.lag_seconds), "data-field": "lag-seconds" }), el("small", { text: "lag" })),
      el("div", {}, el("b", { "data-field": "catch-up" }, catchupCell(g)), el("small", { text: "catch-up" }))),
    memberList(g),
    dlqOf(g),
    el("div", { class: "reason", text: `${members} · ${rates} · ${g.reason}` }));
  card.addEventListener("click", () => { state.selected = g.group; refresh(); });
  return card;
}

// The groups whose name contains the filter box's text (any case).
function filtered(groups) {
  const needle = document.getElementById("group-filter").value.trim().toLowerCase();
  return needle === "" ? groups : groups.filter((g) => g.group.toLowerCase().includes(needle));
}

function renderGroups(groups) {
  const box = document.getElementById("groups");
  const folded = document.getElementById("folded-groups");
  const count = document.getElementById("group-count");
  const shown = filtered(groups);
  const open = shown.filter((g) => !folds(g));
  const idle = shown.filter(folds);
  count.textContent = shown.length === groups.length ? `${fmtInt(groups.length)} group(s)`
    : `${fmtInt(shown.length)} of ${fmtInt(groups.length)} group(s) match`;
  box.replaceChildren();
  if (groups.length === 0) box.append(el("div", { class: "empty", text: "no consumer groups" }));
  else if (shown.length === 0) box.append(el("div", { class: "empty", text: "no group matches the filter" }));
  else if (open.length === 0) box.append(el("div", { class: "empty", text: "no group needs attention" }));
  for (const g of open) box.append(groupCard(g));
  folded.hidden = idle.length === 0;
  document.getElementById("folded-summary").textContent =
    `${fmtInt(idle.length)} group(s) without members and nothing to read: show them`;
  const cards = document.getElementById("folded-cards");
  cards.replaceChildren();
  for (const g of idle) cards.append(groupCard(g));
}

function renderPartitions(group) {
  const title = document.getElementById("partitions-title");
  const body = document.querySelector("#partitions tbody");
  const heat = document.getElementById("heat");
  body.replaceChildren();
  heat.replaceChildren();
  if (!group) { title.textContent = "Partitions"; return; }
  title.textContent = `Partitions of ${group.group}`;
  const parts = group.topics.flatMap((t) => t.partitions);
  const max = Math.max(1, ...parts.map((p) => p.lag));
  for (const p of parts) {
    const share = p.lag / max;
    const cell = el("div", { title: `${p.topic}[${p.partition}] lag ${p.lag} ${p.status}`, text: String(p.partition) });
    cell.style.background = p.lag === 0 ? "var(--CAUGHT_UP)" : `hsl(${40 - 40 * share}, 85%, ${55 - 15 * share}%)`;
    heat.append(cell);
    body.append(el("tr", {},
      el("td", { text: p.topic }), el("td", { class: "num", text: String(p.partition) }),
      el("td", { class: "num", text: p.committed === null ? "–" : String(p.committed) }),
      el("td", { class: "num", text: String(p.end_offset) }),
      el("td", { class: "num", text: String(p.lag) }), el("td", { class: "num", text: fmtNum(p.lag_seconds) }),
      el("td", { class: "num" }, p.measuring ? measuring() : fmtNum(p.consume_rate)),
      el("td", { class: "num" }, p.measuring ? measuring() : fmtNum(p.produce_rate)),
      el("td", {}, el("span", { class: "badge " + p.status, text: p.status })),
      el("td", { class: "reason", text: p.reason + (p.offset_state === "no_commit" ? " (no commit)" : "") }),
      el("td", { text: p.consumer_id || (group.membership.kind === "known" ? "–" : "unknown") })));
  }
}

// "orders[0,2] audit[1]" from a member's [[topic, partition], ...] assignment.
function fmtAssignment(assignment) {
  const byTopic = new Map();
  for (const [topic, partition] of assignment) {
    if (!byTopic.has(topic)) byTopic.set(topic, []);
    byTopic.get(topic).push(partition);
  }
  if (byTopic.size === 0) return "–";
  return [...byTopic.keys()].sort()
    .map((t) => `${t}[${byTopic.get(t).sort((a, b) => a - b).join(",")}]`).join(" ");
}

function renderMembers(group) {
  const title = document.getElementById("members-title");
  const body = document.querySelector("#members tbody");
  body.replaceChildren();
  if (!group) { title.textContent = "Members"; return; }
  const m = group.membership;
  if (m.kind !== "known") {
    title.textContent = `Members of ${group.group}`;
    body.append(el("tr", {}, el("td", { class: "empty", colspan: "4", text: "unknown: " + m.reason })));
    return;
  }
  title.textContent = `Members of ${group.group} (${m.state})`;
  if (m.members.length === 0) body.append(el("tr", {}, el("td", { class: "empty", colspan: "4", text: "no active members" })));
  for (const member of m.members) {
    body.append(el("tr", { "data-member": member.member_id },
      el("td", { text: member.member_id }), el("td", { text: member.client_id }),
      el("td", { text: member.client_host }), el("td", { text: fmtAssignment(member.assignment) })));
  }
}

function renderDlq(dlq) {
  const body = document.querySelector("#dlq tbody");
  body.replaceChildren();
  if (dlq.length === 0) body.append(el("tr", {}, el("td", { class: "empty", colspan: "4", text: "no dead-letter topics" })));
  for (const d of dlq) {
    body.append(el("tr", { "data-dlq": d.source_topic },
      el("td", { text: d.source_topic }), el("td", {}, dlqLink(d)),
      el("td", { class: "num", text: String(d.records) }), el("td", { class: "num", text: fmtNum(d.rate, 2) })));
  }
}

// A binary built without scripts/build-dashboard.sh serves a placeholder instead of uPlot.
const CHARTS_MISSING = "Charts unavailable: this build has no chart library (uPlot). " +
  "Run scripts/build-dashboard.sh, then rebuild orderflow. The tables and the JSON API work without it.";

// Draws (or updates) a uPlot time chart; rebuilt only when the set of series changes.
// `instead`: a note to show in place of the chart (figures not measured yet).
function drawChart(id, names, xs, columns, instead = null) {
  if (typeof uPlot === "undefined") return; // showChartsMissing() said so at load
  const target = document.getElementById(id);
  const key = names.join("\u0000");
  const data = [xs, ...columns];
  let chart = state.charts[id];
  // One point draws nothing: say why the chart is empty instead of showing bare axes.
  if (instead === null && xs.length < 2) instead = "measuring: the chart draws from the second poll on";
  if (instead === null && names.length === 0) instead = "nothing to draw: no group";
  if (instead !== null) {
    if (chart) chart.plot.destroy();
    delete state.charts[id];
    target.replaceChildren(el("div", { class: "chart-note", text: instead }));
    return;
  }
  if (chart && chart.key === key) { chart.plot.setData(data); return; }
  if (chart) chart.plot.destroy();
  target.replaceChildren();
  const width = Math.max(300, target.clientWidth || 400);
  const opts = {
    width, height: 200,
    series: [{}, ...names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false }))],
    axes: [{}, { size: 60 }],
    legend: { live: false },
  };
  state.charts[id] = { key, plot: new uPlot(opts, data, target) };
}

const CHART_GROUPS = 10;

function renderCharts(selected) {
  const points = state.history;
  const xs = points.map((p) => p.at_ms / 1000);
  // With hundreds of groups, a line each would hide them all: the first CHART_GROUPS in
  // the cards' order (attention first, the folded groups last) are drawn.
  const inHistory = new Set(points.flatMap((p) => p.groups.map((g) => g.group)));
  const cardsOrder = [...state.groups.filter((g) => !folds(g)), ...state.groups.filter(folds)];
  const groupNames = cardsOrder.map((g) => g.group).filter((n) => inHistory.has(n)).slice(0, CHART_GROUPS).sort();
  drawChart("chart-groups", groupNames, xs,
    groupNames.map((n) => points.map((p) => { const g = p.groups.find((x) => x.group === n); return g ? g.lag : null; })));

  const sel = state.selected;
  document.getElementById("topics-title").textContent = sel ? `Lag per topic of ${sel}` : "Lag per topic";
  document.getElementById("rates-title").textContent = sel ? `Consume vs produce rate of ${sel} (records/s)` : "Consume vs produce rate";
  const pick = (p) => p.groups.find((x) => x.group === sel);
  const topicNames = [...new Set(points.flatMap((p) => (pick(p) ? pick(p).topics.map((t) => t[0]) : [])))].sort();
  drawChart("chart-topics", topicNames, xs,
    topicNames.map((t) => points.map((p) => { const g = pick(p); const e = g && g.topics.find((x) => x[0] === t); return e ? e[1] : null; })));
  drawChart("chart-rates", ["consume", "produce"], xs, [
    points.map((p) => (pick(p) ? pick(p).consume_rate : null)),
    points.map((p) => (pick(p) ? pick(p).produce_rate : null)),
  ], selected && selected.measuring ? "measuring: rates need a full window of polls" : null);
}

async function refresh() {
  try {
    const body = await getJson("/api/groups");
    state.interval = Math.max(1000, body.interval_ms);
    const groups = [...body.snapshot.groups].sort(byAttention);
    state.groups = groups;
    if (!groups.some((g) => g.group === state.selected)) state.selected = groups.length ? groups[0].group : null;
    const hist = await getJson("/api/history" + (state.lastAt ? "?since=" + state.lastAt : ""));
    state.history = state.history.concat(hist.points);
    const horizon = Date.now() - 3600 * 1000;
    state.history = state.history.filter((p) => p.at_ms >= horizon);
    if (state.history.length) state.lastAt = state.history[state.history.length - 1].at_ms;
    state.takenAt = body.snapshot.taken_at_ms;
    state.dlq = body.snapshot.dlq;
    renderMeta(body);
    renderGroups(groups);
    renderPartitions(groups.find((g) => g.group === state.selected));
    renderMembers(groups.find((g) => g.group === state.selected));
    renderDlq(body.snapshot.dlq);
    renderCharts(groups.find((g) => g.group === state.selected));
  } catch (err) {
    if (state.takenAt === null) {
      document.getElementById("meta").textContent = "waiting for the exporter: " + err.message;
    } else {
      showStale(`Stale figures: the exporter does not answer (${err.message}), so what you see is from ` +
        `${fmtTime(state.takenAt)} (${fmtAge(state.takenAt)} ago).`);
    }
  }
}

// Said at load, before and regardless of the first API answer.
function showChartsMissing() {
  if (typeof uPlot !== "undefined") return;
  for (const id of ["chart-groups", "chart-topics", "chart-rates"]) {
    document.getElementById(id).replaceChildren(el("div", { class: "empty charts-missing", text: CHARTS_MISSING }));
  }
}

// Typing in the filter box narrows the groups at once, without waiting for the next poll.
document.getElementById("group-filter").addEventListener("input", () => renderGroups(state.groups));

async function loop() {
  await refresh();
  setTimeout(loop, state.interval);
}
showChartsMissing();
loop();
