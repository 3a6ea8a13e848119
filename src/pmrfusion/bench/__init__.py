"""Grid runner and results store."""
