"""Per-account junk filter: Bayesian word statistics and sender reputation."""
