"""The bad-input table: each class of input nobody planned for, what the system does with it,
and the test that shows it (docs/bad-inputs.md, the paper's methods, ``bad-input-table``).

The rows are data here, rendered twice (Markdown for the docs, LaTeX for the paper), and
tests/unit/test_bad_inputs.py checks them against the tests they name: every named test exists,
and every reason the table promises is asserted in that test's file. So the table cannot promise
a behaviour no test shows, and the docs cannot drift from this source.

Not for: the checks themselves (vitalstream.stream.parse, vitalstream.core.schema, the sinks,
the converters), which the named tests exercise.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vitalstream.core.cliargs import writable_file
from vitalstream.core.tables import escape, longtable_head


@dataclass(frozen=True)
class BadInput:
    """One class of bad input. ``reason`` is the text the dead letter or quarantine records
    (empty when the outcome has none, e.g. a counted drop); ``test`` a pytest node id."""

    where: str
    name: str
    outcome: str
    reason: str
    test: str


ADVERSARIAL = (
    "tests/integration/test_adversarial.py"
    "::test_no_bad_message_changes_a_good_patients_windows_or_alerts"
)
STREAMING = "tests/integration/test_streaming.py"
PHYSIONET = "tests/unit/test_physionet.py"
CONFIG = "tests/unit/test_config.py"

# Stream rows: every class the adversarial test generates (its BAD_CLASSES), all asserted there.
ROWS: tuple[BadInput, ...] = (
    BadInput("stream", "Malformed JSON", "dead letter", "malformed_json", ADVERSARIAL),
    BadInput(
        "stream", "Field of the wrong type", "dead letter, field named", "bad_type:hr", ADVERSARIAL
    ),
    BadInput(
        "stream", "Missing patient id or empty id", "dead letter", "missing:patient_id", ADVERSARIAL
    ),
    BadInput("stream", "Over-long patient id", "dead letter", "too_long:patient_id", ADVERSARIAL),
    BadInput("stream", "Missing event time", "dead letter", "missing:event_time_ms", ADVERSARIAL),
    BadInput("stream", "No vital sign at all", "dead letter", "missing:all_vitals", ADVERSARIAL),
    BadInput(
        "stream", "NaN, Infinity or -Infinity vital", "dead letter", "not_finite:hr", ADVERSARIAL
    ),
    BadInput(
        "stream",
        "Vital outside its physiological range",
        "dead letter",
        "out_of_range:hr",
        ADVERSARIAL,
    ),
    BadInput(
        "stream",
        "Invalid consciousness level",
        "dead letter",
        "bad_value:consciousness",
        ADVERSARIAL,
    ),
    BadInput(
        "stream",
        "Event time far ahead of or behind the Kafka time stamp, or past 2262",
        "dead letter, before any time conversion; the watermark is untouched",
        "out_of_range:event_time",
        ADVERSARIAL,
    ),
    BadInput(
        "stream",
        "Heartbeat carrying a patient or vitals",
        "dead letter",
        "bad_shape:heartbeat",
        ADVERSARIAL,
    ),
    BadInput("stream", "Unknown message kind", "dead letter", "unknown_kind", ADVERSARIAL),
    BadInput(
        "stream",
        "Duplicate reading (patient, device, event time)",
        "dropped within the watermark and counted; the reference drops it too",
        "",
        ADVERSARIAL,
    ),
    BadInput(
        "stream",
        "Reading behind the watermark",
        "dropped and counted",
        "",
        ADVERSARIAL,
    ),
    BadInput(
        "stream",
        "One device's clock far ahead (all patients share the watermark)",
        "dead letter; the other patients' windows and alerts go on",
        "out_of_range:event_time",
        f"{STREAMING}::test_a_far_future_reading_of_one_patient_no_longer_silences_everyone",
    ),
    BadInput(
        "stream",
        "Critical reading dated in the year 3000",
        "dead letter; the batch does not crash",
        "out_of_range:event_time",
        f"{STREAMING}::test_a_year_3000_critical_reading_does_not_crash_the_batch",
    ),
    BadInput(
        "sinks",
        "Alerts topic unreachable longer than the delivery timeout",
        "the batch fails with no commit record; Spark replays it",
        "",
        "tests/integration/test_alert_topic.py"
        "::test_an_unreachable_broker_fails_the_batch_and_writes_no_commit",
    ),
    BadInput(
        "sinks",
        "Search index unreachable after the retries",
        "the batch fails with no commit record; Spark replays it",
        "",
        "tests/integration/test_search_index.py"
        "::test_a_gone_server_fails_the_batch_and_writes_no_commit",
    ),
    BadInput(
        "sinks",
        "Document the index refuses",
        "written to search_errors.jsonl and counted",
        "",
        "tests/integration/test_search_index.py"
        "::test_a_document_the_template_refuses_is_counted_not_lost",
    ),
    BadInput(
        "sinks",
        "Alert of a duplicated reading",
        "written once, suppression sees it once; the repeat is counted",
        "",
        "tests/integration/test_reading_alerts.py"
        "::test_a_duplicated_reading_alerts_once_and_suppression_sees_it_once",
    ),
    BadInput(
        "sinks",
        "Job killed mid-run, batches replayed",
        "every alert in Parquet, topic and index; repeats counted",
        "",
        "tests/integration/test_workflow.py"
        "::test_the_killed_job_restarted_from_its_checkpoint_wrote_the_same_alerts",
    ),
    BadInput(
        "sinks",
        "Broker restarted mid-run",
        "publishing waits; topic and index lose nothing",
        "",
        "tests/integration/test_faults.py"
        "::test_a_crashed_and_restarted_broker_loses_and_doubles_nothing",
    ),
    BadInput(
        "offline",
        "PhysioNet file with a truncated row",
        "the row is quarantined naming file and line; the rest goes on",
        "malformed:fields",
        f"{PHYSIONET}::test_truncated_row_is_quarantined_naming_file_and_line_and_the_rest_goes_on",
    ),
    BadInput(
        "offline",
        "PhysioNet non-numeric cell",
        "quarantined naming file, line and column",
        "bad_type:HR",
        f"{PHYSIONET}::test_non_numeric_cell_is_quarantined_naming_file_line_and_column",
    ),
    BadInput(
        "offline",
        "PhysioNet file with an unexpected header",
        "that file's lines quarantined; the other files go on",
        "malformed:header",
        f"{PHYSIONET}::test_unexpected_header_quarantines_that_file_and_names_it",
    ),
    BadInput(
        "offline",
        "Duplicate ICU hour",
        "the first kept, the repeat quarantined",
        "duplicate:ICULOS",
        f"{PHYSIONET}::test_duplicate_icu_hour_keeps_the_first_and_quarantines_the_repeat",
    ),
    BadInput(
        "offline",
        "Impossible ICULOS (1e12, negative, over a year)",
        "quarantined",
        "out_of_range:ICULOS",
        f"{PHYSIONET}::test_impossible_iculos_is_quarantined",
    ),
    BadInput(
        "command line",
        "Negative, zero or non-numeric count; unwritable output",
        "one line naming the argument, exit status 2",
        "",
        "tests/unit/test_cli.py::test_a_bad_command_line_is_one_line_naming_the_argument_and_exit_2",
    ),
    BadInput(
        "command line",
        "Cohort larger than the machine's memory",
        "refused before anything is allocated, exit status 2",
        "",
        "tests/unit/test_cli.py::test_a_size_beyond_memory_is_refused_before_anything_is_allocated",
    ),
    BadInput(
        "config",
        "Shell text in kafka.bootstrap_servers",
        "refused by the schema's host-list pattern",
        "",
        f"{CONFIG}::test_shell_metacharacters_in_bootstrap_servers_are_refused",
    ),
    BadInput(
        "config",
        "Config value with a space or quote",
        "reaches the command quoted, as one argument",
        "",
        "tests/unit/test_workflow_rules.py::test_config_values_reach_commands_quoted",
    ),
    BadInput(
        "config",
        "Slide longer than the window",
        "refused, naming the condition",
        "",
        f"{CONFIG}::test_slide_longer_than_window_is_refused_after_defaults_and_grid",
    ),
    BadInput(
        "config",
        "Consumer option that would skip readings (startingOffsets)",
        "refused, naming the option",
        "",
        f"{CONFIG}::test_consumer_options_that_skip_readings_are_refused",
    ),
    BadInput(
        "resources",
        "Restart after a backlog ten times a batch",
        "read in capped micro-batches (maxOffsetsPerTrigger); all processed",
        "",
        "tests/integration/test_backlog.py"
        "::test_a_restart_reads_a_tenfold_backlog_in_capped_batches",
    ),
    BadInput(
        "resources",
        "Topics growing without bound",
        "retention of a day and 1 GiB per partition on every topic",
        "",
        "tests/integration/test_topic_retention.py"
        "::test_a_created_topic_carries_the_retention_limits",
    ),
    BadInput(
        "resources",
        "Search index filling the disk",
        "disk-threshold check on; empty data directory per workflow run",
        "",
        "tests/unit/test_searchnode_config.py"
        "::test_a_single_loopback_node_that_stops_writing_before_the_disk_is_full",
    ),
)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: Sequence[BadInput] = ROWS) -> str:
    """The docs' table (GitHub Markdown)."""
    lines = [
        "| where | class | what happens | reason recorded | test |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        reason = f"`{row.reason}`" if row.reason else "—"
        cells = [row.where, row.name, row.outcome, reason, f"`{row.test}`"]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _test_file(test: str) -> str:
    """The test's file name: a paper column is too narrow for a node id (the docs give it)."""
    return Path(test.partition("::")[0]).name


def latex(rows: Sequence[BadInput] = ROWS) -> str:
    """The paper's table, a longtable (too long for one float page) that may break across
    pages: per class, the reason it is recorded under, what happens, and the test's file.

    Its caption is the paper's: methods.tex defines ``\\BadInputsCaption`` before the input.
    """
    ragged = r">{\raggedright\arraybackslash}"
    columns = "".join(f"{ragged}p{{{w}\\linewidth}}" for w in ("0.32", "0.25", "0.235"))
    header = r"& Class (reason recorded) & What happens & Test file \\"
    lines = [
        "% Generated by vitalstream.paper.badinputs (rule write_bad_input_table).",
        *longtable_head(rf"@{{}}l{columns}@{{}}", r"\BadInputsCaption", "tab:bad-inputs", header),
    ]
    where = None
    for row in rows:
        if where is not None and row.where != where:
            lines.append(r"\midrule")
        label = escape(row.where) if row.where != where else ""
        where = row.where
        reason = rf" (\texttt{{{escape(row.reason)}}})" if row.reason else ""
        test = rf"\texttt{{\detokenize{{{_test_file(row.test)}}}}}"
        lines.append(rf"{label} & {escape(row.name)}{reason} & {escape(row.outcome)} & {test} \\")
    lines += [r"\end{longtable}", ""]
    return "\n".join(lines)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bad-input-table", help="the bad-input table (Markdown for the docs, LaTeX for the paper)"
    )
    parser.add_argument("--format", choices=("markdown", "latex"), default="markdown")
    parser.add_argument("--out", type=writable_file, default=None, help="file (default: stdout)")
    parser.set_defaults(func=_cli_table)


def _cli_table(args: argparse.Namespace) -> int:
    text = markdown() if args.format == "markdown" else latex()
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
    return 0
