"""Temporal workflows: the customer entity and the journey interpreter."""
