// Check-in: search as you type (progressive enhancement; the form works without it).
document.addEventListener("DOMContentLoaded", function () {
  // Back from checking someone in: the desk goes on with the next person, so focus returns
  // to the box it was using (the search with its words, else the scanner's box), not the top,
  // with its words selected so the next name typed replaces them.
  // A refused check-in (someone cancelled since the list was shown) too: why is announced
  // from the live region (portal.js), and the desk goes on from its box.
  if (document.querySelector(".flash-success, .flash-warning, .flashes .flash-error") &&
      !document.querySelector(".error-summary")) {
    var search = document.querySelector("form[data-live-search] input[type=search]");
    var next = search && search.value ? search : document.querySelector("input[name=code]");
    if (next) { next.focus(); next.select(); }
  }
  var form = document.querySelector("form[data-live-search]");
  if (!form || !window.fetch) { return; }
  var input = form.querySelector("input[type=search]");
  var timer = null;
  var latest = 0;  // only the answer to the last request typed may replace the results
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      var url = form.getAttribute("action") || window.location.pathname;
      url += "?q=" + encodeURIComponent(input.value);
      var sent = ++latest;
      fetch(url, { credentials: "same-origin" }).then(function (response) {
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null || sent !== latest) { return; }
        var answer = new DOMParser().parseFromString(html, "text/html");
        var fresh = answer.querySelector("[data-live-results]");
        var current = document.querySelector("[data-live-results]");
        if (fresh && current) {
          current.replaceChildren.apply(current, Array.from(fresh.childNodes));
          if (window.portalScrollingTables) { window.portalScrollingTables(current); }
        }
        // The status element itself stays: screen readers announce changes inside a live
        // region they know, not a new one put in its place.
        var count = answer.querySelector("[data-live-status]");
        var status = document.querySelector("[data-live-status]");
        if (count && status) { status.textContent = count.textContent; }
        window.history.replaceState(null, "", url);
      }).catch(function () {
        // Offline or the server is restarting: the Search button still works.
      });
    }, 250);
  });
});
