"""Helpers shared by the tests: image folders, CLI runs, small models, W&B logs."""
