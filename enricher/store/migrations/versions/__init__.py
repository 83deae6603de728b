"""The revisions of the schema history, oldest first (each names the one it follows)."""
