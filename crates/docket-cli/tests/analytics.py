"""Reads docket's partitioned Parquet exports straight from an S3 bucket
with pyarrow (its S3FileSystem and Hive partitioning, as Spark, Trino and
Polars read the same layout) and prints, as JSON, each dataset's schema and
its row counts per (list, year) computed by pyarrow's own group-by.

    python analytics.py ENDPOINT BUCKET/PREFIX [BUCKET/PREFIX ...]

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""

import json
import os
import sys

import pyarrow.dataset as ds
import pyarrow.fs as fs


def main():
    endpoint, prefixes = sys.argv[1], sys.argv[2:]
    scheme, host = endpoint.split("://", 1)
    s3 = fs.S3FileSystem(
        endpoint_override=host,
        scheme=scheme,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )
    answer = {}
    for prefix in prefixes:
        # Hive partitioning: list=.../year=... directories become columns;
        # __HIVE_DEFAULT_PARTITION__ reads as null; _manifest.json is skipped.
        dataset = ds.dataset(prefix, filesystem=s3, format="parquet", partitioning="hive")
        table = dataset.to_table()
        grouped = table.group_by(["list", "year"]).aggregate([([], "count_all")]).to_pylist()
        answer[prefix] = {
            "files": len(dataset.files),
            "columns": table.schema.names,
            "rows": table.num_rows,
            "counts": [[row["list"], row["year"], row["count_all"]] for row in grouped],
        }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
