"""Training: warehouse -> model search -> models/<subject>.pkl + .json card -> scores in the warehouse.

``python -m etl train`` (see :mod:`etl.train.cli`). It reads only the warehouse. Modules:

* :mod:`~etl.train.features`  what each subject learns from, feature specs and baselines
* :mod:`~etl.train.dataset`   reading and checking the training rows (capped, stratified)
* :mod:`~etl.train.leakage`   single-feature guard against the outcome sneaking in as a feature
* :mod:`~etl.train.collinearity`  keep-or-drop decisions for collinear columns, with evidence
* :mod:`~etl.train.search`    candidate pipelines, grids and the cross-validated search
* :mod:`~etl.train.evaluate`  metrics, curves, thresholds, profit curve
* :mod:`~etl.train.explain`   "why this customer" sentences from per-feature contributions
* :mod:`~etl.train.segments`  rule segments, behavioural clusters, profiles and offers
* :mod:`~etl.train.scoring`   batch scoring of every row back into the warehouse
* :mod:`~etl.train.contributions`  exact per-feature contributions (TreeSHAP, linear, calibrated)
* :mod:`~etl.train.card`      model cards, integrity-checked loading, the explainer (dashboard side)
* :mod:`~etl.train.run`       one training run end to end, published all-or-nothing
"""
