"""Model choice: the catalogue people choose from, the chain of defaults, and /model."""
