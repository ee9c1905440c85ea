"""Intake: accepts arrival reports over HTTP and puts them on `reports.v1`."""
