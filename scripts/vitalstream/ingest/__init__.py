"""Ingest: readings into Kafka (the replay producer, the load generator, their benchmarks).

Imports ``core``, ``services``, ``data`` and itself.
"""
