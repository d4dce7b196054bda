'use strict';
// Plotly.js with only the trace types Shopper Insights draws (dashboard/figures/): scatter is in
// the core, then bar, heatmap (correlations, confusion matrix) and indicator (the what-if gauge).
// The full bundle is 1.1 MB compressed, this one about 0.35 MB: most of a first visit's bytes.
// A figure with another trace type would be drawn empty, so adding one means adding it here
// (tests/browser/test_dashboard_browser.py checks every chart of every page against this list).
var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/indicator'),
]);

module.exports = Plotly;
