#!/usr/bin/python3
"""Latency of POST /v1/executions at a paced rate, over one keep-alive connection.

wrk sends the next request the moment the last one ends, which measures a saturated service. An
agent calls a tool and then thinks: this sends N requests at a fixed rate and reports the latency
percentiles, which is what a warm pool is for.

usage: paced_latency.py PORT LANGUAGE CODE [--rate PER_SECOND] [--count N]
"""
import argparse
import http.client
import json
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("language")
parser.add_argument("code")
parser.add_argument("--rate", type=float, default=10.0)
parser.add_argument("--count", type=int, default=100)
args = parser.parse_args()

connection = http.client.HTTPConnection("127.0.0.1", args.port)
body = json.dumps({"language": args.language, "code": args.code})
latencies, failures = [], 0
for _ in range(args.count):
    started = time.perf_counter()
    connection.request("POST", "/v1/executions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    result = json.loads(response.read())
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200 or result.get("status") != "ok":
        failures += 1
    latencies.append(elapsed)
    time.sleep(max(0.0, 1.0 / args.rate - elapsed / 1000))
latencies.sort()
pick = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
print(f"{args.count} requests at {args.rate:g}/s: p50 {pick(0.5):.1f} ms, p90 {pick(0.9):.1f} ms, "
      f"p99 {pick(0.99):.1f} ms, failures {failures}")
