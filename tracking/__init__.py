"""Experiment tracking: runs recorded in ML Metadata, exported to MLflow."""
