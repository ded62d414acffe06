// A confirmed send disables its button, so a second click sends nothing more (the server's
// idempotency key makes a second request find the first one's job anyway).
(function () {
  "use strict";
  var form = document.getElementById("confirm-form");
  if (!form) { return; }
  form.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }
    document.getElementById("confirm").disabled = true;
  });
})();
