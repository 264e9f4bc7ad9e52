// The console's only script (served from the gateway; the CSP forbids inline code).
// Rows with data-href open on click; links and form controls inside rows keep their own behaviour.
"use strict";
document.addEventListener("click", function (event) {
  var target = event.target;
  if (!(target instanceof Element) || target.closest("a, button, input, select, textarea, label")) {
    return;
  }
  var row = target.closest("tr[data-href]");
  if (!row) {
    return;
  }
  var href = row.getAttribute("data-href");
  // Only console paths: never follow a scheme or another host.
  if (href && href.charAt(0) === "/" && href.charAt(1) !== "/") {
    window.location.assign(href);
  }
});
// Buttons of a submitted form are disabled so a double click does not act twice.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && formMethod(form) === "post") {
    window.setTimeout(function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }, 0);
  }
});
// The explain form has a field named "method": form.method is then that <select>, not the form's
// method, and calling toLowerCase() on it threw on every submit. Read the attribute instead.
function formMethod(form) {
  return (form.getAttribute("method") || "get").toLowerCase();
}
