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
// Keyboard-friendly queues (issue 16): j / k move the focus between rows that open a page,
// x selects the focused row's checkbox, Enter opens it. Keys typed into a form control are theirs.
function queueRows() {
  return Array.prototype.slice.call(document.querySelectorAll("table.data tr[data-href]"));
}
function focusQueueRow(rows, index) {
  rows.forEach(function (r) { r.classList.remove("kbd-focus"); });
  var row = rows[index];
  if (row) {
    row.classList.add("kbd-focus");
    row.focus();
  }
}
function onQueueKey(event) {
  var target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey ||
      (target instanceof Element && target.closest("input, select, textarea, button"))) {
    return;
  }
  var rows = queueRows();
  if (!rows.length) {
    return;
  }
  var current = rows.findIndex(function (r) { return r.classList.contains("kbd-focus"); });
  if (event.key === "j") {
    focusQueueRow(rows, Math.min(current + 1, rows.length - 1));
  } else if (event.key === "k") {
    focusQueueRow(rows, Math.max(current - 1, 0));
  } else if (event.key === "x" && current >= 0) {
    var box = rows[current].querySelector("input.select");
    if (box) {
      box.checked = !box.checked;
      updateBulkCount();
    }
  } else if (event.key === "Enter" && current >= 0) {
    var href = rows[current].getAttribute("data-href");
    if (href && href.charAt(0) === "/" && href.charAt(1) !== "/") {
      window.location.assign(href);
    }
  } else {
    return;
  }
  event.preventDefault();
}
document.addEventListener("keydown", onQueueKey);
// Bulk selection: "select all" toggles the page's checkboxes; the form says how many are selected.
function updateBulkCount() {
  var out = document.getElementById("bulk-count");
  if (out) {
    var n = document.querySelectorAll("input.select:checked").length;
    out.textContent = n ? n + " selected" : "";
  }
}
function onSelectChange(event) {
  var target = event.target;
  if (!(target instanceof HTMLInputElement)) {
    return;
  }
  if (target.id === "select-all") {
    document.querySelectorAll("input.select").forEach(function (b) { b.checked = target.checked; });
  }
  if (target.id === "select-all" || target.classList.contains("select")) {
    updateBulkCount();
  }
}
document.addEventListener("change", onSelectChange);
// The explain form has a field named "method": form.method is then that <select>, not the form's
// method, and calling toLowerCase() on it threw on every submit. Read the attribute instead.
function formMethod(form) {
  return (form.getAttribute("method") || "get").toLowerCase();
}
