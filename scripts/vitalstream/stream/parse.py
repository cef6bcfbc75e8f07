"""Kafka messages → typed readings, each bad one with the reason it is quarantined.

The reasons are Spark expressions, so the dead letter names the field and the rule a message
broke, and the windows query sees only readings that passed every check. Every message ends in
one place: a reading, an accepted heartbeat, or the dead letter with one reason (late and
duplicate readings are dropped and counted by the windows query, vitalstream.stream.windows).

Besides the canonical message, a device's own fields are read as declared aliases of canonical
fields (config ``devices``, vitalstream.core.devices): the canonical field wins when a message
has it, else the alias converted to the canonical unit. A device message carries no send stamp:
one that gave its event time under an alias and no ``send_wall_ns`` is stamped with its Kafka
record's timestamp, so its alert latency counts from the record. A canonical message without
``send_wall_ns`` is still dead-lettered (``missing:send_wall_ns``).

Event times are judged as integers before any conversion: Spark 4 runs ANSI SQL, where
``timestamp_millis`` of a huge value raises, and a message that fails every batch it is in
would stop the job on every restart. So ``event_time`` exists only for messages that passed.

Not for: windows and scores (vitalstream.stream.windows).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from vitalstream.core.devices import EVENT_TIME_FIELD, DeviceFormat
from vitalstream.core.schema import (
    CONSCIOUSNESS_LEVELS,
    EVENT_TIME_END_MS,
    EVENT_TIME_MIN_MS,
    VITAL_NAMES,
    valid_range,
)
from vitalstream.core.settings import MessageChecks
from vitalstream.ingest.producer import HEARTBEAT_KIND

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

from vitalstream.stream.spec import (
    IDENTITY_FIELDS,
    REQUIRED_FIELDS,
)

CORRUPT_FIELD = "_corrupt_record"
# The message as parsed, aliases included, before the canonical fields are taken from it: a
# column of parse_messages' rows, from which detailed_reason names a wrongly typed field. No
# sink writes it (they select READING_COLUMNS).
PARSED = "_parsed"
SEND_STAMP = "send_wall_ns"


def message_schema(value_type: str = "typed", devices: DeviceFormat | None = None) -> StructType:
    """The JSON message schema: the canonical fields, then the aliases of ``devices`` (None:
    none); ``value_type="string"`` reads every field as text.

    The typed schema carries a corrupt-record field: Spark fills it with the message text when
    the message is not JSON or a field has the wrong type, and still parses the other fields.
    The all-text reading, applied only to such messages, names the field that was wrong.
    """
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    def typed(name: str, kind: object) -> StructField:
        return StructField(name, StringType() if value_type == "string" else kind)

    fields = [typed(n, StringType()) for n in IDENTITY_FIELDS]
    fields += [typed("event_time_ms", LongType()), typed("send_wall_ns", LongType())]
    fields += [typed(v, DoubleType()) for v in VITAL_NAMES]
    fields.append(typed("o2_supplemental", BooleanType()))
    kinds = {"long": LongType(), "double": DoubleType()}
    for alias in devices.aliases if devices is not None else ():
        fields.append(typed(alias.name, kinds[alias.spark_type]))
    if value_type != "string":
        fields.append(StructField(CORRUPT_FIELD, StringType()))
    return StructType(fields)


def _any(columns: list[Column]) -> Column:
    return functools.reduce(lambda a, b: a | b, columns)


def _kafka_send_stamp(kafka_ms: Column) -> Column:
    """The Kafka record's timestamp in ns: a device message's send stamp. Null for a record
    without one (negative) or one too far out for nanoseconds (``try_multiply``: ANSI SQL would
    fail the batch on an overflow)."""
    from pyspark.sql import functions as F

    stamp = F.try_multiply(kafka_ms, F.lit(1_000_000))
    return F.when(kafka_ms >= F.lit(0), stamp)


def _canonical(p: Column, devices: DeviceFormat, kafka_ms: Column) -> Column:
    """The parsed message ``p`` as the canonical message: each field, else its first alias
    present (converted); a device-shaped message's send stamp from its Kafka record.

    Device-shaped: no ``event_time_ms`` and no ``send_wall_ns`` of its own, an event time under
    an alias. A message with its own event time but no send stamp stays canonical and missing
    one; one with no event time at all is dead-lettered for that (``missing:event_time_ms``).
    """
    from pyspark.sql import functions as F

    time_aliases = [p[a.name].isNotNull() for a in devices.of(EVENT_TIME_FIELD)]
    columns = []
    for name in (f.name for f in message_schema().fields):
        value = p[name]
        aliases = devices.of(name)
        if aliases:
            value = F.coalesce(value, *[a.to_canonical(p[a.name]) for a in aliases])
        elif name == SEND_STAMP and time_aliases:
            device = p[EVENT_TIME_FIELD].isNull() & _any(time_aliases)
            value = F.coalesce(value, F.when(device, _kafka_send_stamp(kafka_ms)))
        columns.append(value.alias(name))
    return F.struct(*columns, p[CORRUPT_FIELD].alias(CORRUPT_FIELD))


def _event_time_outside(m: Column, kafka_ms: Column, checks: MessageChecks) -> Column:
    """Whether the event time is outside what the job accepts: the range every engine can
    represent, and the band around the Kafka record's timestamp (config ``checks``).

    A device clock far ahead would move the watermark all patients share; heartbeats are
    checked alike for that reason. A record without a broker timestamp (negative) is judged
    on the representable range alone. The bounds add to the broker's clock, never to the
    message's value, so no arithmetic here can overflow (ANSI would fail the batch).
    """
    from pyspark.sql import functions as F

    event_ms = m["event_time_ms"]
    outside = (event_ms < F.lit(EVENT_TIME_MIN_MS)) | (event_ms >= F.lit(EVENT_TIME_END_MS))
    stamped = kafka_ms >= F.lit(0)
    if checks.max_ahead_ms is not None:
        outside |= stamped & (event_ms > kafka_ms + F.lit(checks.max_ahead_ms))
    if checks.max_behind_ms is not None:
        outside |= stamped & (event_ms < kafka_ms - F.lit(checks.max_behind_ms))
    return outside


def _heartbeat_shape_broken(m: Column) -> Column:
    """A heartbeat carries only kind, event time and send stamp: one with a patient, device,
    vital or context could be a forged reading, and it is refused rather than half-used."""
    fields = ["patient_id", "device_id", "consciousness", "o2_supplemental", *VITAL_NAMES]
    return _any([m[name].isNotNull() for name in fields])


def _not_finite(value: Column) -> Column:
    """NaN or ±Infinity: Spark's JSON reader accepts these tokens as numbers."""
    from pyspark.sql import functions as F

    return F.isnan(value) | (F.abs(value) == F.lit(float("inf")))


def _quarantine_reason(checks: MessageChecks, devices: DeviceFormat) -> Column:
    """Why a parsed message cannot be used (null when it can). First matching reason wins.

    References the canonical struct ``m``, the message as parsed (an empty one is malformed,
    whichever fields it spells) and the record's ``kafka_time`` only, so it costs no further
    JSON parsing. Reasons of the batch reference (core.schema.validate_events) are the
    same texts where a check applies to a file too.
    """
    from pyspark.sql import functions as F

    m, p = F.col("m"), F.col(PARSED)
    field_names = _parsed_fields(devices)
    all_null = functools.reduce(lambda a, b: a & b, [p[n].isNull() for n in field_names])
    outside = _event_time_outside(m, F.unix_millis(F.col("kafka_time")), checks)
    reason = F.when(p.isNull() | all_null, F.lit("malformed_json"))
    reason = reason.when(p[CORRUPT_FIELD].isNotNull(), F.lit("bad_type"))
    reason = reason.when(
        m["kind"].isNotNull() & ~m["kind"].isin("vital", HEARTBEAT_KIND), F.lit("unknown_kind")
    )
    heartbeat = m["kind"] == HEARTBEAT_KIND
    reason = reason.when(heartbeat & _heartbeat_shape_broken(m), F.lit("bad_shape:heartbeat"))
    reason = reason.when(heartbeat & m["event_time_ms"].isNull(), F.lit("missing:event_time_ms"))
    reason = reason.when(heartbeat & outside, F.lit("out_of_range:event_time"))
    reason = reason.when(heartbeat, F.lit(None))
    for name in REQUIRED_FIELDS:
        reason = reason.when(m[name].isNull(), F.lit(f"missing:{name}"))
    patient = m["patient_id"]
    reason = reason.when(F.trim(patient) == F.lit(""), F.lit("missing:patient_id"))
    too_long = F.length(patient) > F.lit(checks.patient_id_max_length)
    reason = reason.when(too_long, F.lit("too_long:patient_id"))
    reason = reason.when(outside, F.lit("out_of_range:event_time"))
    no_vitals = functools.reduce(lambda a, b: a & b, [m[v].isNull() for v in VITAL_NAMES])
    reason = reason.when(no_vitals, F.lit("missing:all_vitals"))
    for vital in VITAL_NAMES:
        reason = reason.when(_not_finite(m[vital]), F.lit(f"not_finite:{vital}"))
    for vital in VITAL_NAMES:
        low, high = valid_range(vital)
        reason = reason.when((m[vital] < low) | (m[vital] > high), F.lit(f"out_of_range:{vital}"))
    level = m["consciousness"]
    unknown_level = level.isNotNull() & ~level.isin(*CONSCIOUSNESS_LEVELS)
    return reason.when(unknown_level, F.lit("bad_value:consciousness"))


def _parsed_fields(devices: DeviceFormat) -> list[str]:
    """The fields a message is parsed into, aliases included (not the corrupt-record one)."""
    return [f.name for f in message_schema(devices=devices).fields if f.name != CORRUPT_FIELD]


def parse_messages(
    raw: DataFrame, checks: MessageChecks, devices: DeviceFormat | None = None
) -> DataFrame:
    """Kafka records → one row per message with the canonical fields and a quarantine
    ``reason``; ``event_time`` only where the reason is null (see the module docstring).
    ``devices``: the device aliases read besides the canonical fields (None: the default,
    core.devices.DeviceFormat()).

    The parse sits inside a generator (``inline``) on purpose: Spark would otherwise inline
    ``from_json`` into every expression that reads a field, and the conditional quarantine
    checks would parse each message a dozen times (measured: 8x slower).
    """
    from pyspark.sql import functions as F

    value = F.col("value").cast("string")
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_FIELD}
    devices = devices if devices is not None else DeviceFormat()
    schema = message_schema(devices=devices)
    parsed = F.struct(F.from_json(value, schema, options).alias(PARSED))
    record = ("value", "partition", "offset", "kafka_time")
    kafka_ms = F.unix_millis(F.col("kafka_time"))
    return (
        raw.select(
            value.alias("value"),
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_time"),
            F.inline(F.array(parsed)),
        )
        .select(*record, PARSED, _canonical(F.col(PARSED), devices, kafka_ms).alias("m"))
        .select(
            *record,
            PARSED,
            _quarantine_reason(checks, devices).alias("reason"),
            "m.*",
        )
        .drop(CORRUPT_FIELD)
        .withColumn(
            "event_time",
            F.when(F.col("reason").isNull(), F.timestamp_millis("event_time_ms")),
        )
    )


def detailed_reason(bad: DataFrame) -> DataFrame:
    """Name the offending field of ``bad_type`` messages (parsing them again, as text): a
    canonical field or a device alias (``bad_type:ts``).

    The second parse sits in the branch taken only for ``bad_type`` rows, so it costs nothing
    on good data. The fields, aliases included, are those ``bad`` was parsed into
    (parse_messages' ``_parsed`` column), so this needs no device format of its own.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    typed = [f.name for f in bad.schema[PARSED].dataType.fields if f.name != CORRUPT_FIELD]
    text = F.from_json(F.col("value"), StructType([StructField(n, StringType()) for n in typed]))
    check = None
    for name in typed:
        wrong = text[name].isNotNull() & F.col(PARSED)[name].isNull()
        check = (
            F.when(wrong, F.lit(f"bad_type:{name}"))
            if check is None
            else check.when(wrong, F.lit(f"bad_type:{name}"))
        )
    refined = check.otherwise(F.col("reason")) if check is not None else F.col("reason")
    return bad.withColumn(
        "reason", F.when(F.col("reason") == "bad_type", refined).otherwise(F.col("reason"))
    )


def consciousness_rank() -> Column:
    """ACVPU as 0..4, so the worst level of a window is a max."""
    from pyspark.sql import functions as F

    rank = F.lit(None).cast("int")
    for i, level in reversed(list(enumerate(CONSCIOUSNESS_LEVELS))):
        rank = F.when(F.col("consciousness") == level, F.lit(i)).otherwise(rank)
    return rank
