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

  function current() {
    return document.querySelector("tr[data-record].selected");
  }

  function select(row) {
    var old = current();
    if (old) old.classList.remove("selected");
    if (!row) return;
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows().filter(function (r) { return !r.classList.contains("done"); });
    if (!all.length) return;
    var index = all.indexOf(current());
    var next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next]);
  }

  function press(scope, action) {
    var button = scope && scope.querySelector('button[data-action="' + action + '"]');
    if (button) button.click();
    return !!button;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var key = event.key;
    var inQueue = !!document.querySelector("table[data-keyboard]");
    if (inQueue) {
      var row = current();
      if (key === "j") { move(1); event.preventDefault(); }
      else if (key === "k") { move(-1); event.preventDefault(); }
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

  // After htmx replaces a decided row, move on to the next one.
  document.addEventListener("htmx:afterSwap", function (event) {
    var row = event.target;
    if (row && row.matches && row.matches("tr.done")) move(1);
  });

  document.addEventListener("DOMContentLoaded", function () { move(0); });
})();
