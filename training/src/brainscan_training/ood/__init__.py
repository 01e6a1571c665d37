"""The out-of-distribution guard: what the model was trained on, and how far an input is from it."""
