"""Runs the end-to-end benchmarks (ingress, dispatcher, soak; instructions on request) against one broker and prints the figures and ratios.

Started by `bench/run` (which builds the binaries and the Python baselines' venv first).
Everything runs on this machine, on loopback: the broker (librdkafka's mock cluster, a process
of its own), the system under test, and the load generator or sink.

    bench/run [--plain] [--quick] [--soak SECS] [--only ingress,dispatch,soak,instructions]
"""
import argparse
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from statistics import median

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
# The binaries measured: `bench/run` passes the profile-guided builds of both (`bench/build-pgo`),
# or with `--plain` the plain `cargo build --release` ones.
SWITCHYARD = pathlib.Path(os.environ.get("SWITCHYARD_BIN", RELEASE / "switchyard"))
LIMIT = pathlib.Path(os.environ.get("LIMIT_BIN", RELEASE / "examples" / "limit"))
BUILD = os.environ.get("BENCH_BUILD", "plain")
BENCHKIT = RELEASE / "examples" / "benchkit"
PYTHON = sys.executable
SECRET = "whsec_bench_" + secrets.token_hex(8)
# The producer's linger (ms) for Switchyard and the limit program alike (BENCH_LINGER_MS).
LINGER = os.environ.get("BENCH_LINGER_MS", "0.2")
# Concurrent connections of the saturation runs (BENCH_CONNECTIONS): each system is run at
# each count and its best is its saturation, so no closed loop is bounded by one latency.
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "128,256").split(",")]
# Worker threads of the saturation runs (BENCH_WORKERS; `cores`: the async runtime's default,
# one per core): Switchyard's `--workers`, the limit program's TOKIO_WORKER_THREADS. As with the
# connections, each system is run with each, and its best run is its saturation.
WORKERS = os.environ.get("BENCH_WORKERS", "cores,1").split(",")
PARTITIONS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env=None, first_line=False):
    full_env = {**os.environ, "RUST_LOG": "warn", **(env or {})}
    proc = subprocess.Popen([str(c) for c in cmd], env=full_env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE if first_line else subprocess.DEVNULL)
    line = proc.stdout.readline().strip() if first_line else None
    return proc, line


def stop(proc, grace=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(what, ready, proc, seconds=30):
    """Polls `ready()` until it is true; fails if `proc` exits or `seconds` pass."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {proc.returncode}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready in {seconds} s")


def wait_ready(url, proc):
    def ok():
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    wait_until(url, ok, proc)


def wait_port(port, proc):
    wait_until(f"port {port}", lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, proc)


def rss_mib(pid):
    """(current, peak) resident memory of a process, MiB."""
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class RssSampler:
    """Samples a process's resident memory every `every` seconds while a run goes on."""

    def __init__(self, pid, every=0.5):
        self.pid, self.every, self.samples, self._stop = pid, every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                self.samples.append((time.time(), rss_mib(self.pid)[0]))
            except OSError:
                return

    def finish(self):
        self._stop.set()
        self._thread.join()
        return self.samples


def cpu_seconds(pid):
    """User + system CPU time a process has used so far, seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url, run_id, duration, connections=64, rate=None, warmup=2.0, server=None):
    """One load run. With `server` (a pid), also the CPU time per acknowledged webhook of that
    process (measured from the end of the warm-up) and of the load generator."""
    cmd = [BENCHKIT, "load", "--url", url, "--secret", SECRET, "--connections", connections,
           "--duration", duration, "--warmup", warmup, "--run-id", run_id]
    if rate:
        cmd += ["--rate", rate]
    marks = {}
    timer = None
    if server:
        timer = threading.Timer(warmup, lambda: marks.update(start=cpu_seconds(server)))
        timer.start()
    before = os.times()
    done = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True)
    after = os.times()
    if timer:
        timer.join()
        marks["end"] = cpu_seconds(server)
    if done.returncode != 0:
        raise SystemExit(f"load generator failed: {done.stderr.strip()}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if server and out["ok"]:
        out["server_cpu_us_per_ok"] = round((marks["end"] - marks["start"]) * 1e6 / out["ok"], 1)
        # The generator's CPU covers its warm-up too; counted at the measured rate.
        gen = (after.children_user + after.children_system) - (before.children_user + before.children_system)
        out["loadgen_cpu_us_per_ok"] = round(gen * 1e6 / (out["ok_per_sec"] * (duration + warmup)), 1)
    return out


def ingress_system(name, brokers, wrap=(), workers="cores"):
    """Starts one ingress implementation (`wrap`: a command to run it under, such as valgrind;
    `workers`: its worker threads, see WORKERS); returns (process, webhook URL)."""
    port = free_port()
    topic = f"ingress.{name}"
    threads = {} if workers == "cores" else {"switchyard": {"SWITCHYARD_WORKERS": workers}}.get(
        name, {"TOKIO_WORKER_THREADS": workers})
    if name == "switchyard":
        proc, _ = start([*wrap, SWITCHYARD, "serve", "-c", "routes.yaml", "--role", "ingress", "--listen",
                         f"127.0.0.1:{port}"],
                        env={"KAFKA_BROKERS": brokers, "STRIPE_WEBHOOK_SECRET": SECRET, "PAYMENTS_TOPIC": topic,
                             "KAFKA_LINGER_MS": LINGER, **threads})
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    elif name == "limit":
        proc, _ = start([*wrap, LIMIT, f"127.0.0.1:{port}", brokers, topic], env={"LINGER_MS": LINGER, **threads})
        wait_port(port, proc)
    else:
        proc, _ = start([PYTHON, ROOT / "bench" / "baseline_webhook.py", port, brokers, topic],
                        env={"BENCH_SECRET": SECRET, "LINGER_MS": LINGER})
        wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}/webhooks/stripe"


def bench_ingress(brokers, quick, results):
    """Saturation, then latency at half of it. Switchyard and the limit program take turns
    (three times, unless --quick), each turn right after the other's: this machine's speed
    drifts over minutes, so the ratio is taken turn by turn (Switchyard's turn against the
    limit program's next to it) and its median is the figure; the best run of each is kept
    too. The latency runs (at half of each one's best run) alternate the same way, and their
    median p99 is the figure."""
    duration = 5 if quick else 10
    rounds = 1 if quick else 3
    for name in ["switchyard", "limit"] * rounds + ["python"]:
        runs, rss_max, rss_peak = [], 0, 0
        for workers in WORKERS if name != "python" else ["cores"]:
            proc, url = ingress_system(name, brokers, workers=workers)
            try:
                sampler = RssSampler(proc.pid)
                for c in CONNECTIONS:
                    got = load(url, f"{name}_sat{c}_{secrets.token_hex(2)}", duration, connections=c, server=proc.pid)
                    runs.append(dict(got, workers=workers))
                rss_max = max([rss_max] + [s[1] for s in sampler.finish()])
                rss_peak = max(rss_peak, rss_mib(proc.pid)[1])
            finally:
                stop(proc)
        best = max(runs, key=lambda r: r["ok_per_sec"])
        key = f"ingress.{name}.saturation"
        earlier = results.get(key)
        seen = (earlier or {}).get("runs", []) + [r["ok_per_sec"] for r in runs]
        if earlier is None or best["ok_per_sec"] > earlier["ok_per_sec"]:
            entry = dict(best, by_run={f"{r['connections']} connections, workers: {r['workers']}": r["ok_per_sec"]
                                       for r in runs})
        else:
            entry = earlier
        entry["runs"] = seen
        entry["turns"] = (earlier or {}).get("turns", []) + [best["ok_per_sec"]]
        entry["cpu_us_per_ok"] = (earlier or {}).get("cpu_us_per_ok", []) + [
            (r["server_cpu_us_per_ok"], r["loadgen_cpu_us_per_ok"]) for r in runs if "server_cpu_us_per_ok" in r]
        entry["rss_max_mib"] = max(rss_max, (earlier or {}).get("rss_max_mib", 0))
        entry["rss_peak_mib"] = max(rss_peak, (earlier or {}).get("rss_peak_mib", 0))
        results[key] = entry
        report(f"ingress {name}: saturation (this turn's best)", best)
    sw_turns = results["ingress.switchyard.saturation"]["turns"]
    lim_turns = results["ingress.limit.saturation"]["turns"]
    ratios = [s / l for s, l in zip(sw_turns, lim_turns) if l > 0]
    results["ingress.ratio_by_turn"] = {"ratios": [round(r, 3) for r in ratios],
                                        "median": round(median(ratios), 3) if ratios else 0}
    for _ in range(rounds):
        for name in ["switchyard", "limit"]:
            # Half of this system's best run (not of its median turn: the higher rate).
            sat = results[f"ingress.{name}.saturation"]["ok_per_sec"]
            if sat <= 0:
                continue
            # With the worker threads of that run.
            workers = results[f"ingress.{name}.saturation"].get("workers", "cores")
            proc, url = ingress_system(name, brokers, workers=workers)
            try:
                rate = round(sat / 2)
                fixed = load(url, f"{name}_half_{secrets.token_hex(2)}", duration, rate=rate)
                key = f"ingress.{name}.half"
                earlier = results.get(key, {})
                fixed["p99_runs"] = earlier.get("p99_runs", []) + [fixed["p99_ms"]]
                fixed["p99_median_ms"] = median(fixed["p99_runs"])
                results[key] = fixed
                report(f"ingress {name}: fixed rate {rate}/s (half of saturation)", fixed)
            finally:
                stop(proc)


def bench_dispatch(brokers, quick, results):
    events = 5_000 if quick else 20_000
    topic = "dispatch.in"
    fill = subprocess.run([str(BENCHKIT), "fill", "--brokers", brokers, "--topic", topic, "--events", str(events),
                           "--keys", "1000"], cwd=ROOT, capture_output=True, text=True, check=True)
    print("filled:", fill.stdout.strip(), flush=True)
    for delay in [0, 10]:
        for name in ["switchyard", "python"]:
            expect = events if name == "switchyard" else (2_000 if delay == 0 else 300)
            sink, addr = start([BENCHKIT, "sink", "--delay-ms", delay, "--expect", expect], first_line=True)
            group = f"bench-{name}-{delay}-{secrets.token_hex(4)}"
            if name == "switchyard":
                proc, _ = start([SWITCHYARD, "serve", "-c", "routes.yaml", "--role", "dispatch", "--listen",
                                 f"127.0.0.1:{free_port()}"],
                                env={"KAFKA_BROKERS": brokers, "STRIPE_WEBHOOK_SECRET": SECRET,
                                     "PAYMENTS_TOPIC": topic, "PAYMENTS_DLQ_TOPIC": "dispatch.dlq",
                                     "DISPATCH_GROUP": group, "ORDER_SERVICE_URL": f"http://{addr}"})
            else:
                proc, _ = start([PYTHON, ROOT / "bench" / "baseline_consumer.py", brokers, topic, group,
                                 f"http://{addr}"])
            try:
                out, _ = sink.communicate(timeout=900)
                got = json.loads(out.strip().splitlines()[-1])
            finally:
                stop(proc)
                stop(sink)
            results[f"dispatch.{name}.{delay}ms"] = got
            report(f"dispatch {name}: sink delay {delay} ms", got)


def bench_soak(brokers, seconds, results):
    proc, url = ingress_system("switchyard", brokers)
    try:
        sat = load(url, "soak_probe", 5)
        rate = round(sat["ok_per_sec"] / 2)
        sampler = RssSampler(proc.pid, every=10)
        fixed = load(url, "soak", seconds, rate=rate, warmup=0)
        samples = sampler.finish()
        rss = [round(s[1], 1) for s in samples]
        first = rss[: max(1, len(rss) // 10)]
        fixed.update({"rss_samples_mib": rss, "rss_first_mib": max(first), "rss_last_mib": rss[-1] if rss else 0,
                      "rss_max_mib": max(rss, default=0)})
        results["soak.switchyard"] = fixed
        report(f"soak: switchyard at {rate}/s for {seconds} s", fixed)
    finally:
        stop(proc)


def report(title, d):
    print(f"== {title}", flush=True)
    print("   " + json.dumps({k: v for k, v in d.items() if k != "rss_samples_mib"}), flush=True)


def summary(results):
    print("\n== summary")
    print(f"builds: switchyard {results['build']['switchyard']}, limit {results['build']['limit']}")
    def get(key, field):
        return results.get(key, {}).get(field, 0) or 0
    sw, lim, py = (get(f"ingress.{n}.saturation", "ok_per_sec") for n in ["switchyard", "limit", "python"])
    if sw:
        print(f"ingress saturation: switchyard {sw:,.0f}/s, limit {lim:,.0f}/s, python {py:,.0f}/s")
        for n in ["switchyard", "limit"]:
            sat = results.get(f"ingress.{n}.saturation", {})
            runs = sat.get("runs", [])
            print(f"  every saturation run of {n}: " + ", ".join(f"{r:,.0f}" for r in runs)
                  + f"; the best with {sat.get('connections')} connections, workers: {sat.get('workers')}")
            cpu = results.get(f"ingress.{n}.saturation", {}).get("cpu_us_per_ok", [])
            if cpu:
                print(f"  CPU per acknowledged webhook, {n} / load generator (µs): "
                      + ", ".join(f"{s:.0f} / {g:.0f}" for s, g in cpu))
        by_turn = results.get("ingress.ratio_by_turn", {})
        if by_turn.get("ratios"):
            turns = ", ".join(f"{r:.0%}" for r in by_turn["ratios"])
            print(f"  switchyard / limit, turn by turn = {turns}: median {by_turn['median']:.0%}   (target >= 80%)")
        if lim:
            print(f"  switchyard / limit, best run of each = {sw / lim:.0%}")
        if py:
            print(f"  switchyard / python = {sw / py:.1f}x   (target >= 10x)")
        for n in ["switchyard", "limit"]:
            half = results.get(f"ingress.{n}.half", {})
            runs = ", ".join(f"{p}" for p in half.get("p99_runs", []))
            print(f"  {n} at half saturation ({half.get('target_rate')}/s): p99 of each run {runs} ms: median "
                  f"{half.get('p99_median_ms')} ms" + ("   (target p99 <= 5 ms)" if n == "switchyard" else "")
                  + f"; last run p50 {half.get('p50_ms')} ms, p99.9 {half.get('p999_ms')} ms")
        print(f"  resident memory at saturation: max {get('ingress.switchyard.saturation', 'rss_max_mib'):.1f} MiB"
              f"   (target <= 64 MiB)")
    for delay in [0, 10]:
        s, p = (get(f"dispatch.{n}.{delay}ms", "calls_per_sec") for n in ["switchyard", "python"])
        if s:
            ratio = f"{s / p:.1f}x" if p else "n/a"
            print(f"dispatch, sink {delay} ms: switchyard {s:,.0f}/s, python {p:,.0f}/s = {ratio}   (target >= 10x); "
                  f"out of order: {get(f'dispatch.switchyard.{delay}ms', 'out_of_order')}")
    sw, lim = (get(f"instructions.{n}", "per_webhook") for n in ["switchyard", "limit"])
    if sw and lim:
        print(f"instructions per webhook (callgrind, user space, SHA-256 in software): switchyard {sw:,}, "
              f"limit {lim:,}")
    soak = results.get("soak.switchyard")
    if soak:
        print(f"soak {soak['seconds']:.0f} s at {soak['target_rate']}/s: RSS first {soak['rss_first_mib']} MiB, "
              f"max {soak['rss_max_mib']} MiB, last {soak['rss_last_mib']} MiB; p99 {soak['p99_ms']} ms, "
              f"non-200: {soak['other']}")


def bench_instructions(brokers, results):
    """Instructions per acknowledged webhook of Switchyard and the limit program, counted by
    callgrind: a figure that does not move with the machine's speed. Each runs under valgrind
    twice, for the same time at two fixed rates; the difference in instructions over the
    difference in webhooks is the cost of one (start-up, shutdown and idle work cancel out).
    User space only (the kernel's TCP is not counted), and valgrind hides SHA-NI, so SHA-256
    runs in software here."""
    if not shutil.which("valgrind"):
        raise SystemExit("--only instructions needs valgrind (apt-get install valgrind)")
    seconds, rates = 8, (100, 400)
    for name in ["switchyard", "limit"]:
        runs = []
        for rate in rates:
            with tempfile.TemporaryDirectory() as tmp:
                out = pathlib.Path(tmp) / "callgrind.out"
                proc, url = ingress_system(name, brokers, wrap=["valgrind", "-q", "--tool=callgrind",
                                                                f"--callgrind-out-file={out}"])
                try:
                    done = load(url, f"instr-{name}-{rate}", seconds, connections=8, rate=rate, warmup=0)
                finally:
                    stop(proc, grace=60)
                text = out.read_text()
                runs.append((done["ok"], sum(int(n) for n in re.findall(r"^summary: (\d+)", text, re.M))))
        (ok_low, low), (ok_high, high) = runs
        per = round((high - low) / (ok_high - ok_low))
        results[f"instructions.{name}"] = {"per_webhook": per, "runs": runs, "rates": rates, "seconds": seconds}
        report(f"instructions {name}", results[f"instructions.{name}"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the script)")
    ap.add_argument("--soak", type=int, default=300, help="seconds of the memory soak (0: none)")
    ap.add_argument("--only", default="ingress,dispatch,soak",
                    help="comma-separated parts; 'instructions' (needs valgrind) runs only when named")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    only = set(args.only.split(","))
    topics = [f"ingress.{n}:{PARTITIONS}" for n in ["switchyard", "limit", "python"]]
    topics += [f"dispatch.in:{PARTITIONS}", "dispatch.dlq:1"]
    cmd = [BENCHKIT, "broker"] + [a for t in topics for a in ("--topic", t)]
    broker, brokers = start(cmd, first_line=True)
    print(f"broker: {brokers}; machine: {os.cpu_count()} cores; builds: {BUILD} ({SWITCHYARD}, {LIMIT})",
          flush=True)
    results = {"build": {"switchyard": BUILD, "limit": BUILD}}
    try:
        if "ingress" in only:
            bench_ingress(brokers, args.quick, results)
        if "dispatch" in only:
            bench_dispatch(brokers, args.quick, results)
        if "soak" in only and args.soak > 0:
            bench_soak(brokers, args.soak, results)
        if "instructions" in only:
            bench_instructions(brokers, results)
    finally:
        stop(broker)
    summary(results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
