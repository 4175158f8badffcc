"""Model review: run history and lineage from MLMD, the HTML run report, helpers the notebooks import."""
