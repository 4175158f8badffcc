"""The TFX pipeline: config, DAG, components, run summary and the ``tfxp`` CLI."""
