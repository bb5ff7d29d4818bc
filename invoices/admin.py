"""Admin pages for invoice delivery."""
