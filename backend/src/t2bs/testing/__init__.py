"""Ground-truth fixtures for tests and benchmarks (not used by the product's pipeline)."""
