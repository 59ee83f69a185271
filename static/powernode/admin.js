/* powernode admin: a page holding [data-pn-poll] polls a small JSON state and reloads itself when the
   state's signature changes (a host moving pending → connected), so nobody has to press reload. */
(function () {
  "use strict";
  function start(el) {
    var url = el.getAttribute("data-pn-poll");
    var signature = el.getAttribute("data-pn-signature");
    var interval = parseInt(el.getAttribute("data-pn-interval") || "3000", 10);
    var note = el.querySelector("[data-pn-checked]");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (state) {
          if (state.signature !== signature) {
            el.setAttribute("data-pn-state", "changed");
            window.location.reload();
            return;
          }
          if (note) { note.textContent = "checked " + new Date().toLocaleTimeString(); }
          if (state.refresh) { window.setTimeout(tick, interval); }
        })
        .catch(function (error) {
          // A platform restart or a lost connection: say so, and keep trying at a slower pace.
          if (note) { note.textContent = "cannot reach the platform (" + error.message + "), retrying"; }
          window.setTimeout(tick, interval * 3);
        });
    }
    window.setTimeout(tick, interval);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-pn-poll]").forEach(start);
  });
})();
