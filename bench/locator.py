"""Benchmark of the locator service; every figure is printed beside a baseline measured in this run.

    .venv/bin/python bench/locator.py [--prefixes 100000] [--seconds 3]

1. in-process resolve on N prefixes (goal >= 200,000 lookups/s), beside a plain dict lookup
2. HTTP /v1/resolve requests/s with concurrent clients, beside /v1/status (no lookup)
3. DNS front queries/s, beside BIND 9 answering the same kind of query from its zone
4. register -> watch notification latency p50/p99 over HTTP, SQLite store (goal p99 <= 50 ms) and
   etcd store on a 3-member cluster (goal p99 <= 100 ms), beside etcd's own put -> watch latency

Servers run on 127.0.0.1 on free ports in a temporary directory and are stopped at the end.
"""

from __future__ import annotations

import os
import sys

# bench/ holds a script named inspect.py: keep this directory off the import path (stdlib first)
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import dns.message  # noqa: E402
import httpx  # noqa: E402

from vmferry.locator.client import LocatorClient  # noqa: E402
from vmferry.locator.devservers import EtcdCluster, Named, free_port, free_tcp_udp_port  # noqa: E402
from vmferry.locator.etcd import prefix_end  # noqa: E402
from vmferry.locator.index import PrefixIndex  # noqa: E402
from vmferry.locator.model import Change, Eid, Locator, Mapping, Site  # noqa: E402
from vmferry.locator.service import LocatorService  # noqa: E402
from vmferry.locator.store import SqliteStore  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
SITES = f"""[[site]]
name = "bench"
key_id = "bench"
secret = "{SECRET}"
prefixes = ["0.0.0.0/0", "::/0", "example.test"]
"""


def random_prefixes(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    lengths = [16, 20, 22, 24, 24, 24, 26, 28, 32]
    while len(out) < n:
        length = rng.choice(lengths)
        value = rng.getrandbits(32) & (((1 << length) - 1) << (32 - length))
        out.add(f"{socket.inet_ntoa(value.to_bytes(4, 'big'))}/{length}")
    return sorted(out)


def bench_inprocess(prefixes: list[str], seconds: float, rng: random.Random) -> None:
    index = PrefixIndex()
    for i, p in enumerate(prefixes):
        index.put(Mapping(Eid.parse(p), (Locator(f"192.0.2.{i % 250 + 1}"),)))
    # queries: 80 % inside a registered prefix, 20 % anywhere
    queries = []
    for _ in range(50_000):
        if rng.random() < 0.8:
            net = Eid.parse(rng.choice(prefixes)).network
            value = int(net.network_address) + rng.randrange(net.num_addresses)
        else:
            value = rng.getrandbits(32)
        queries.append(socket.inet_ntoa(value.to_bytes(4, "big")))

    def rate(fn) -> tuple[float, float]:
        """(lookups per wall-clock second, lookups per CPU second of this process)."""
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            for q in queries:
                fn(q)
            done += len(queries)
        return done / (time.perf_counter() - start), done / (time.process_time() - cpu)

    (lpm, lpm_cpu), (full, _) = rate(index.match), rate(index.lookup_address)
    table = {q: q for q in queries}
    baseline, baseline_cpu = rate(table.get)
    misses = sum(1 for q in queries if index.match(q) is None) / len(queries)
    print(f"1. in-process resolve, {len(prefixes):,} prefixes, {misses:.0%} misses: {lpm:,.0f} lookups/s "
          f"wall clock, {lpm_cpu:,.0f} per CPU second (goal 200,000: {'met' if lpm >= 200_000 else 'NOT met'} "
          f"on the wall clock); with negative answers {full:,.0f}/s; baseline plain dict.get of the address "
          f"{baseline:,.0f}/s ({baseline_cpu:,.0f} per CPU s), ratio {lpm_cpu / baseline_cpu:.3f}")


class Server:
    def __init__(self, workdir: Path, *, etcd: list[str] | None = None, dns: bool = False) -> None:
        self.workdir = workdir
        self.http = free_port()
        self.dns = free_tcp_udp_port() if dns else None
        sites = workdir / "sites.toml"
        sites.write_text(SITES)
        argv = [sys.executable, "-m", "vmferry.cli.main", "locator", "serve", "--sites", str(sites),
                "--http", f"127.0.0.1:{self.http}"]
        argv += ["--etcd", ",".join(etcd)] if etcd else ["--db", str(workdir / "locator.db")]
        if dns:
            argv += ["--dns", f"127.0.0.1:{self.dns}"]
        log = open(workdir / "serve.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.url = f"http://127.0.0.1:{self.http}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v1/status", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"locator did not start: {(workdir / 'serve.log').read_text()[-1000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _http_client(url: str, path: str, queries: list[str] | None, seconds: float, k: int, step: int) -> int:
    """One load-generating process: a keep-alive client asking as fast as answers come."""
    done, i = 0, k
    with httpx.Client(base_url=url) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            params = {"q": queries[i % len(queries)]} if queries else None
            client.get(path, params=params).raise_for_status()
            done += 1
            i += step
    return done


def bench_http(url: str, pid: int, queries: list[str], seconds: float, concurrency: int = 4) -> None:
    """Client processes with one keep-alive connection each (threads in one process, or httpx's
    async client, saturate the client's own interpreter before the server). Besides requests
    per second, requests per CPU second of the server: steadier on a shared machine."""
    from concurrent.futures import ProcessPoolExecutor

    def load(path: str, with_queries: bool) -> tuple[float, float]:
        with ProcessPoolExecutor(concurrency) as pool:
            list(pool.map(int, range(concurrency)))  # start the processes before timing
            start, cpu = time.perf_counter(), cpu_seconds(pid)
            futures = [pool.submit(_http_client, url, path, queries if with_queries else None, seconds, k,
                                   concurrency) for k in range(concurrency)]
            done = sum(f.result() for f in futures)
            return done / (time.perf_counter() - start), done / max(cpu_seconds(pid) - cpu, 0.01)

    resolve, resolve_cpu = load("/v1/resolve", True)
    status, status_cpu = load("/v1/status", False)
    print(f"2. HTTP resolve, {concurrency} client processes: {resolve:,.0f} requests/s "
          f"({resolve_cpu:,.0f} per server CPU s); /v1/status (no lookup) {status:,.0f}/s "
          f"({status_cpu:,.0f} per CPU s), ratio {resolve_cpu / status_cpu:.2f}")


def dns_rate(port: int, pid: int, names: list[str], seconds: float, threads: int = 4) -> tuple[float, float]:
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    counts = [0] * threads

    def worker(k: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            deadline = time.perf_counter() + seconds
            i = k
            while time.perf_counter() < deadline:
                s.sendto(wires[i % len(wires)], ("127.0.0.1", port))
                try:
                    s.recv(4096)
                    counts[k] += 1
                except TimeoutError:
                    pass
                i += threads

    start, cpu = time.perf_counter(), cpu_seconds(pid)
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    done = sum(counts)
    return done / (time.perf_counter() - start), done / max(cpu_seconds(pid) - cpu, 0.01)


def bench_dns(server: Server, workdir: Path, seconds: float) -> None:
    names = [f"host{i}.example.test" for i in range(200)]
    with LocatorClient(server.url, key_id="bench", secret=SECRET) as client:
        for i, name in enumerate(names):
            client.register(name, [Locator(f"198.51.100.{i % 250 + 1}")], ttl=30)
    with Named(workdir / "named", zone="example.test") as named:
        for i, name in enumerate(names[:200]):
            import dns.query
            import dns.tsigkeyring
            import dns.update

            update = dns.update.Update("example.test.", keyring=dns.tsigkeyring.from_text(
                {named.key_name: named.secret}), keyalgorithm="hmac-sha256")
            update.replace(name + ".", 30, "A", f"198.51.100.{i % 250 + 1}")
            dns.query.tcp(update, "127.0.0.1", port=named.port, timeout=5)
        bind, bind_cpu = dns_rate(named.port, named.proc.pid, names, seconds)
    front, front_cpu = dns_rate(server.dns, server.proc.pid, names, seconds)
    print(f"3. DNS front: {front:,.0f} queries/s ({front_cpu:,.0f} per server CPU s; 4 client threads); "
          f"BIND 9 on the same names {bind:,.0f}/s ({bind_cpu:,.0f} per CPU s), "
          f"ratio {front / bind:.2f} ({front_cpu / bind_cpu:.2f} per CPU s)")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def locator_latency(url: str, rounds: int, tag: str) -> list[float]:
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def watcher() -> None:
        with LocatorClient(url) as client:
            start = client.status()["version"]
            ready.set()
            for item in client.watch(from_version=start, eids=["example.test"], heartbeat=0.5):
                if isinstance(item, Change):
                    received[item.eid.text] = time.perf_counter()
                if done.is_set() and len(received) >= rounds:
                    return

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.3)
    with LocatorClient(url, key_id="bench", secret=SECRET) as client:
        for i in range(rounds):
            name = f"lat{i}-{tag}.example.test"
            sent[name] = time.perf_counter()
            client.register(name, [Locator("192.0.2.1")])
            time.sleep(0.005)
    done.set()
    deadline = time.monotonic() + 10
    while len(received) < rounds and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(received[n] - sent[n]) * 1000 for n in sent if n in received]


def etcd_latency(endpoint: str, rounds: int) -> list[float]:
    prefix = b"/bench/raw/"
    sent: dict[bytes, float] = {}
    received: dict[bytes, float] = {}
    ready = threading.Event()

    def watcher() -> None:
        body = {"create_request": {"key": base64.b64encode(prefix).decode(),
                                   "range_end": base64.b64encode(prefix_end(prefix)).decode()}}
        with httpx.Client(timeout=httpx.Timeout(5, read=None)) as c, \
                c.stream("POST", endpoint + "/v3/watch", json=body) as resp:
            for line in resp.iter_lines():
                result = json.loads(line).get("result", {})
                if result.get("created"):
                    ready.set()
                for event in result.get("events", []):
                    received[base64.b64decode(event["kv"]["key"])] = time.perf_counter()
                if len(received) >= rounds:
                    return

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    ready.wait(10)
    with httpx.Client() as client:
        for i in range(rounds):
            key = prefix + str(i).encode()
            sent[key] = time.perf_counter()
            client.post(endpoint + "/v3/kv/put", json={"key": base64.b64encode(key).decode(),
                                                       "value": base64.b64encode(b"x").decode()})
            time.sleep(0.005)
    t.join(10)
    return [(received[k] - sent[k]) * 1000 for k in sent if k in received]


def report_latency(label: str, values: list[float], goal: float, rounds: int) -> None:
    p50, p99 = statistics.median(values), percentile(values, 99)
    print(f"   {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(values)}/{rounds}"
          + (f" (goal p99 <= {goal:.0f} ms: {'met' if p99 <= goal else 'NOT met'})" if goal else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(2026)
    started = time.monotonic()
    prefixes = random_prefixes(args.prefixes, rng)
    bench_inprocess(prefixes, args.seconds, rng)
    with tempfile.TemporaryDirectory(prefix="vmferry-bench-") as tmp:
        work = Path(tmp)
        # a SQLite table with the same prefixes, loaded by the served process
        site = Site("bench", "bench", SECRET.encode(), (Eid.parse("0.0.0.0/0"),))
        with LocatorService(SqliteStore(work / "locator.db"), sweep_interval=0).start() as svc:
            svc.register_many(site, [(p, [Locator(f"192.0.2.{i % 250 + 1}")]) for i, p in enumerate(prefixes)],
                              expires_in=86400)
        server = Server(work, dns=True)
        try:
            queries = [p.split("/")[0] for p in rng.sample(prefixes, 5000)]
            bench_http(server.url, server.proc.pid, queries, args.seconds)
            bench_dns(server, work, args.seconds)
            print("4. register -> watch notification latency (HTTP register, HTTP watch):")
            report_latency("SQLite store", locator_latency(server.url, args.rounds, "sqlite"), 50, args.rounds)
        finally:
            server.stop()
        with EtcdCluster(work / "etcd", size=3) as cluster:
            etcd_server = Server(work / "etcd", etcd=cluster.client_urls)
            try:
                report_latency("etcd store (3 members)", locator_latency(etcd_server.url, args.rounds, "etcd"),
                               100, args.rounds)
            finally:
                etcd_server.stop()
            report_latency("baseline: etcd's own put -> watch (JSON gateway)",
                           etcd_latency(cluster.client_urls[0], args.rounds), 0, args.rounds)
    print(f"(total {time.monotonic() - started:.0f} s on {len(prefixes):,} prefixes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
