// The template editor's live preview: a moment after typing stops, the draft is posted as
// a preview and the preview parts of the page are swapped for the answer's. Without
// JavaScript the Preview button does the same with a page load.
(function () {
  "use strict";
  var form = document.querySelector("form.edit-form");
  if (!form || !window.fetch || !window.DOMParser) {
    return;
  }
  var timer = null;
  var sent = 0;

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    ["section.edit-preview", "section.widths"].forEach(function (selector) {
      var now = document.querySelector(selector);
      var next = fresh.querySelector(selector);
      if (now && next) {
        now.replaceWith(next);
      } else if (now) {
        now.remove();
      } else if (next) {
        document.querySelector(".edit-grid").after(next);
      }
    });
  }

  function preview() {
    var data = new FormData(form);
    data.set("action", "preview");
    var mine = ++sent;
    // form.action would be the buttons named "action": read the attribute.
    fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (reply) { return reply.ok ? reply.text() : null; })
      .then(function (html) {
        if (html && mine === sent) {  // an older answer never replaces a newer one
          swap(html);
        }
      })
      .catch(function () {});
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(preview, 700);
  });
})();
