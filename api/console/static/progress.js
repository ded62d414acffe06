// Live progress of a running job: polls the console's progress endpoint until the job is final.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section || section.dataset.finished === "true") { return; }
  var url = "/console/jobs/" + section.dataset.jobId + "/progress";
  var number = new Intl.NumberFormat("ko-KR");

  function show(data) {
    Object.keys(data.counts).forEach(function (name) {
      var cell = section.querySelector('[data-count="' + name + '"]');
      if (cell) { cell.textContent = number.format(data.counts[name]); }
    });
    section.querySelector(".bar").value = data.progress;
    // #progress-live is a polite live region: screen readers hear the percent and status change.
    document.getElementById("progress-percent").textContent = data.progress;
    document.getElementById("progress-status").textContent = " · " + data.status_label;
    var status = document.getElementById("job-status");
    status.textContent = data.status_label;
    status.className = "status s-" + data.status;
    if (data.finished) { window.location.reload(); return; }
    window.setTimeout(poll, 2000);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(show)
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 2000);
})();
