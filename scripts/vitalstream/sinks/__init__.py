"""Sinks: where the streaming job's output goes (Parquet per micro-batch, the alerts topic, the
search index, the commit log).

Imports ``core``, ``services``, ``data``, ``ingest``, ``stream`` and itself.
"""
