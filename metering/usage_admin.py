"""Admin for producer tokens and usage records."""
