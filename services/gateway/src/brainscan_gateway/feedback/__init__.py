"""Reviewers' feedback on answered predictions: the pixels held for it, and where it is kept."""
