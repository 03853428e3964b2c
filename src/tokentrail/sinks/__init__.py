"""Destinations for records: sqlite (default), collector, otel, log, memory."""
