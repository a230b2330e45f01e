// Learning: datasets, GBDT, logistic regression, metrics, SHAP. See issue 3.
