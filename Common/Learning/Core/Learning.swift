// Learning: Tower's learning core — datasets, histogram GBDT, logistic baseline, metrics,
// TreeSHAP, model files and SVG plots. Pure Swift (Foundation + Dispatch), so the
// coordinator, workers and gateway all train and score the same way without Python.
//
// Organised like LightGBM's core: data (Dataset, CSV, Binning), tree learner
// (TreeLearner, RegressionTree), objective (BinaryLogLoss), boosting (GBDT), metric
// (Metrics), plus explanation (TreeSHAP), persistence (ModelFile) and plots (SVG).
