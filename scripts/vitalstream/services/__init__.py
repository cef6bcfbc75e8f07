"""Services: the local processes a run needs (Kafka broker, OpenSearch node, Spark session,
loopback cluster), started, watched and stopped from Python.

Imports only ``core``; every later stage may import it.
"""
