// casegate status pages: the overview refreshes its figures every 15 s (a short poll
// of /live/overview) without a full reload. The page shows everything without this.
"use strict";
(function () {
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute("data-live");
  var refreshed = 0;
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        live.replaceChildren.apply(live, Array.prototype.slice.call(doc.body.childNodes));
        refreshed += 1;
        live.setAttribute("data-refreshed", String(refreshed));
      })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }
  setInterval(refresh, 15000);
})();
