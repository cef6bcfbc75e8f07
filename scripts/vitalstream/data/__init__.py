"""Data: the raw data before it reaches Kafka (seeded synthetic cohorts, PhysioNet records in
the event schema, edge-gateway reduction, the Data section's summary).

Imports ``core``, ``services`` and itself.
"""
