"""VitalStream: streaming diagnostic analytics for IoT patient monitoring.

The package holds every definition the paper relies on (event schema, cohort generator,
local Kafka broker, replay producer, Spark job, metrics, LaTeX macros) so that the workflow,
the notebooks and the tests import one source of truth. It does not import from ``workflow/``.

Its subpackages follow the data's journey, in this order (``STAGES`` below):

- ``core``: definitions written once: schema, settings, configuration, rules, scores, paths.
- ``services``: the local processes a run needs: Kafka broker, search node, Spark session.
- ``data``: the raw data: synthetic cohorts, PhysioNet records, edge gateways.
- ``ingest``: readings into Kafka: the replay producer and the load generator.
- ``stream``: the Spark Structured Streaming job: parsing, windows, scores, alerts.
- ``sinks``: where the stream's output goes: Parquet per micro-batch, the search index.
- ``measure``: what a run's output says: accuracy, throughput, latency, summaries.
- ``reference``: the batch reference in pandas and its comparison with the stream.
- ``experiments``: conditions, runs, fault and performance experiments, provenance.
- ``models``: risk and sepsis models, trained offline or in the stream (RQ4).
- ``serving``: a run for its readers: search export, dashboards, Hyper and Kibana.
- ``paper``: macros, tables, figures' style, assets and the results archive.

The rule, which ``tests/unit/test_architecture.py`` enforces: a module imports only modules of
its own stage and of earlier stages. So ``core`` imports nothing else of the package,
``services`` imports only ``core``, and every stage may import ``core`` and ``services``. This
package's own ``__init__`` imports nothing and may be imported by all (it is imported anyway
before any submodule); ``__main__`` is the command registry and comes after every stage; no
module imports it. Function-local and ``TYPE_CHECKING`` imports count, there are no import
cycles, and no module imports another module's ``_``-prefixed name. Package ``__init__``
modules import no submodules, so that importing a stage stays cheap.
"""

__version__ = "0.1.0"

# The stages in the data's journey order: the one definition of the import rule above.
STAGES: tuple[str, ...] = (
    "core",
    "services",
    "data",
    "ingest",
    "stream",
    "sinks",
    "measure",
    "reference",
    "experiments",
    "models",
    "serving",
    "paper",
)
