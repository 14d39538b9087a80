/* Flowplane UI: follow a run's logs over server-sent events, filter them by level,
   keep the newest line in view. No inline script: the Content-Security-Policy
   allows scripts from the UI's own origin only. */
(function () {
  "use strict";

  var stream = null; // the EventSource of the log panel on screen, if any
  var panel = null;

  function applyLevel(row, minimum) {
    row.hidden = Number(row.getAttribute("data-rank")) < minimum;
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.className = className;
    td.textContent = text; // text, never HTML: log lines are untrusted
    return td;
  }

  function bind() {
    var box = document.getElementById("logs");
    if (panel && panel !== box && stream) {
      stream.close(); // the page changed (boosted navigation): stop the old stream
      stream = null;
    }
    if (!box || box === panel) {
      return;
    }
    panel = box;
    var lines = document.getElementById("log-lines");
    var level = document.getElementById("log-level");
    var autoscroll = document.getElementById("log-autoscroll");
    var scroller = document.getElementById("log-scroll");
    var count = document.getElementById("log-count");
    var status = document.getElementById("log-status");

    function minimum() {
      return Number(level.value) || 0;
    }
    function scrollDown() {
      if (autoscroll.checked) {
        scroller.scrollTop = scroller.scrollHeight;
      }
    }
    level.addEventListener("change", function () {
      Array.prototype.forEach.call(lines.rows, function (row) {
        applyLevel(row, minimum());
      });
      scrollDown();
    });
    autoscroll.addEventListener("change", scrollDown);
    scrollDown();

    var url = box.getAttribute("data-follow");
    if (!url || !window.EventSource) {
      return;
    }
    stream = new EventSource(url + "?after=" + encodeURIComponent(box.getAttribute("data-after") || "0"));
    stream.addEventListener("log", function (event) {
      var line = JSON.parse(event.data);
      var row = document.createElement("tr");
      row.className = "lvl-" + String(line.level).toLowerCase();
      row.setAttribute("data-rank", String(line.rank));
      row.appendChild(cell(line.timestamp, "ts"));
      row.appendChild(cell(line.level, "lvl"));
      row.appendChild(cell(line.task_id, "task mono"));
      row.appendChild(cell(line.message, "msg"));
      applyLevel(row, minimum());
      lines.appendChild(row);
      var empty = document.getElementById("log-empty");
      if (empty) {
        empty.remove();
      }
      count.textContent = String(lines.rows.length);
      scrollDown();
    });
    stream.addEventListener("end", function (event) {
      var state = JSON.parse(event.data).state;
      status.textContent = "run ended: " + state;
      stream.close();
      stream = null;
    });
    stream.addEventListener("error", function () {
      // EventSource reconnects by itself with Last-Event-ID; say so meanwhile.
      if (stream && stream.readyState === EventSource.CONNECTING) {
        status.textContent = "reconnecting…";
      }
    });
    status.textContent = "following…";
  }

  document.addEventListener("DOMContentLoaded", bind);
  document.addEventListener("htmx:load", bind);
})();
