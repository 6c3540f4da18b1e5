"""Judges a change to the ingress by interleaved pairs: two Switchyard builds (or one build with
two environments) take turns at saturation against one broker, each run on a fresh server, and
the CPU time per acknowledged webhook of each is printed, then the means and how often each won.
This machine's speed drifts over minutes, so only runs side by side say which is cheaper.

    python3 bench/ab.py A B [--pairs 6] [--connections 128] [--seconds 8]

A and B are a binary, optionally followed by environment settings: `target/release/switchyard`
or `/tmp/sw-old,RUST_LOG=info`. Each server logs to a file in a temporary folder, as a
container's runtime would take its stderr. Needs `cargo build --release --example benchkit`.
"""
import argparse
import os
import secrets
import subprocess
import sys
import tempfile

from run import BENCHKIT, PARTITIONS, ROOT, SECRET, free_port, load, start, stop, wait_ready


def side(text):
    """`binary[,VAR=value…]` → (binary, environment)."""
    binary, *settings = text.split(",")
    env = dict(s.split("=", 1) for s in settings)
    return binary, env


def run_once(label, binary, env, brokers, logs, args):
    port = free_port()
    full_env = {**os.environ, "RUST_LOG": "warn", "KAFKA_BROKERS": brokers, "STRIPE_WEBHOOK_SECRET": SECRET,
                "PAYMENTS_TOPIC": "ab", **env}
    with open(os.path.join(logs, f"{label}.log"), "w") as log:
        proc = subprocess.Popen([binary, "serve", "-c", "routes.yaml", "--role", "ingress", "--listen",
                                 f"127.0.0.1:{port}"], env=full_env, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        out = load(f"http://127.0.0.1:{port}/webhooks/stripe", f"ab_{label}_{secrets.token_hex(3)}",
                   args.seconds, connections=args.connections, server=proc.pid)
    finally:
        stop(proc)
    print(f"{label}  {out['ok_per_sec']:>8.0f}/s  p99 {out['p99_ms']:6.2f} ms  "
          f"{out.get('server_cpu_us_per_ok', float('nan')):6.1f} µs per webhook", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--connections", type=int, default=128)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    if not BENCHKIT.exists():
        sys.exit("build the load generator first: cargo build --release --example benchkit")
    sides = {"A": side(args.a), "B": side(args.b)}
    broker, brokers = start([BENCHKIT, "broker", "--topic", f"ab:{PARTITIONS}"], first_line=True)
    runs = {"A": [], "B": []}
    try:
        with tempfile.TemporaryDirectory() as logs:
            for i in range(args.pairs):
                # Alternate which side goes first, so neither always follows the other.
                for label in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    binary, env = sides[label]
                    runs[label].append(run_once(label, binary, env, brokers, logs, args))
    finally:
        stop(broker)
    cpu = {k: [r["server_cpu_us_per_ok"] for r in v] for k, v in runs.items()}
    rate = {k: [r["ok_per_sec"] for r in v] for k, v in runs.items()}
    wins = sum(a < b for a, b in zip(cpu["A"], cpu["B"]))
    for k in ("A", "B"):
        print(f"{k}: {args.a if k == 'A' else args.b}: mean {sum(cpu[k]) / len(cpu[k]):.1f} µs per webhook, "
              f"{sum(rate[k]) / len(rate[k]):.0f}/s")
    print(f"less CPU per webhook: A in {wins} of {args.pairs} pairs, B in {args.pairs - wins}")


if __name__ == "__main__":
    main()
