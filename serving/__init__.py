"""Serving: a TF-Serving-compatible model server and client."""
