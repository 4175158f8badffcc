"""Served traffic watched: request-log windows, skew and drift against training, the retrain decision."""
