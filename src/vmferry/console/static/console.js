// vmferry console: live steps of a run through server-sent events (no framework, no network beyond this console).
(function () {
  "use strict";
  function humanBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function follow(section) {
    var runUrl = section.getAttribute("data-events").replace(/\/events$/, "");
    var gatesBox = document.getElementById("gates");
    function showGates(gates) {
      var shown = Array.prototype.map.call(gatesBox.querySelectorAll("input[name=gate]"), function (i) { return i.value; });
      if (shown.join("\n") === gates.join("\n")) { return; }
      gatesBox.textContent = "";
      gates.forEach(function (gate) {
        var form = document.createElement("form");
        form.method = "post";
        form.action = runUrl + "/resume";
        form.className = "gate";
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "gate"; hidden.value = gate;
        var label = document.createElement("span");
        label.textContent = "Waiting at gate " + gate;
        var button = document.createElement("button");
        button.type = "submit";
        button.textContent = "Resume " + gate;
        form.appendChild(hidden); form.appendChild(label); form.appendChild(button);
        gatesBox.appendChild(form);
      });
    }
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
      showGates(data.gates || []);
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
  // a page part marked data-refresh="SECONDS" is fetched again and replaced (the overview's ages and RPO cells)
  function refresh(part) {
    var every = parseFloat(part.getAttribute("data-refresh")) * 1000;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin" }).then(function (res) {
        return res.ok ? res.text() : null;
      }).then(function (text) {
        if (!text) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(part.id);
        if (!fresh) { return; }
        var open = {};
        part.querySelectorAll("details[open][data-key]").forEach(function (d) { open[d.getAttribute("data-key")] = true; });
        part.innerHTML = fresh.innerHTML;
        part.querySelectorAll("details[data-key]").forEach(function (d) {
          if (open[d.getAttribute("data-key")]) { d.open = true; }
        });
      }).catch(function () { /* the next round tries again */ });
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-events]").forEach(follow);
    document.querySelectorAll("[data-refresh][id]").forEach(refresh);
  });
})();
