/* The statistics page: reads GET /api/statistics and draws bar charts as inline SVG (targets against actuals, events per row). */
"use strict";
(function () {
  const {api, message, problem} = window.Smokewatch;
  const SVG = "http://www.w3.org/2000/svg";
  const form = document.getElementById("stats-form");
  const status = document.getElementById("stats-status");
  const unavailable = document.getElementById("stats-unavailable");
  const results = document.getElementById("stats");
  const EVENT_SERIES = [["events", "bar-events"], ["confirmed", "bar-confirmed"], ["dismissed", "bar-dismissed"]];
  const SERIES_LABELS = {events: "events", confirmed: "confirmed_count", dismissed: "dismissed_count"};
  const TARGETS = ["persons_dissuaded", "venues_ordered_to_rectify"];
  const COLUMNS = ["events", "confirmed", "dismissed", "false_alarm_rate", "persons_dissuaded", "venues_ordered_to_rectify",
                   "penalties_referred", "median_review_minutes"];
  const COLUMN_LABELS = {confirmed: "confirmed_count", dismissed: "dismissed_count"};

  function node(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function nextDay(day) {
    const [year, month, date] = day.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, date + 1)).toISOString().slice(0, 10);
  }

  /* A date range when one is given (the end day included), otherwise the quarter; the API takes one or the other. */
  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    if (data.get("start") || data.get("end")) {
      if (data.get("start")) params.set("start", data.get("start"));
      if (data.get("end")) params.set("end", nextDay(data.get("end")));
    } else if (data.get("quarter")) {
      params.set("quarter", data.get("quarter"));
    }
    for (const name of ["site", "camera", "group_by"]) if (data.get(name)) params.set(name, data.get(name));
    return params.toString();
  }

  function targetsChart(totals, targets) {
    const width = 640, rowHeight = 56, left = 170, right = 20, top = 10;
    const svg = node("svg", {viewBox: `0 0 ${width} ${top + rowHeight * TARGETS.length}`, role: "img", class: "bar-chart",
                             "aria-label": TARGETS.map((key) => message(key)).join(", ")});
    TARGETS.forEach((key, index) => {
      const actual = totals[key] || 0;
      const target = targets ? targets[key] : null;
      const scale = Math.max(actual, target || 0, 1) * 1.15;  // room to the right of the target line
      const span = width - left - right;
      const y = top + index * rowHeight;
      svg.appendChild(node("text", {x: 0, y: y + 22, class: "chart-label"}, message(key)));
      svg.appendChild(node("rect", {x: left, y: y + 6, width: span, height: 24, class: "bar-track"}));
      svg.appendChild(node("rect", {x: left, y: y + 6, width: span * actual / scale, height: 24, class: "bar-actual",
                                    "data-metric": key, "data-value": actual}));
      let caption = `${message("actual")} ${actual}`;
      if (target !== null && target !== undefined) {
        const x = left + span * target / scale;
        svg.appendChild(node("line", {x1: x, x2: x, y1: y, y2: y + 36, class: "target-line", "data-metric": key, "data-value": target}));
        caption += ` / ${message("target")} ${target}` + (target > 0 ? ` (${Math.round(100 * actual / target)}%)` : "");
      }
      svg.appendChild(node("text", {x: left, y: y + 46, class: "chart-caption"}, caption));
    });
    return svg;
  }

  function eventsChart(rows) {
    const width = 640, left = 170, right = 40, barHeight = 12, gap = 14;
    const groupHeight = EVENT_SERIES.length * barHeight + gap;
    const legendHeight = 24;
    const height = legendHeight + rows.length * groupHeight;
    const svg = node("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", class: "bar-chart", "aria-label": message("events")});
    const scale = Math.max(1, ...rows.map((row) => row.events || 0));
    const span = width - left - right;
    EVENT_SERIES.forEach(([key, css], index) => {
      const x = left + index * 130;
      svg.appendChild(node("rect", {x, y: 4, width: 12, height: 12, class: css}));
      svg.appendChild(node("text", {x: x + 18, y: 15, class: "chart-caption"}, message(SERIES_LABELS[key])));
    });
    rows.forEach((row, index) => {
      const y = legendHeight + index * groupHeight;
      svg.appendChild(node("text", {x: 0, y: y + 22, class: "chart-label"}, row.label || row.key));
      EVENT_SERIES.forEach(([key, css], series) => {
        const value = row[key] || 0;
        const barY = y + series * barHeight;
        svg.appendChild(node("rect", {x: left, y: barY, width: Math.max(value ? 1 : 0, span * value / scale), height: barHeight - 2,
                                      class: css, "data-row": row.key, "data-metric": key, "data-value": value}));
        svg.appendChild(node("text", {x: left + span * value / scale + 4, y: barY + barHeight - 3, class: "chart-value"}, String(value)));
      });
    });
    return svg;
  }

  function cell(row, key) {
    const value = row[key];
    if (value === null || value === undefined) return "–";
    if (key === "false_alarm_rate") return (100 * value).toFixed(1) + "%";
    if (key === "median_review_minutes") return value.toFixed(1);
    return String(value);
  }

  function table(rows, totals) {
    const element = document.getElementById("stats-table");
    element.replaceChildren();
    const head = element.createTHead().insertRow();
    for (const text of ["", ...COLUMNS.map((key) => message(COLUMN_LABELS[key] || key))]) {
      const th = document.createElement("th");
      th.textContent = text;
      head.appendChild(th);
    }
    const body = element.createTBody();
    for (const row of [...rows, {label: message("totals"), ...totals}]) {
      const tr = body.insertRow();
      tr.insertCell().textContent = row.label || row.key;
      for (const key of COLUMNS) tr.insertCell().textContent = cell(row, key);
    }
  }

  async function load() {
    const params = query();
    document.getElementById("download-csv").href = "/api/statistics.csv?" + params;
    document.getElementById("download-xlsx").href = "/api/statistics.xlsx?" + params;
    status.hidden = false;
    const result = await api("GET", "/api/statistics?" + params);
    status.hidden = true;
    if (result.status === 404) {
      unavailable.hidden = false;
      results.hidden = true;
      return;
    }
    if (!result.ok) {
      status.textContent = problem(result);
      status.classList.add("error");
      status.hidden = false;
      return;
    }
    status.classList.remove("error");
    const data = result.data;
    unavailable.hidden = true;
    results.hidden = false;
    document.getElementById("targets-chart").replaceChildren(targetsChart(data.totals, data.targets));
    const events = document.getElementById("events-chart");
    if (data.rows.length) events.replaceChildren(eventsChart(data.rows));
    else events.textContent = message("no_rows");
    table(data.rows, data.totals);
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  load();
})();
