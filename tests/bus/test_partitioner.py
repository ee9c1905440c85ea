"""The producer's partitioner places keys exactly where Kafka's default partitioner does."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from gridline.bus.producer import murmur2, partition_for


def test_murmur2_matches_the_kafka_client_for_every_tail_length() -> None:
    rng = random.Random(7)
    for length in range(70):
        for _ in range(10):
            data = rng.randbytes(length)
            assert murmur2(data) == reference_murmur2(data)


def test_keys_land_on_the_default_partitioners_partition() -> None:
    rng = random.Random(11)
    partitions = list(range(12))
    for _ in range(300):
        key = rng.randbytes(32).hex().encode()
        assert partition_for(key, partitions, partitions) == DefaultPartitioner()(
            key, partitions, partitions
        )


def test_records_without_a_key_go_to_an_available_partition() -> None:
    assert {partition_for(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
