// Records the reason a member clicked in our email, but only for a person: a mail
// scanner's GET runs no script, and a scanner that runs scripts rarely shows the page
// (visibilityState stays "hidden"/"prerender") or keeps it in view for long. So the click
// is POSTed (same origin, with the session's CSRF token) on the first pointer or key
// activity in a visible page, or after DWELL_MS of the page being visible. Without
// scripts, the Confirm button sends the same answer. See docs/http.md.
(function () {
  "use strict";
  var DWELL_MS = 1200;
  var form = document.querySelector("form[data-choice-url]");
  if (!form || !window.fetch) return;
  var noted = document.getElementById("noted");
  var button = document.getElementById("send");
  var pending = form.getAttribute("data-clicked");
  var timer = null;
  var queue = Promise.resolve(); // one POST at a time, so the last choice is the one kept

  function post(reason) {
    queue = queue.then(function () {
      return send(reason);
    });
  }

  function send(reason) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    body.set("reason", reason);
    return fetch(form.getAttribute("data-choice-url"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || String(response.status));
          return data;
        });
      })
      .then(function (data) {
        noted.textContent = data.noted;
        noted.hidden = false;
        button.textContent = form.getAttribute("data-send");
      })
      .catch(function () {
        // Leave the Confirm button: the form still sends the answer.
      });
  }

  function recordClick() {
    if (!pending || document.visibilityState !== "visible") return;
    clearTimeout(timer);
    var reason = pending;
    pending = null;
    post(reason);
  }

  function arm() {
    clearTimeout(timer);
    if (pending && document.visibilityState === "visible") timer = setTimeout(recordClick, DWELL_MS);
  }

  document.addEventListener("visibilitychange", arm);
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, recordClick, { once: true, capture: true });
  });
  // A reason picked on the page is a later choice too: it replaces the one on record.
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name !== "reason" || document.visibilityState !== "visible") return;
    recordClick(); // the emailed click first (if not sent yet), then this one replaces it
    post(target.value);
  });
  arm();
})();
