"""Notify: delivers notifications to chat groups and the local inbox, each exactly once."""
