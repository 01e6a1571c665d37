"""The domain of one prediction: the predictor (decode, preprocess, infer, threshold, explain),
the confidence thresholds, the out-of-distribution check and the drift monitor. Knows nothing
of HTTP: the API maps what the predictor returns to its response schema."""
