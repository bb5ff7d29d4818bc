"""Invoice delivery records (per-invoice delivery state and timeline)."""
