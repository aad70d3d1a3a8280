"""Annotate a corpus with spacy-nerzoo on Spark: read texts, add entities, write Parquet.

A worked example for docs/spark.md. Input: a text file (one document per line), or a Parquet /
JSON-lines dataset with a text column. Output: Parquet with the input columns plus ``entities``
(and ``tokens`` with ``--tokens``) and ``nerzoo_error``; a summary of labels and errors is printed.

On a laptop (Spark ``local[2]``)::

    python examples/spark_annotate.py news.txt annotated.parquet --master 'local[2]'

On a cluster (see docs/spark.md for building the environment and shipping a pipeline)::

    spark-submit --archives nerzoo_env.tar.gz#environment \\
        --conf spark.pyspark.python=./environment/bin/python \\
        examples/spark_annotate.py hdfs:///corpus/news/ hdfs:///out/news_ner/
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spacy_nerzoo.spark import annotate


def read_texts(spark: SparkSession, path: str, text_col: str) -> DataFrame:
    """One row per document: lines of a ``.txt`` file, else a Parquet or JSON-lines dataset."""
    if path.endswith(".txt"):
        return spark.read.text(path).withColumnRenamed("value", text_col)
    if path.endswith((".json", ".jsonl")):
        return spark.read.json(path)
    return spark.read.parquet(path)


def annotate_corpus(
    spark: SparkSession,
    source: str,
    destination: str,
    *,
    model: str = "minilm_conll03",
    text_col: str = "text",
    tokens: bool = False,
    **settings: Any,
) -> DataFrame:
    """Read ``source``, annotate it with ``model``, write Parquet to ``destination``; the result."""
    texts = read_texts(spark, source, text_col)
    annotated = annotate(texts, model, text_col, output_tokens=tokens, **settings)
    annotated.write.mode("overwrite").parquet(destination)
    return spark.read.parquet(destination)


def summary(annotated: DataFrame) -> tuple[dict[str, int], int]:
    """Entities per label and the number of rows that could not be annotated."""
    labels = annotated.select(F.explode("entities.label").alias("label")).groupBy("label").count()
    errors = annotated.filter(F.col("nerzoo_error").isNotNull()).count()
    return {row["label"]: row["count"] for row in labels.collect()}, errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help=".txt (one document per line), Parquet or JSON lines")
    parser.add_argument("destination", help="Parquet output folder")
    parser.add_argument("--model", default="minilm_conll03", help="zoo name or pipeline folder")
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--tokens", action="store_true", help="also write IOB2 tags per token")
    parser.add_argument("--batch-size", type=int, default=128, help="documents per nlp.pipe")
    parser.add_argument("--master", default=None, help="e.g. local[2]; spark-submit sets it")
    args = parser.parse_args(argv)
    builder = SparkSession.builder.appName("spacy-nerzoo annotate")
    if args.master:
        # A local master runs its Python workers with $PYSPARK_PYTHON (default: python3 on PATH):
        # make that this interpreter, which has spacy-nerzoo installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        annotated = annotate_corpus(
            spark,
            args.source,
            args.destination,
            model=args.model,
            text_col=args.text_col,
            tokens=args.tokens,
            batch_size=args.batch_size,
        )
        labels, errors = summary(annotated)
        print(f"{annotated.count():,} documents, {errors:,} not annotated (see nerzoo_error)")
        for label, count in sorted(labels.items(), key=lambda item: -item[1]):
            print(f"{label}\t{count:,}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
