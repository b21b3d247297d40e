// Keyboard shortcuts of the review pages: j/k move, o or Enter open, a approve, r reject,
// x select (queue). Every action is a plain form; the keys only press its buttons.
(function () {
  "use strict";

  function typing(event) {
    var el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-keyboard] tbody tr[data-record]"));
  }

  function isOpen(row) {
    return !row.classList.contains("done");
  }

  // The selected record's id survives the row being replaced by its decided version (htmx).
  var selectedId = null;

  function current() {
    return document.querySelector("tr[data-record].selected");
  }

  function anchor() {
    return current() || (selectedId && document.querySelector('tr[data-record="' + selectedId + '"]'));
  }

  function select(row) {
    var old = current();
    if (old && old !== row) old.classList.remove("selected");
    if (!row) return;
    row.classList.add("selected");
    selectedId = row.dataset.record;
    row.scrollIntoView({ block: "nearest" });
  }

  // From the selected row (or the one just decided in its place), the nearest open row in
  // the direction of `step`; after the last row is decided, the nearest open one before it.
  function move(step) {
    var all = rows();
    var from = anchor();
    var index = from ? all.indexOf(from) : -1;
    if (index < 0) {
      select(all.filter(isOpen)[0]);
      return;
    }
    var k;
    for (k = index + step; step && k >= 0 && k < all.length; k += step) {
      if (isOpen(all[k])) { select(all[k]); return; }
    }
    if (isOpen(all[index])) { select(all[index]); return; }
    for (k = index - (step || 1); k >= 0 && k < all.length; k -= (step || 1)) {
      if (isOpen(all[k])) { select(all[k]); return; }
    }
  }

  function press(scope, action) {
    var button = scope && scope.querySelector('button[data-action="' + action + '"]');
    if (button) button.click();
    return !!button;
  }

  // A focused control (link, button, field) does what its label says with Enter or Space:
  // the row's shortcuts never take the key from it (WCAG 2.1.1).
  function onControl(event) {
    var el = event.target;
    return !!(el && el.closest && el.closest("a[href], button, input, select, textarea, summary"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var key = event.key;
    var inQueue = !!document.querySelector("table[data-keyboard]");
    if (inQueue) {
      var row = current();
      if (key === "j") { move(1); event.preventDefault(); }
      else if (key === "k") { move(-1); event.preventDefault(); }
      else if (key === "Enter" && onControl(event)) { return; }
      else if ((key === "o" || key === "Enter") && row) { window.location.href = row.dataset.open; event.preventDefault(); }
      else if (key === "a" && row) { if (press(row, "approve")) event.preventDefault(); }
      else if (key === "r" && row) { if (press(row, "reject")) event.preventDefault(); }
      else if (key === "x" && row) {
        var box = row.querySelector("input[type=checkbox]");
        if (box) { box.checked = !box.checked; event.preventDefault(); }
      }
      return;
    }
    var actions = document.getElementById("actions");
    if (key === "a" && press(actions, "approve")) event.preventDefault();
    else if (key === "r" && press(actions, "reject")) event.preventDefault();
    else if (/^[1-9]$/.test(key) && press(document.getElementById("candidates"), "pin-" + key)) event.preventDefault();
  });

  // Tabbing into a row selects it, so the keys and the focus speak of the same row.
  document.addEventListener("focusin", function (event) {
    var row = event.target && event.target.closest && event.target.closest("table[data-keyboard] tr[data-record]");
    if (row && isOpen(row)) select(row);
  });

  // After htmx replaces a decided row, move on to the next open one; the focus, lost with the
  // button that was pressed, goes to that row's link.
  function afterDecision() {
    var decided = selectedId && document.querySelector('tr.done[data-record="' + selectedId + '"]');
    if (!decided) return;
    var focusLost = !document.activeElement || document.activeElement === document.body ||
      !document.contains(document.activeElement);
    move(1);
    var row = current();
    if (focusLost && row && row !== decided) {
      var link = row.querySelector("a.open");
      if (link) link.focus({ preventScroll: true });
    }
  }
  // Whichever of the two reaches the document first (htmx versions differ in the element
  // they fire on); the second finds no decided row selected and does nothing.
  document.addEventListener("htmx:afterSwap", afterDecision);
  document.addEventListener("htmx:afterSettle", afterDecision);

  document.addEventListener("DOMContentLoaded", function () { move(0); });
})();
