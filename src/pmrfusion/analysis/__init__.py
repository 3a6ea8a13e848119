"""Analyses: gradient cosine, sensitivity, cost, weight-loss correlation."""
