"""Mailgun tracking webhooks (through Anymail): delivery outcomes for our invoice emails."""
