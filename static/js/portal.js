// Progressive enhancement only: every page works without this file.

// A table wider than the screen scrolls in its box (.table-scroll). A box that does scroll
// must be reachable by keyboard (WCAG 2.1.1) and say what it holds: it becomes a focusable
// region named after its table's caption (or the section's heading). Boxes that fit stay
// out of the tab order. Called again when the window changes size or results are replaced.
window.portalScrollingTables = function (root) {
  (root || document).querySelectorAll(".table-scroll").forEach(function (box) {
    var table = box.querySelector("table");
    if (!table) { return; }
    if (box.scrollWidth > box.clientWidth + 1) {
      var label = table.querySelector("caption");
      if (!label) {
        var section = box.closest("section, main");
        label = section && section.querySelector("h2, h3, h1");
      }
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", label ? label.textContent.trim() : document.title);
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  });
};

window.addEventListener("resize", function () {
  window.clearTimeout(window.portalResizeTimer);
  window.portalResizeTimer = window.setTimeout(function () { window.portalScrollingTables(); }, 150);
});

// Switching language reloads the page: what was typed in its forms would be lost. What the
// person changed from the page's own values is kept in this tab's sessionStorage for that
// one reload and put back, then forgotten. Never passwords, hidden fields or files; and a
// box is never ticked on their behalf (consent must be the person's own act, on the page
// they read): a box they unticked is unticked again, one they ticked is left to them.
var KEPT_KEY = "portal-typed-before-language-switch";
var SKIPPED_TYPES = ["password", "hidden", "file", "submit", "button", "reset", "image"];

function changedByThePerson(field) {
  var type = (field.type || "").toLowerCase();
  if (type === "checkbox" || type === "radio") { return field.checked !== field.defaultChecked; }
  if (field.tagName === "SELECT") {
    return Array.from(field.options).some(function (option) { return option.selected !== option.defaultSelected; });
  }
  return field.value !== field.defaultValue;
}

function keepTypedValues() {
  var typed = [];
  document.querySelectorAll("main form").forEach(function (form, formIndex) {
    Array.from(form.elements).forEach(function (field) {
      var type = (field.type || "").toLowerCase();
      if (!field.name || field.disabled || SKIPPED_TYPES.indexOf(type) >= 0 || !changedByThePerson(field)) { return; }
      if (type === "checkbox" || type === "radio") {
        typed.push({form: formIndex, name: field.name, value: field.value, checked: field.checked, box: true});
      } else if (field.tagName === "SELECT" && field.multiple) {
        typed.push({form: formIndex, name: field.name, values: Array.from(field.selectedOptions).map(function (o) { return o.value; })});
      } else {
        typed.push({form: formIndex, name: field.name, value: field.value});
      }
    });
  });
  if (typed.length) {
    try {
      window.sessionStorage.setItem(KEPT_KEY, JSON.stringify({path: window.location.pathname, typed: typed}));
    } catch (error) { /* storage full or refused: the switch still works */ }
  }
}

function restoreTypedValues() {
  var kept;
  try {
    kept = JSON.parse(window.sessionStorage.getItem(KEPT_KEY) || "null");
    window.sessionStorage.removeItem(KEPT_KEY);
  } catch (error) { return; }
  if (!kept || kept.path !== window.location.pathname) { return; }
  var forms = document.querySelectorAll("main form");
  kept.typed.forEach(function (entry) {
    var form = forms[entry.form];
    if (!form) { return; }
    Array.from(form.elements).forEach(function (field) {
      if (field.name !== entry.name || SKIPPED_TYPES.indexOf((field.type || "").toLowerCase()) >= 0) { return; }
      if (entry.box) {
        if (field.value !== entry.value) { return; }
        if (field.type === "radio" && entry.checked) { field.checked = true; }
        if (field.type === "checkbox" && !entry.checked) { field.checked = false; }  // never ticks
      } else if (entry.values) {
        Array.from(field.options).forEach(function (option) { option.selected = entry.values.indexOf(option.value) >= 0; });
      } else {
        field.value = entry.value;
      }
    });
  });
}

// Signed in: warn before the sign-out that follows SESSION_IDLE_MINUTES without a request
// (WCAG 2.2.1), two minutes ahead (half the time for very short limits); "Stay signed in"
// makes a request, which counts as activity, and starts the count again.
function watchIdleSignOut() {
  var warning = document.querySelector("[data-idle-warning]");
  if (!warning || !window.fetch) { return; }
  var limit = Number(warning.getAttribute("data-idle-minutes")) * 60000;
  if (!(limit > 0)) { return; }
  var lead = Math.min(120000, limit / 2);
  var timer = null;
  var returnTo = null;
  function arm() {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      returnTo = document.activeElement;
      warning.hidden = false;
      warning.querySelector("[data-stay-signed-in]").focus();
    }, limit - lead);
  }
  warning.querySelector("[data-stay-signed-in]").addEventListener("click", function () {
    fetch(warning.getAttribute("data-stay-url"), {credentials: "same-origin"}).then(function (response) {
      if (!response.ok && response.status !== 204) { return; }
      warning.hidden = true;
      if (returnTo && returnTo.focus) { returnTo.focus(); }
      arm();
    }).catch(function () { /* offline: the warning stays up */ });
  });
  arm();
}

document.addEventListener("DOMContentLoaded", function () {
  window.portalScrollingTables();
  watchIdleSignOut();
  restoreTypedValues();
  var switcher = document.querySelector("form.language-switch");
  if (switcher) { switcher.addEventListener("submit", keepTypedValues); }
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
