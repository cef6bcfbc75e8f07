"""Experiments: one condition of the grid end to end (topic, Spark job, replay, drain, metrics,
provenance), shared sessions, fault and performance experiments.

Imports ``core``, ``services`` and the stages up to ``reference``, and itself.
"""
