// Accessible names and keyboard stops for Dash 4's own controls, wherever they are.
//
// dcc.RangeSlider names its thumbs "Minimum" / "Maximum" in English whatever the field, and
// its number boxes not at all: each gets its field's label instead ("Pages viewed: from"),
// with the words rendered by the server in the reader's language (data-words, see
// dashboard/components/cards.py chart_words).
//
// dcc.Dropdown makes an aria-hidden input its tab stop and takes its button out of the tab
// order, so a screen reader lands on nothing: the button (which opens the list with Enter or
// Space) becomes the tab stop, named by the field's label and its value.
(function () {
  "use strict";

  function pageWords() {
    var el = document.querySelector("[data-words]");
    try {
      return el ? JSON.parse(el.getAttribute("data-words")) : {};
    } catch (e) {
      return {};
    }
  }

  function fieldLabel(id) {
    var label = document.getElementById(id + "-label");
    if (!label) {
      label = Array.prototype.find.call(document.querySelectorAll("label[for]"), function (l) {
        return l.getAttribute("for") === id;
      });
    }
    return label || null;
  }

  function setAttr(el, name, value) {
    if (el.getAttribute(name) !== value) {
      el.setAttribute(name, value);
    }
  }

  function nameSliders(words) {
    document.querySelectorAll(".dash-slider-container[id]").forEach(function (slider) {
      var label = fieldLabel(slider.id);
      var field = label ? label.textContent.trim() : "";
      var thumbs = slider.querySelectorAll("[role=slider]");
      if (!field || !thumbs.length) {
        return;
      }
      var single = thumbs.length === 1;
      function name(low) {
        return single ? field : (low ? words.sliderFrom || "{field}" : words.sliderTo || "{field}").replace("{field}", field);
      }
      thumbs.forEach(function (thumb, i) {
        setAttr(thumb, "aria-label", name(i === 0));
      });
      slider.querySelectorAll("input.dash-range-slider-input").forEach(function (input) {
        setAttr(input, "aria-label", name(input.classList.contains("dash-range-slider-min-input")));
      });
    });
  }

  function dropdownStops() {
    document.querySelectorAll(".dash-dropdown-wrapper").forEach(function (wrapper) {
      var target = wrapper.querySelector(".dash-dropdown-focus-target");
      var button = wrapper.querySelector("button.dash-dropdown");
      if (!target || !button) {
        return;
      }
      setAttr(target, "tabindex", "-1");
      setAttr(button, "tabindex", "0");
      var label = button.id && fieldLabel(button.id);
      if (label) {
        if (!label.id) {
          label.id = button.id + "-label";
        }
        var value = button.getAttribute("aria-labelledby") || "";
        if (value.split(" ").indexOf(label.id) === -1) {
          button.setAttribute("aria-labelledby", (label.id + " " + value).trim());
        }
      }
    });
  }

  var pending = null;
  new MutationObserver(function () {
    if (pending === null) {
      pending = window.setTimeout(function () {
        pending = null;
        nameSliders(pageWords());
        dropdownStops();
      }, 100);
    }
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
