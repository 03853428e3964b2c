"""tokentrail.tracking."""
