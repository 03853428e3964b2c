"""tokentrail.pricing."""
