// Learning: Tower's learning core — datasets, histogram GBDT, logistic baseline, metrics,
// TreeSHAP, model files and SVG plots. Pure Swift (Foundation + Dispatch), so the
// coordinator, workers and gateway all train and score the same way without Python.
//
// Organised like LightGBM's core, in Core/: data (Dataset, CSV, Binning), tree learner
// (TreeLearner, RegressionTree), objective (the `Objective` protocol, BinaryLogLoss),
// boosting (GBDT), metric (Metrics, MetricName), parameters (LearningParameter), plus
// explanation (TreeSHAP), persistence (ModelFile) and plots (SVG). Core knows nothing of
// real estate: the market (its tables, the demo generator, pair features, recommendation
// phrasing and the end-to-end workflow over market data) lives in Market/ and uses Core,
// never the other way round.
