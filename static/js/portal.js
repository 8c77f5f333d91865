// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // Move focus to the error summary (or the first invalid field) so keyboard and screen
  // reader users land on what needs fixing.
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  } else {
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) {
      invalid.focus();
    } else {
      // A page that answers a "Preview" shows it below the form: take the reader there.
      var shown = document.querySelector("[data-focus-on-load]");
      if (shown) { shown.focus(); }
    }
  }
  // What the last action did ("Ada Lovelace is checked in.") sits in a live region from the
  // start, and screen readers announce changes, not what a page opens with: once the page
  // is read, take the messages out and put them back in one go (nothing moves on screen).
  var flashes = document.querySelector(".flashes[role=status]");
  if (flashes) {
    window.setTimeout(function () {
      var messages = Array.from(flashes.childNodes);
      flashes.replaceChildren();
      flashes.append.apply(flashes, messages);
    }, 300);
  }
  // Buttons that ask before doing something destructive; with data-confirm-if="name=value",
  // only when the form's field `name` holds that value (e.g. a status select on "cancelled").
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      var condition = button.getAttribute("data-confirm-if");
      if (condition && button.form) {
        var parts = condition.split("=");
        var field = button.form.elements[parts[0]];
        if (!field || field.value !== parts[1]) { return; }
      }
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
});
