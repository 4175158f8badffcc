"""Runner entry points: each builds a config, calls create_pipeline, and runs or compiles it."""
