"""Project-specific TFX components: the anomalies gate, checked CSV input, atomic push."""
