"""VitalStream: streaming diagnostic analytics for IoT patient monitoring.

The package holds every definition the paper relies on (event schema, cohort generator,
local Kafka broker, replay producer, Spark job, metrics, LaTeX macros) so that the workflow,
the notebooks and the tests import one source of truth. It does not import from ``workflow/``.
"""

__version__ = "0.1.0"
