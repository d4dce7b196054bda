// Every chart's text alternative and image export (dashboard/components/cards.py graph_card).
//
// Whenever Plotly (re)draws a graph ("plotly_afterplot"), its figure container
// (.graph-figure[data-graph]) gets the chart's title in aria-label, a short summary in the
// paragraph its aria-describedby names (per trace its name, number of values, highest and
// lowest with their label), and its "Show as table" disclosure gets the same numbers as the
// traces; then data-described="true" (tests wait for it). Words come from the container's
// data-words (the reader's language, rendered by the server); numbers are formatted for
// <html lang>.
//
// "Save PNG" / "Save SVG" download a copy of the figure whose title carries the page's active
// filters (the texts of the filter chips), so a saved image says what it shows; the chart on
// the screen is not touched.
(function () {
  "use strict";

  function lang() {
    return document.documentElement.lang || "en";
  }

  function words(box) {
    try {
      return JSON.parse(box.getAttribute("data-words") || "{}");
    } catch (e) {
      return {};
    }
  }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : all;
    });
  }

  // Plotly's bits of markup (<b>, <br>) out of a title: parsed in an inert document, where an
  // <img onerror> or a script in a data-derived label would never run (unlike a div of this page)
  var inert = document.implementation.createHTMLDocument("");
  function plain(text) {
    var box = inert.createElement("div");
    box.innerHTML = String(text || "").replace(/<br\s*\/?>/gi, " ");
    return box.textContent.replace(/\s+/g, " ").trim();
  }

  function graphDiv(graphId) {
    var el = document.getElementById(graphId);
    if (!el) {
      return null;
    }
    return el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot");
  }

  function titleOf(layout) {
    var title = layout && layout.title;
    return plain(title && typeof title === "object" ? title.text : title);
  }

  function axis(layout, ref) {
    // "x" -> layout.xaxis, "y2" -> layout.yaxis2
    var name = ref.charAt(0) + "axis" + ref.slice(1);
    return (layout && layout[name]) || {};
  }

  // A formatter for a trace's values: percents when its value axis or hover text says so
  function formatter(trace, layout, valueAxis) {
    var ref = valueAxis === "x" ? (trace.xaxis || "x") : (trace.yaxis || "y");
    var tick = axis(layout, ref).tickformat || "";
    var hover = String(trace.hovertemplate || "");
    var percent = tick.indexOf("%") !== -1 ||
      new RegExp("%\\{" + valueAxis + ":[^}]*%\\}").test(hover) ||
      (trace.type === "indicator" && trace.number && /%/.test(trace.number.suffix || ""));
    var plainNumbers = {};
    return function (value) {
      if (typeof value !== "number" || !isFinite(value)) {
        return value === null || value === undefined ? "" : String(value);
      }
      if (percent && trace.type !== "indicator") {
        return new Intl.NumberFormat(lang(), {style: "percent", maximumFractionDigits: 1}).format(value);
      }
      var digits = Number.isInteger(value) ? 0 : (Math.abs(value) < 1 ? 3 : 2);
      if (!plainNumbers[digits]) {
        plainNumbers[digits] = new Intl.NumberFormat(lang(), {maximumFractionDigits: digits});
      }
      return plainNumbers[digits].format(value) + (percent ? " %" : "");
    };
  }

  function labelText(label) {
    if (typeof label === "number") {
      return new Intl.NumberFormat(lang(), {maximumFractionDigits: 3}).format(label);
    }
    return plain(label);
  }

  function list(value) {
    if (value === null || value === undefined) {
      return [];
    }
    return Array.isArray(value) || ArrayBuffer.isView(value) ? Array.prototype.slice.call(value) : [value];
  }

  // One trace as {name, rows: [[label, value]], format}; heatmaps as a grid; null when shown nowhere
  function series(trace, index, layout, w) {
    if (!trace || trace.visible === false) {
      return null;
    }
    var type = trace.type || "scatter";
    if (type === "indicator") {
      return {name: plain(trace.title && trace.title.text) || titleOf(layout) || w.value,
              rows: [[w.value, trace.value]], format: formatter(trace, layout, "y")};
    }
    if (type === "heatmap") {
      var z = list(trace.z), xs = list(trace.x), ys = list(trace.y);
      return {name: plain(trace.name) || w.value, grid: true, columns: xs.map(labelText),
              rows: z.map(function (row, r) {
                return [ys[r] !== undefined ? ys[r] : r + 1, list(row)];
              }), format: formatter(trace, layout, "z")};
    }
    if (type === "pie") {
      return {name: plain(trace.name) || w.value, rows: list(trace.labels).map(function (l, i) {
        return [l, list(trace.values)[i]];
      }), format: formatter(trace, layout, "y")};
    }
    var horizontal = trace.orientation === "h";
    var values = list(horizontal ? trace.x : trace.y);
    var labels = list(horizontal ? trace.y : trace.x);
    var base = list(trace.base);
    var valueAxis = horizontal ? "x" : "y";
    var axisTitle = axis(layout, horizontal ? (trace.xaxis || "x") : (trace.yaxis || "y")).title;
    var name = plain(trace.name) || plain(axisTitle && typeof axisTitle === "object" ? axisTitle.text : axisTitle) ||
      (w.value + " " + (index + 1));
    return {name: name, format: formatter(trace, layout, valueAxis), rows: values.map(function (v, i) {
      // bars drawn from a base (ratio bars start at 1) show base + length
      var b = base.length ? (base.length === 1 ? base[0] : base[i]) : 0;
      var value = typeof v === "number" && typeof b === "number" ? v + b : v;
      return [labels.length ? labels[i] : i + 1, value];
    })};
  }

  function extremes(rows) {
    var high = null, low = null;
    rows.forEach(function (row) {
      if (typeof row[1] !== "number" || !isFinite(row[1])) {
        return;
      }
      if (high === null || row[1] > high[1]) {
        high = row;
      }
      if (low === null || row[1] < low[1]) {
        low = row;
      }
    });
    return {high: high, low: low};
  }

  function plural(w, n) {
    var forms = w.values || {};
    var category = new Intl.PluralRules(lang()).select(n);
    return fill(forms[category] || forms.other || "{n}", {n: new Intl.NumberFormat(lang()).format(n)});
  }

  function summary(all, w) {
    var parts = [];
    var any = false;
    all.forEach(function (s) {
      var rows = s.grid ? [].concat.apply([], s.rows.map(function (row) {
        return row[1].map(function (v, c) {
          return [labelText(row[0]) + " × " + (s.columns[c] || c + 1), v];
        });
      })) : s.rows;
      var ends = extremes(rows);
      if (!ends.high) {
        return;
      }
      any = true;
      parts.push(fill(w.trace, {
        name: s.name, values: plural(w, rows.length),
        high: s.format(ends.high[1]), high_label: labelText(ends.high[0]),
        low: s.format(ends.low[1]), low_label: labelText(ends.low[0])
      }));
    });
    if (!any) {
      parts.push(w.noData);
    }
    return parts.join(" ");
  }

  function cell(tag, text, attrs) {
    var el = document.createElement(tag);
    el.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) {
      el.setAttribute(k, attrs[k]);
    });
    return el;
  }

  function table(caption, head, rows) {
    var t = document.createElement("table");
    t.className = "table table-sm table-striped small mb-2";
    t.appendChild(cell("caption", caption, {"class": "visually-hidden"}));
    var thead = t.createTHead().insertRow();
    head.forEach(function (h) {
      thead.appendChild(cell("th", h, {scope: "col"}));
    });
    var body = t.createTBody();
    rows.forEach(function (row) {
      var tr = body.insertRow();
      tr.appendChild(cell("th", row.label, {scope: "row"}));
      row.cells.forEach(function (c) {
        tr.appendChild(c === null ? cell("td", "") :
          cell("td", c.text, typeof c.value === "number" ? {"data-value": String(c.value)} : {}));
      });
    });
    return t;
  }

  // xy traces share one table (a row per label, a column per trace); each heatmap has its own
  function tables(caption, all, w) {
    var out = [];
    var flat = all.filter(function (s) { return !s.grid; });
    if (flat.length) {
      var order = [], rows = {};
      flat.forEach(function (s, col) {
        s.rows.forEach(function (r) {
          var key = labelText(r[0]);
          if (!rows[key]) {
            rows[key] = {label: key, cells: flat.map(function () { return null; })};
            order.push(key);
          }
          rows[key].cells[col] = {text: s.format(r[1]), value: r[1]};
        });
      });
      out.push(table(caption, [w.label].concat(flat.map(function (s) { return s.name; })),
                     order.map(function (k) { return rows[k]; })));
    }
    all.filter(function (s) { return s.grid; }).forEach(function (s) {
      out.push(table(caption + " · " + s.name, [""].concat(s.columns), s.rows.map(function (row) {
        return {label: labelText(row[0]), cells: row[1].map(function (v) {
          return {text: s.format(v), value: v};
        })};
      })));
    });
    return out;
  }

  function describe(box) {
    var gd = graphDiv(box.getAttribute("data-graph"));
    if (!gd || !gd.data) {
      return;
    }
    var w = words(box);
    var layout = gd.layout || {};
    var title = titleOf(layout);
    var all = gd.data.map(function (t, i) { return series(t, i, layout, w); }).filter(Boolean);
    box.setAttribute("aria-label", title ? fill(w.titled, {title: title}) : w.chart);
    var text = summary(all, w);
    var described = box.querySelector(".graph-summary");
    if (described) {
      described.textContent = text;
    }
    var holder = box.querySelector(".graph-table");
    if (holder) {
      var found = tables(fill(w.caption, {title: title || w.chart}), all, w);
      holder.replaceChildren.apply(holder, found.length ? found : [cell("p", text, {"class": "small mb-1"})]);
    }
    box.setAttribute("data-described", "true");
  }

  // Dash mounts graphs at any time (page changes, callbacks): hook each plot div once
  function hookAll() {
    document.querySelectorAll(".graph-figure[data-graph]").forEach(function (box) {
      var gd = graphDiv(box.getAttribute("data-graph"));
      if (!gd || typeof gd.on !== "function" || gd.__shopperDescribed) {
        return;
      }
      gd.__shopperDescribed = true;
      gd.on("plotly_afterplot", function () { describe(box); });
      describe(box);
    });
  }

  var pending = null;
  new MutationObserver(function () {
    if (pending === null) {
      pending = window.setTimeout(function () {
        pending = null;
        hookAll();
      }, 150);
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  // ---- image export -------------------------------------------------------------------------

  function activeFilters(w) {
    var chips = Array.prototype.map.call(document.querySelectorAll(".chips .chip"), function (chip) {
      return chip.textContent.replace(/^\s*✕\s*/, "").trim();
    }).filter(Boolean);
    return fill(w.filters, {filters: chips.length ? chips.join(" · ") : w.noFilters});
  }

  // Plotly titles do not wrap: break the filters line near every `width` characters
  function wrap(text, width) {
    var lines = [], line = "";
    text.split(" ").forEach(function (word) {
      if (line && (line + " " + word).length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? line + " " + word : word;
      }
    });
    lines.push(line);
    return lines;
  }

  function exportFigure(gd, box) {
    var w = words(box);
    var layout = JSON.parse(JSON.stringify(gd.layout || {}));
    var full = gd._fullLayout || {};
    var width = Math.max(full.width || 700, 700);
    var title = titleOf(layout) || w.chart;
    var lines = wrap(activeFilters(w), Math.floor(width / 7.5));
    var extra = 20 * lines.length + 8;
    var margin = Object.assign({}, full.margin || {}, layout.margin || {});
    layout.margin = Object.assign(margin, {t: (margin.t || 56) + extra});
    layout.title = Object.assign({}, typeof layout.title === "object" ? layout.title : {}, {
      text: "<b>" + title.replace(/</g, "&lt;") + "</b><br><span style=\"font-size:12px\">" +
        lines.map(function (l) { return l.replace(/</g, "&lt;"); }).join("<br>") + "</span>",
      x: 0.01, xanchor: "left", xref: "container", y: 0.99, yanchor: "top", yref: "container"
    });
    layout.width = width;
    layout.height = (full.height || 320) + extra;
    return {data: JSON.parse(JSON.stringify(gd.data)), layout: layout, config: {locale: (gd._context || {}).locale,
      locales: (gd._context || {}).locales}};
  }

  function filename(gd, box) {
    var options = (gd._context && gd._context.toImageButtonOptions) || {};
    return options.filename || box.getAttribute("data-graph") || "chart";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".graph-save");
    if (!button || !window.Plotly) {
      return;
    }
    var box = button.closest(".graph-figure");
    var gd = graphDiv(button.getAttribute("data-graph"));
    if (!box || !gd || !gd.data) {
      return;
    }
    var figure = exportFigure(gd, box);
    window.Plotly.downloadImage(figure, {
      format: button.getAttribute("data-format") === "svg" ? "svg" : "png",
      width: figure.layout.width, height: figure.layout.height,
      scale: button.getAttribute("data-format") === "svg" ? 1 : 2, filename: filename(gd, box)
    });
  });
})();
