"""Delivery channels, each behind the `Channel` interface."""
