/* free3d serve: the page's forms, results and downloads around the shared viewer.
   Every request goes to this server's /api; every error it answers is shown as it says. */
(function () {
  "use strict";

  var results = [];  // every result so far, in the viewer's order
  var viewer = Free3DViewer.create(document.getElementById("viewer"), [], { autoplay: true });
  var errorBox = document.getElementById("error");
  var statusBox = document.getElementById("status");

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  /* A field's number; empty is null; anything else goes as typed, for the API to name. */
  function numberOrNull(input) {
    var v = input.value.trim();
    if (v === "") return null;
    return isNaN(Number(v)) ? v : Number(v);
  }

  /* POST to the API; resolves to its JSON, or rejects with the message it sent. */
  function call(path, body) {
    var init = { method: "POST", body: body };
    if (!(body instanceof FormData)) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (e) { /* not JSON: say what came back */ }
        if (!response.ok) {
          throw new Error(data && data.error ? data.error : "the server answered " + response.status + " " + response.statusText);
        }
        if (!data) throw new Error("the server sent something that is not JSON");
        return data;
      });
    }, function () {
      throw new Error("no answer from the server: is free3d serve still running?");
    });
  }

  function busy(button, label, on) {
    button.disabled = on;
    statusBox.textContent = on ? label : "";
  }

  function run(button, label, path, body) {
    showError("");
    busy(button, label, true);
    return call(path, body).then(function (data) {
      add(data.results);
    }).catch(function (e) {
      showError(e.message);
    }).then(function () { busy(button, "", false); });
  }

  function add(newResults) {
    var first = results.length;
    results = results.concat(newResults);
    viewer.setMotions(results, first);
    newResults.forEach(function (r, k) { append(r, first + k); });  // earlier items keep what was typed
    document.getElementById("empty").hidden = results.length > 0;
    mark();
  }

  function append(r, i) {
    var list = document.getElementById("results");
    var template = document.getElementById("result-template");
    var item = template.content.firstElementChild.cloneNode(true);
    item.dataset.index = String(i);
    item.querySelector(".label").textContent = r.label + " \u00b7 " + r.seconds.toFixed(2) + " s";
    item.querySelector(".show").addEventListener("click", function () { viewer.select(i); mark(); });
    var downloads = item.querySelector(".downloads");
    Object.keys(r.downloads).forEach(function (fmt) {
      var a = document.createElement("a");
      a.href = r.downloads[fmt];
      a.textContent = fmt.toUpperCase();
      a.setAttribute("download", "");
      a.className = "download-" + fmt;
      downloads.appendChild(a);
    });
    var form = item.querySelector(".edit");
    form.querySelector(".end").value = Math.min(2, r.seconds).toFixed(1);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      run(form.querySelector("button"), "editing\u2026", "/api/edit", {
        job: r.job, stem: r.stem,
        start: numberOrNull(form.querySelector(".start")),
        end: numberOrNull(form.querySelector(".end")),
        prompt: form.querySelector(".prompt").value,
        seed: r.seed || 0
      });
    });
    list.appendChild(item);
  }

  function mark() {
    Array.prototype.forEach.call(document.querySelectorAll("#results .result"), function (item) {
      item.classList.toggle("selected", Number(item.dataset.index) === viewer.index);
    });
  }
  viewer.selectBox.addEventListener("change", mark);

  document.getElementById("generate").addEventListener("submit", function (e) {
    e.preventDefault();
    var body = {
      prompts: document.getElementById("prompts").value,
      seconds: numberOrNull(document.getElementById("seconds")),
      seed: numberOrNull(document.getElementById("seed")),
      num_samples: numberOrNull(document.getElementById("samples"))
    };
    var guidance = numberOrNull(document.getElementById("guidance"));
    if (guidance !== null) body.guidance = guidance;
    if (body.seed === null) body.seed = 0;
    if (body.num_samples === null) body.num_samples = 1;
    run(document.getElementById("generate-button"), "generating\u2026", "/api/generate", body);
  });

  document.getElementById("lift").addEventListener("submit", function (e) {
    e.preventDefault();
    var file = document.getElementById("keypoints").files[0];
    if (!file) { showError("choose a keypoint file to lift"); return; }
    var form = new FormData();
    form.append("file", file, file.name);
    var layout = document.getElementById("layout").value;
    if (layout) form.append("layout", layout);
    var fps = document.getElementById("fps").value.trim();
    if (fps) form.append("fps", fps);
    run(document.getElementById("lift-button"), "lifting\u2026", "/api/lift", form);
  });

  fetch("/api/info").then(function (r) { return r.json(); }).then(function (info) {
    document.getElementById("model").textContent = "model: " + info.model + " (" + info.skeleton + ")";
    var seconds = document.getElementById("seconds");
    seconds.min = String(info.limits.min_seconds);
    seconds.max = String(info.limits.max_seconds);
    document.getElementById("guidance").placeholder = "default " + info.defaults.guidance;
    var layout = document.getElementById("layout");
    info.layouts.forEach(function (name) {
      var o = document.createElement("option");
      o.value = name;
      o.textContent = name;
      layout.appendChild(o);
    });
  }).catch(function () { showError("cannot reach the server's /api/info"); });
})();
