"""Each cross-filtered page's controls and charts, declared once, with the rules saying what
each does to the filters (see :mod:`dashboard.crossfilter`)."""
