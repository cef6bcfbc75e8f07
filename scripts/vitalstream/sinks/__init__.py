"""Sinks: where the streaming job's output goes (Parquet per micro-batch, the commit log, the
search index).

Imports ``core``, ``services``, ``data``, ``ingest``, ``stream`` and itself.
"""
