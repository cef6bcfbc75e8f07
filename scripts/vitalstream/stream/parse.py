"""Kafka messages → typed readings, each bad one with the reason it is quarantined.

The reasons are Spark expressions, so the dead letter names the field and the rule a message
broke, and the windows query sees only readings that passed every check.

Not for: windows and scores (vitalstream.stream.windows).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES, valid_range
from vitalstream.ingest.producer import HEARTBEAT_KIND

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

from vitalstream.stream.spec import (
    IDENTITY_FIELDS,
    REQUIRED_FIELDS,
)

CORRUPT_FIELD = "_corrupt_record"


def message_schema(value_type: str = "typed") -> StructType:
    """The JSON message schema; ``value_type="string"`` reads every field as text.

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
    if value_type != "string":
        fields.append(StructField(CORRUPT_FIELD, StringType()))
    return StructType(fields)


def _quarantine_reason() -> Column:
    """Why a parsed message cannot be used (null when it can). First matching reason wins.

    References only the parsed struct ``m``, so it costs no further JSON parsing.
    """
    from pyspark.sql import functions as F

    m = F.col("m")
    field_names = [f.name for f in message_schema().fields if f.name != CORRUPT_FIELD]
    all_null = functools.reduce(lambda a, b: a & b, [m[n].isNull() for n in field_names])
    reason = F.when(m.isNull() | all_null, F.lit("malformed_json"))
    reason = reason.when(m[CORRUPT_FIELD].isNotNull(), F.lit("bad_type"))
    reason = reason.when(
        m["kind"].isNotNull() & ~m["kind"].isin("vital", HEARTBEAT_KIND), F.lit("unknown_kind")
    )
    heartbeat = m["kind"] == HEARTBEAT_KIND
    reason = reason.when(heartbeat & m["event_time_ms"].isNull(), F.lit("missing:event_time_ms"))
    reason = reason.when(heartbeat, F.lit(None))
    for name in REQUIRED_FIELDS:
        reason = reason.when(m[name].isNull(), F.lit(f"missing:{name}"))
    no_vitals = functools.reduce(lambda a, b: a & b, [m[v].isNull() for v in VITAL_NAMES])
    reason = reason.when(no_vitals, F.lit("missing:all_vitals"))
    for vital in VITAL_NAMES:
        low, high = valid_range(vital)
        reason = reason.when((m[vital] < low) | (m[vital] > high), F.lit(f"out_of_range:{vital}"))
    return reason


def parse_messages(raw: DataFrame) -> DataFrame:
    """Kafka records → one row per message with the parsed fields and a quarantine ``reason``.

    The parse sits inside a generator (``inline``) on purpose: Spark would otherwise inline
    ``from_json`` into every expression that reads a field, and the conditional quarantine
    checks would parse each message a dozen times (measured: 8x slower).
    """
    from pyspark.sql import functions as F

    value = F.col("value").cast("string")
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_FIELD}
    parsed = F.struct(F.from_json(value, message_schema(), options).alias("m"))
    return (
        raw.select(
            value.alias("value"),
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_time"),
            F.inline(F.array(parsed)),
        )
        .select(
            "value",
            "partition",
            "offset",
            "kafka_time",
            _quarantine_reason().alias("reason"),
            "m.*",
        )
        .drop(CORRUPT_FIELD)
        .withColumn("event_time", F.timestamp_millis("event_time_ms"))
    )


def detailed_reason(bad: DataFrame) -> DataFrame:
    """Name the offending field of ``bad_type`` messages (parsing them again, as text).

    The second parse sits in the branch taken only for ``bad_type`` rows, so it costs nothing
    on good data.
    """
    from pyspark.sql import functions as F

    text = F.from_json(F.col("value"), message_schema("string"))
    typed = message_schema()
    check = None
    for fld in (f for f in typed.fields if f.name != CORRUPT_FIELD):
        wrong = text[fld.name].isNotNull() & F.col(fld.name).isNull()
        check = (
            F.when(wrong, F.lit(f"bad_type:{fld.name}"))
            if check is None
            else check.when(wrong, F.lit(f"bad_type:{fld.name}"))
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
