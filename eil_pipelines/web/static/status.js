// The live status page (eil-run serve): polls /api/status and updates the page
// in place, and shows fire times in the viewer's own time zone.  No library,
// no inline script (the page's CSP allows only this file), no other request.
"use strict";
(function () {
  var POLL_MS = Number(document.body.getAttribute("data-poll")) || 5000;
  var api = document.body.getAttribute("data-api") || "/api/status";

  function text(node, value) {
    if (node) node.textContent = value;
  }
  function badge(word, css) {
    var span = document.createElement("span");
    span.className = "status " + (css || word);
    span.textContent = word.replace(/_/g, " ");
    return span;
  }
  function seconds(value) {
    if (value === null || value === undefined) return "-";
    if (value < 120) return value.toFixed(1) + " s";
    if (value < 7200) return Math.floor(value / 60) + " min " + Math.floor(value % 60) + " s";
    return Math.floor(value / 3600) + " h " + Math.floor((value % 3600) / 60) + " min";
  }
  function viewerTime(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) return iso;
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      zone = "";
    }
    return when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) + (zone ? " " + zone : "");
  }
  function replace(cell, nodes) {
    if (!cell) return;
    while (cell.firstChild) cell.removeChild(cell.firstChild);
    nodes.forEach(function (node) {
      cell.appendChild(typeof node === "string" ? document.createTextNode(node) : node);
    });
  }
  function timeNode(iso, shown) {
    var node = document.createElement("time");
    node.setAttribute("datetime", iso);
    node.textContent = shown;
    return node;
  }

  function updateScheduler(report) {
    var box = document.getElementById("scheduler");
    var s = report.scheduler;
    if (!box || !s) return;
    var state = s.stopped ? "stopped" : s.alive ? "alive" : "silent";
    replace(box.querySelector('[data-field="state"]'), [badge(state)]);
    replace(box.querySelector('[data-field="last_beat"]'), [
      timeNode(s.last_beat, viewerTime(s.last_beat)),
      " (" + seconds(s.age_s) + " ago)",
    ]);
    text(box.querySelector('[data-field="node"]'), s.node);
    text(box.querySelector('[data-field="version"]'), s.version);
    text(box.querySelector('[data-field="running"]'), String(s.running));
  }

  function updatePipeline(row, p) {
    if (p.next) {
      replace(row.querySelector('[data-field="next"]'), [
        timeNode(p.next.utc, p.next.local),
        " " + p.timezone,
      ]);
      replace(row.querySelector('[data-field="next_viewer"]'), [
        timeNode(p.next.utc, viewerTime(p.next.utc)),
      ]);
    }
    var last = p.last;
    if (last) {
      var parts = [badge(last.status)];
      if (last.duration_s !== null) parts.push(" in " + seconds(last.duration_s));
      parts.push(" · scheduled ", timeNode(last.scheduled_at, last.scheduled_at));
      replace(row.querySelector('[data-field="last"]'), parts);
    }
    if (p.running.length) {
      replace(row.querySelector('[data-field="running"]'), [
        badge("running"),
        " for " + seconds(p.running[0].running_s),
      ]);
    } else if (p.waiting && p.waiting.length) {
      replace(row.querySelector('[data-field="running"]'), [
        badge("waiting"),
        " " + (p.waiting[0]["for"] || ""),
      ]);
    } else {
      replace(row.querySelector('[data-field="running"]'), ["no"]);
    }
    text(row.querySelector('[data-field="failures"]'), String(p.failures_in_a_row));
  }

  function update(report) {
    updateScheduler(report);
    var rows = {};
    document.querySelectorAll("tr[data-pipeline]").forEach(function (row) {
      rows[row.getAttribute("data-pipeline")] = row;
    });
    report.pipelines.forEach(function (p) {
      if (rows[p.pipeline]) updatePipeline(rows[p.pipeline], p);
    });
    replace(document.getElementById("updated"), [
      "updated at ",
      timeNode(report.generated_at, viewerTime(report.generated_at)),
    ]);
    document.body.setAttribute("data-updated", report.generated_at);
  }

  function poll() {
    fetch(api, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(update)
      .catch(function () {
        text(document.getElementById("updated"), "not updated: the server did not answer");
      })
      .then(function () {
        window.setTimeout(poll, POLL_MS);
      });
  }

  // The viewer's time at once, before the first answer.
  document.querySelectorAll('[data-field="next_viewer"]').forEach(function (cell) {
    var iso = cell.textContent.trim();
    if (iso && iso !== "-") replace(cell, [timeNode(iso, viewerTime(iso))]);
  });
  poll();
})();
