'use strict';
// node build.js <outfile>: the same esbuild settings as plotly.js's own bundles
// (node_modules/plotly.js/esbuild-config.js), minified, with its CSS inlined.
const esbuild = require('esbuild');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const { environmentPlugin } = require('esbuild-plugin-environment');

const { version } = require('plotly.js/package.json');
const outfile = process.argv[2];
if (!outfile) {
    console.error('usage: node build.js <outfile>');
    process.exit(2);
}
esbuild.build({
    entryPoints: [require.resolve('./entry.js')],
    outfile,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    legalComments: 'eof',   // the MIT notices of plotly.js and its dependencies stay in the file
    plugins: [InlineCSSPlugin(), environmentPlugin({ NODE_DEBUG: false })],
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
    banner: { js: `/* plotly.js v${version}: core (scatter), bar, heatmap, indicator; plotly_bundle/build.js */` },
    logLevel: 'warning',
}).catch(() => process.exit(1));
