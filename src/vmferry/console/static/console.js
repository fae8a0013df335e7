// vmferry console: live steps of a run through server-sent events (no framework, no network beyond this console).
(function () {
  "use strict";
  function humanBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function follow(section) {
    var list = document.getElementById("steps");
    var status = document.getElementById("run-status");
    var waiting = document.getElementById("waiting");
    var source = new EventSource(section.getAttribute("data-events"));
    source.addEventListener("steps", function (ev) {
      var data = JSON.parse(ev.data);
      if (waiting) { waiting.remove(); waiting = null; }
      data.steps.forEach(function (step) {
        var key = step.key === "recover" ? "recover:" + step.title : step.key;
        var item = list.querySelector('li[data-key="' + CSS.escape(key) + '"]');
        if (!item) {
          list.querySelectorAll("li.now").forEach(function (li) {
            if (step.key === "recover") { li.className = "done"; }
          });
          item = document.createElement("li");
          item.setAttribute("data-key", key);
          list.appendChild(item);
        }
        item.className = step.finished ? "done" : "now";
        item.textContent = step.title + (step.done ? " " + humanBytes(step.done) : "");
        item.setAttribute("data-at", data.at);
      });
    });
    source.addEventListener("status", function (ev) {
      var data = JSON.parse(ev.data);
      status.textContent = data.status.toLowerCase();
      status.className = "status " + data.status.toLowerCase();
    });
    source.addEventListener("done", function () {
      source.close();
      window.location.reload();
    });
    source.addEventListener("failed", function () { source.close(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
  });
})();
