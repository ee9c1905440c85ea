"""Kafka transport: topics, the event envelope, the producer and the consumer runner."""
