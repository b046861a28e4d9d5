"""Evaluators, datasets and experiments."""
