"""Decodes QuickStore's event topics with standard, non-Rust tools and checks
every field against `quickstore events export`.

For each topic: a confluent-kafka Consumer (read_committed) reads every
partition from the start to its end, AvroDeserializer decodes each value
with the writer schema it fetches from the schema registry (the Confluent
REST API), and the record is turned into the export's row shape (the
mapping docs/analytics.md documents: timestamps as epoch milliseconds, bytes
as lowercase hex). Then it must equal, field for field, the row
`quickstore events export --format jsonl` wrote for the same partition and
offset; the parquet export (read with pyarrow) and the CSV export (read with
the csv module) must hold the same rows too.

    python check_exports.py --bootstrap HOST:PORT --registry URL \
        --dir EXPORTS topic [topic ...]

EXPORTS holds <topic>.jsonl, <topic>.parquet and <topic>.csv. Prints one line
per topic and exits non-zero on the first difference.
"""

import argparse
import csv
import datetime
import json
import sys
import time

import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ENVELOPE = [
    "event_id", "aggregate_type", "aggregate_id", "version", "occurred_at",
    "actor", "command_id", "correlation_id", "causation_id", "prev_hash", "hash",
]
INTEGER_COLUMNS = {"partition", "offset", "version", "occurred_at", "timestamp"}


def plain(value):
    """A fastavro value in the export's JSON mapping."""
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def record_name(registry, cache, raw):
    """The full name of the record a Confluent-framed value was written with."""
    schema_id = int.from_bytes(raw[1:5], "big")
    if schema_id not in cache:
        schema = json.loads(registry.get_schema(schema_id).schema_str)
        cache[schema_id] = f"{schema['namespace']}.{schema['name']}"
    return cache[schema_id]


def decode_topic(bootstrap, registry, topic):
    """Every committed record of `topic` as export rows, by (partition, offset)."""
    deserialize = AvroDeserializer(registry)
    names = {}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "quickstore-check-exports",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        if metadata.error is not None:
            raise SystemExit(f"{topic}: {metadata.error}")
        ends = {}
        for p in metadata.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        rows = {}
        deadline = time.monotonic() + 120
        # Stop once every partition's position reached its end (transaction
        # markers take offsets but are never delivered, so positions, not
        # message offsets, tell when a partition is done; a position not yet
        # known is negative).
        while not all(
            ends[tp.partition] == 0 or tp.offset >= ends[tp.partition]
            for tp in consumer.position([TopicPartition(topic, p) for p in ends])
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"{topic}: did not reach the end {ends} within 120 s")
            message = consumer.poll(5)
            if message is None:
                continue
            if message.error():
                raise SystemExit(f"{topic}: {message.error()}")
            value = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
            envelope = value.pop("envelope")
            row = {
                "topic": topic,
                "partition": message.partition(),
                "offset": message.offset(),
                "event_type": record_name(registry, names, message.value()),
                "timestamp": message.timestamp()[1],
                "payload": plain(value),
            }
            for field in ENVELOPE:
                row[field] = plain(envelope[field])
            rows[(row["partition"], row["offset"])] = row
        return rows
    finally:
        consumer.close()


def compare(what, expected, got):
    if expected != got:
        for key in sorted(set(expected) | set(got)):
            if expected.get(key) != got.get(key):
                raise SystemExit(
                    f"{what}: field {key!r} differs: decoded {expected.get(key)!r}, export {got.get(key)!r}")
        raise SystemExit(f"{what}: rows differ")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()
    registry = SchemaRegistryClient({"url": args.registry})
    for topic in args.topics:
        decoded = decode_topic(args.bootstrap, registry, topic)
        if not decoded:
            raise SystemExit(f"{topic}: no records to check")
        with open(f"{args.dir}/{topic}.jsonl", encoding="utf-8") as f:
            exported = {(r["partition"], r["offset"]): r for r in map(json.loads, f)}
        if set(decoded) != set(exported):
            raise SystemExit(
                f"{topic}: decoded offsets {sorted(decoded)} but the export has {sorted(exported)}")
        for key, row in decoded.items():
            compare(f"{topic} {key} jsonl", row, exported[key])

        table = pq.read_table(f"{args.dir}/{topic}.parquet").to_pylist()
        if len(table) != len(exported):
            raise SystemExit(f"{topic}: parquet has {len(table)} rows, jsonl {len(exported)}")
        for row in table:
            row = {k: plain(v) for k, v in row.items()}
            row["payload"] = json.loads(row["payload"])
            compare(f"{topic} parquet", exported[(row["partition"], row["offset"])], row)

        with open(f"{args.dir}/{topic}.csv", encoding="utf-8", newline="") as f:
            lines = list(csv.DictReader(f))
        if len(lines) != len(exported):
            raise SystemExit(f"{topic}: csv has {len(lines)} rows, jsonl {len(exported)}")
        for line in lines:
            row = {k: int(v) if k in INTEGER_COLUMNS else v for k, v in line.items()}
            row["payload"] = json.loads(row["payload"])
            compare(f"{topic} csv", exported[(row["partition"], row["offset"])], row)

        types = sorted({r["event_type"].rsplit(".", 1)[-1] for r in decoded.values()})
        print(f"{topic}: {len(decoded)} events decoded by AvroDeserializer, "
              f"equal in jsonl, parquet and csv ({', '.join(types)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
