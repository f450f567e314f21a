"""Evaluators and helpers that tests import as ``python`` targets (``tests.support.evaluators:…``)."""
