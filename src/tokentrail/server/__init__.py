"""tokentrail.server."""
