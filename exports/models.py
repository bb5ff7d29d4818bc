"""Export runs and what they wrote."""
