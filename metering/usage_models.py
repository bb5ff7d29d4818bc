"""Usage records posted by metering producers and their delivery to Stripe meters."""
