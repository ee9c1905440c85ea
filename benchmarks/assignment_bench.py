"""Address resolution on a 200,000-household county: per-lookup p50/p99 in-process and over
gRPC (a server in a separate process), and the memory of the loaded directory.

Run: `.venv/bin/python benchmarks/assignment_bench.py [--households 200000] [--lookups 20000]`.
Numbers go to docs/benchmarks/assignment.md; this is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridline.contracts.v1 import directory_pb2, directory_pb2_grpc
from gridline.db import Database
from gridline.embedded import free_port
from gridline.rpc import RpcServer
from gridline.settings import Settings
from services.assignment.address_index import COMPOUND_SUFFIXES, core_name
from services.assignment.assignee import CadreLoad
from services.assignment.demo_county import generate
from services.assignment.directory import Directory
from services.assignment.following import Current
from services.assignment.grid import Node, NodeKind
from services.assignment.servicer import DirectoryServicer

CHINESE = "零一二三四五六七八九"
TRADITIONAL = str.maketrans("号楼单区园汇兰", "號樓單區園匯蘭")


def _written(directory: Directory, household: Node, rng: random.Random) -> str:
    """The household's address as one of the ways people write it."""
    unit = directory.nodes[household.parent_id or ""]
    building = directory.nodes[unit.parent_id or ""]
    grid = directory.nodes[building.parent_id or ""]
    community = directory.nodes[grid.parent_id or ""]
    b, u, r = building.name[:-2], unit.name[:-2], household.name[:-1]
    compound = grid.name
    forms: list[Callable[[], str]] = [
        lambda: household.address or "",
        lambda: f"{compound}{b}栋{u}单元{r}",
        lambda: f"{core_name(compound, COMPOUND_SUFFIXES)}{b}号楼{u}单元{r}室",
        lambda: (household.address or "").translate(TRADITIONAL),
        lambda: f"{community.name}{compound}{b}-{u}-{r}",
        lambda: f"{compound}{b}号楼{u}单元" + "".join(CHINESE[int(d)] for d in r),
        lambda: f"{compound}{b}号楼{u}单元",
        lambda: f"{community.name}{compound}不存在{b}号",
    ]
    return rng.choice(forms)()


def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return pick(0.5), pick(0.99), statistics.fmean(ordered) / 1e6


def _serve(households: int, port: int, ready: multiprocessing.synchronize.Event) -> None:
    """The Directory gRPC service alone, in its own process, on the big county."""
    county = generate(households=households)
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    settings = Settings(data_dir=Path("/tmp"))
    servicer = DirectoryServicer(Current(directory), Database(settings, "bench", []), CadreLoad())

    async def run() -> None:
        server = RpcServer(
            "127.0.0.1",
            port,
            [lambda s: directory_pb2_grpc.add_DirectoryServicer_to_server(servicer, s)],
            [directory_pb2.DESCRIPTOR.services_by_name["Directory"].full_name],
        )
        await server.start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


async def _over_grpc(port: int, addresses: list[str]) -> list[int]:
    samples: list[int] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = directory_pb2_grpc.DirectoryStub(channel)
        for address in addresses[:200]:  # warm-up
            await stub.ResolveAddress(directory_pb2.ResolveAddressRequest(address=address))
        for address in addresses:
            start = time.perf_counter_ns()
            await stub.ResolveAddress(directory_pb2.ResolveAddressRequest(address=address))
            samples.append(time.perf_counter_ns() - start)
    return samples


def main() -> None:
    """Build, measure, print a Markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(args.households, port, ready), daemon=True
    )
    server.start()

    started = time.perf_counter()
    county = generate(households=args.households)
    generated = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    directory = Directory(county.nodes, county.people, county.groups, county.micro_grids)
    indexed = time.perf_counter() - started
    index_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The nodes, people and groups themselves (made by the generator) plus the indexes over them.
    tracemalloc.start()
    again = generate(households=args.households)
    county_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    kinds = Counter(n.kind for n in directory.nodes.values())

    rng = random.Random(7)
    homes = [n for n in directory.nodes.values() if n.kind is NodeKind.HOUSEHOLD]
    addresses = [_written(directory, rng.choice(homes), rng) for _ in range(args.lookups)]
    for address in addresses[:1000]:
        directory.locate(address)
    samples: list[int] = []
    outcomes: Counter[str] = Counter()
    for address in addresses:
        start = time.perf_counter_ns()
        resolution = directory.locate(address)
        samples.append(time.perf_counter_ns() - start)
        outcomes[resolution.node.kind.value] += 1
    exact = [n.address for n in rng.sample(homes, min(args.lookups, len(homes))) if n.address]
    exact_samples: list[int] = []
    for address in exact:
        start = time.perf_counter_ns()
        directory.locate(address)
        exact_samples.append(time.perf_counter_ns() - start)

    if not ready.wait(timeout=600):
        raise SystemExit("the gRPC server did not start")
    grpc_samples = asyncio.run(_over_grpc(port, addresses))
    server.kill()
    server.join(timeout=10)

    p50, p99, mean = _percentiles(samples)
    e50, e99, emean = _percentiles(exact_samples)
    g50, g99, gmean = _percentiles(grpc_samples)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("households", f"{kinds[NodeKind.HOUSEHOLD]:,}"),
        (
            "nodes / people / groups",
            f"{len(directory.nodes):,} / {len(directory.people):,} / {len(directory.groups):,}",
        ),
        ("generate county / build directory + index", f"{generated:.1f} s / {indexed:.1f} s"),
        ("memory: county objects (tracemalloc)", f"{county_bytes / 2**20:.0f} MiB"),
        ("memory: directory dicts + address index (tracemalloc)", f"{index_bytes / 2**20:.0f} MiB"),
        ("bench process max RSS", f"{rss_mb:.0f} MiB"),
        ("lookups (mixed written forms), landed on", f"{len(samples):,}: {dict(outcomes)}"),
        ("in-process, mixed forms: p50 / p99 / mean", f"{p50:.3f} / {p99:.3f} / {mean:.3f} ms"),
        ("in-process, canonical: p50 / p99 / mean", f"{e50:.3f} / {e99:.3f} / {emean:.3f} ms"),
        ("over gRPC, other process: p50 / p99 / mean", f"{g50:.3f} / {g99:.3f} / {gmean:.3f} ms"),
    ]
    sys.stdout.write("| measure | value |\n| --- | --- |\n")
    sys.stdout.writelines(f"| {name} | {value} |\n" for name, value in rows)


if __name__ == "__main__":
    main()
