"""``run``: the command of one condition of the grid, a plain run or a fault run.

It sits above both runners so that neither imports the other: a condition with a ``fault``
block goes to vitalstream.experiments.faults, every other one to vitalstream.experiments.run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vitalstream.core.cliargs import parquet_input, writable_dir
from vitalstream.core.config import RunId, add_config_arguments, config_from_args
from vitalstream.core.runsettings import SINGLE_RUN_SINKS, Settings
from vitalstream.experiments import faults, run


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run one condition: replay → Kafka → Spark → metrics"
    )
    parser.add_argument("run_id", help="<experiment>/<condition>/rep<k> from the config's grid")
    add_config_arguments(parser)
    parser.add_argument("--events", type=parquet_input, required=True)
    parser.add_argument("--run-dir", type=writable_dir, required=True)
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.add_argument(
        "--search-state", type=Path, default=None, help="state file of the workflow's search node"
    )
    parser.set_defaults(func=_cli_run)


def _cli_run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = config_from_args(args)
    settings = Settings.from_config(config)
    run_id = RunId.parse(args.run_id)
    condition = settings.run(run_id).condition
    bootstrap = run.resolve_bootstrap(settings.kafka.bootstrap_servers, args.broker_state)
    url = None
    if condition.sinks.over(SINGLE_RUN_SINKS).search_index:
        url = run.resolve_search_url(settings.search, args.search_state)
    if condition.fault is not None:
        # A fault condition (vitalstream.experiments.faults): same outputs, its own runner,
        # whose job process gets the configuration as the runner got it.
        config_json = args.config_json or json.dumps(config)
        result = faults.run_fault(
            settings, run_id, args.events, args.run_dir, bootstrap, config_json, url
        )
    else:
        result = run.run_condition(
            settings, run_id, args.events, args.run_dir, bootstrap, search_url=url
        )
    print(json.dumps(result))
    return 0
