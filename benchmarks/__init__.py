"""Performance benchmarks of imgclf: each figure is a ratio of two things timed alternately."""
