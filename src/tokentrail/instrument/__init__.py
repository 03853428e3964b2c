"""tokentrail.instrument."""
