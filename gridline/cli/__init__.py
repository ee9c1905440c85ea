"""The `gridline` command: run the platform, feed it a demo, manage its contracts."""
