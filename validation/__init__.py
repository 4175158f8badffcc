"""Data over time: spans, statistics, drift and skew, schema diffs (``tfxp data``, ``tfxp schema``)."""
