// The filter panel on phones (dashboard/components/offcanvas.py): below Bootstrap's md the
// filter column is an off-canvas panel. Its "Filters" button opens it as a modal dialog,
// focus moves into it and stays there (Tab wraps); Escape, the close button or a click on the
// backdrop close it and focus returns to the button. From md up the column is a plain column.
(function () {
  "use strict";

  var PHONE = window.matchMedia("(max-width: 767.98px)");
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select, textarea, summary, " +
    "[tabindex]:not([tabindex='-1'])";
  var openPanel = null;

  function toggleFor(panel) {
    return document.querySelector(".filter-toggle[aria-controls='" + panel.id + "']");
  }

  function backdrop() {
    var el = document.querySelector(".filter-backdrop");
    if (!el) {
      el = document.createElement("div");
      el.className = "filter-backdrop";
      el.addEventListener("click", function () { close(); });
      document.body.appendChild(el);
    }
    return el;
  }

  function visible(el) {
    return el.offsetWidth > 0 || el.offsetHeight > 0;
  }

  function open(panel) {
    openPanel = panel;
    panel.classList.add("open");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-modal", "true");
    if (toggleFor(panel)) {
      panel.setAttribute("aria-label", toggleFor(panel).textContent.trim());
    }
    backdrop().classList.add("show");
    document.body.classList.add("filters-open");
    var toggle = toggleFor(panel);
    if (toggle) {
      toggle.setAttribute("aria-expanded", "true");
    }
    var first = panel.querySelector(".filter-close") || panel.querySelector(FOCUSABLE);
    if (first) {
      first.focus();
    }
  }

  function close() {
    var panel = openPanel;
    if (!panel) {
      return;
    }
    openPanel = null;
    panel.classList.remove("open");
    panel.removeAttribute("role");
    panel.removeAttribute("aria-modal");
    panel.removeAttribute("aria-label");
    backdrop().classList.remove("show");
    document.body.classList.remove("filters-open");
    var toggle = toggleFor(panel);
    if (toggle) {
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    }
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest) {
      return;
    }
    var toggle = event.target.closest(".filter-toggle");
    if (toggle) {
      var panel = document.getElementById(toggle.getAttribute("aria-controls"));
      if (panel) {
        if (openPanel === panel) {
          close();
        } else {
          open(panel);
        }
      }
      return;
    }
    if (event.target.closest(".filter-close")) {
      close();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (!openPanel) {
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab") {
      var items = Array.prototype.filter.call(openPanel.querySelectorAll(FOCUSABLE), visible);
      if (!items.length) {
        return;
      }
      var first = items[0], last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  });

  // turning a phone sideways past md, or a page change, leaves no dialog behind
  PHONE.addEventListener("change", function () {
    if (!PHONE.matches) {
      close();
    }
  });

  var pending = null;
  new MutationObserver(function () {
    if (pending === null) {
      pending = window.setTimeout(function () {
        pending = null;
        if (openPanel && !document.body.contains(openPanel)) {
          openPanel = null;
          backdrop().classList.remove("show");
          document.body.classList.remove("filters-open");
        }
      }, 150);
    }
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
