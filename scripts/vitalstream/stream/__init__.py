"""Stream: the Spark Structured Streaming job (Kafka messages parsed, event-time windows, clinical
scores, alerts). Its sinks are injected by the caller, so it does not import ``sinks``.

Imports ``core``, ``services``, ``data``, ``ingest`` and itself.
"""
