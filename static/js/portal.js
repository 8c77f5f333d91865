// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  // Move focus to the error summary (or the first invalid field) so keyboard and screen
  // reader users land on what needs fixing.
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  } else {
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) { invalid.focus(); }
  }
  // Buttons that ask before doing something destructive.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
});
