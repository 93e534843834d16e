"""Delivery: rendering and building messages, SMTP, the sent-ledger and the email activity."""
