"""The benchmark behind ``make bench``: our costs next to their limit and reference, one run."""
