// Forms that ask before they submit (data-confirm): an event listener, not an inline handler,
// which the console's Content-Security-Policy would block.
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
