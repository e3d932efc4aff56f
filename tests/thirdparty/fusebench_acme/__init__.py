"""ACME's private fusebench benchmark: one-step sums, scored by the last number of the answer."""
