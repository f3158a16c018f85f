"""Validates docket's exports with the tools integrators use.

Usage: validate.py DIR, where DIR holds what tests/external.rs wrote:
public.ftm.json, events.parquet, public.parquet, list.parquet,
public.csv, events.csv and counts.json (docket's own counts, from its
views and its log, not from the exports).

* Every FollowTheMoney entity is valid for the followthemoney model: a
  known, concrete schema; a unique id; only properties of its schema, each
  a non-empty list of strings its type accepts and that cleaning leaves
  unchanged; the schema's required properties; every entity reference
  resolving to an entity of the export of the right schema; one Sanction
  per public listing.
* DuckDB reads the Parquet files with row counts equal to docket's, with
  typed times and dates, and the join of the public list to the event
  history (decision id = event id) finds every listing's decision.
* Python's csv module reads the CSV with the same header and row counts.

Exits 1 naming the first failure.
"""

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import duckdb
from followthemoney import model
from followthemoney.types import registry


def fail(message):
    print(f"export validation FAILED: {message}")
    sys.exit(1)


def check_property(entity_id, schema, name, values, references):
    prop = schema.get(name)
    if prop is None:
        fail(f"{entity_id}: {schema.name} has no property {name!r}")
    if not isinstance(values, list) or not values:
        fail(f"{entity_id}: {name} is not a non-empty list: {values!r}")
    for value in values:
        if not isinstance(value, str) or not prop.type.validate(value):
            fail(f"{entity_id}: {name} = {value!r} is not a valid {prop.type.name}")
        if prop.type == registry.entity:
            references.append((entity_id, name, value, prop.range))


def check_entity(line_number, data, entities, references):
    where = f"public.ftm.json line {line_number}"
    schema = model.get(data.get("schema") or "")
    if schema is None or schema.abstract:
        fail(f"{where}: unknown or abstract schema {data.get('schema')!r}")
    entity_id = data.get("id")
    if not isinstance(entity_id, str) or not entity_id or entity_id in entities:
        fail(f"{where}: missing or duplicate id {entity_id!r}")
    if set(data) != {"id", "schema", "properties"}:
        fail(f"{where}: unexpected keys {sorted(data)}")
    properties = data["properties"]
    for name, values in properties.items():
        check_property(entity_id, schema, name, values, references)
    for name in schema.required:
        if not properties.get(name):
            fail(f"{entity_id}: {schema.name} requires {name!r}")
    schema.validate(data)
    proxy = model.get_proxy(data, cleaned=False)
    for name, values in properties.items():
        if sorted(proxy.get(name)) != sorted(values):
            fail(f"{entity_id}: cleaning changes {name}: {values!r} -> {proxy.get(name)!r}")
    entities[entity_id] = schema


def check_ftm(directory, counts):
    entities, references = {}, []
    with open(directory / "public.ftm.json", encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, 1):
            check_entity(line_number, json.loads(line), entities, references)
    for source, name, target, expected in references:
        if target not in entities:
            fail(f"{source}: {name} points at {target!r}, not in the export")
        if not entities[target].is_a(expected):
            fail(f"{source}: {name} points at a {entities[target].name}, not a {expected.name}")
    by_schema = Counter(schema.name for schema in entities.values())
    if by_schema["Sanction"] != counts["public"]:
        fail(f"{by_schema['Sanction']} Sanction entities for {counts['public']} public listings")
    subjects = sum(by_schema[name] for name in ("Company", "Person", "LegalEntity"))
    if subjects != counts["public_subjects"]:
        fail(f"{subjects} subject entities for {counts['public_subjects']} distinct public subjects")
    print(f"ftm: {len(entities)} entities valid ({dict(sorted(by_schema.items()))})")


def scalar(connection, query):
    return connection.execute(query).fetchone()[0]


def check_parquet(directory, counts):
    connection = duckdb.connect()
    tables = {name: str(directory / f"{name}.parquet") for name in ("events", "public", "list")}
    for name, path in tables.items():
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        rows = scalar(connection, f"SELECT count(*) FROM {name}")
        if rows != counts[name]:
            fail(f"duckdb reads {rows} rows from {name}.parquet; docket counts {counts[name]}")
    events = counts["events"]
    seqs = connection.execute("SELECT count(DISTINCT seq), min(seq), max(seq) FROM events").fetchone()
    if seqs != (events, 0, events - 1):
        fail(f"events.parquet seqs {seqs}, expected ({events}, 0, {events - 1})")
    types = connection.execute(
        "SELECT typeof(recorded_at), typeof(seq) FROM events LIMIT 1").fetchone()
    if types != ("TIMESTAMP WITH TIME ZONE", "BIGINT"):
        fail(f"events.parquet column types {types}")
    if scalar(connection, "SELECT typeof(listing_date) FROM public LIMIT 1") != "DATE":
        fail("public.parquet listing_date is not a DATE")
    joined = scalar(connection, """
        SELECT count(*) FROM public p JOIN events e
        ON e.event_id = p.decision_id AND e.kind = 'designation_decision'
        AND e.list = p.list AND e.case_number = p.case_number""")
    if joined != counts["public"]:
        fail(f"the join of public listings to their decisions finds {joined} of {counts['public']}")
    print(f"parquet: duckdb reads {events} events, {counts['public']} listings, {counts['list']} cases; "
          f"every listing joins its decision")


def check_csv(directory, counts):
    for name in ("events", "public"):
        with open(directory / f"{name}.csv", newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        header, body = rows[0], rows[1:]
        parquet_columns = [row[0] for row in duckdb.connect().execute(
            f"DESCRIBE SELECT * FROM read_parquet('{directory / (name + '.parquet')}')").fetchall()]
        if header != parquet_columns:
            fail(f"{name}.csv header {header} differs from the Parquet columns {parquet_columns}")
        if len(body) != counts[name] or any(len(row) != len(header) for row in body):
            fail(f"{name}.csv: {len(body)} rows (docket counts {counts[name]}) or a ragged row")
    print(f"csv: python's csv module reads {counts['events']} events and {counts['public']} listings")


def main():
    directory = Path(sys.argv[1])
    counts = json.loads((directory / "counts.json").read_text())
    check_ftm(directory, counts)
    check_parquet(directory, counts)
    check_csv(directory, counts)
    print("export validation passed")


if __name__ == "__main__":
    main()
