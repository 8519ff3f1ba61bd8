"""A stand-in trainer for the orchestration benchmarks: it speaks rea's trainer protocol
(docs/trainers.md) and returns in milliseconds, so that what is measured is rea, not training.

    python bench/fast_trainer.py --config CONFIG_JSON --metrics METRICS_JSON

Every config key is accepted. The metric `ne` is a smooth function of the knobs plus a small
seed-dependent noise, so that a campaign has something to screen, validate and combine.
"""
import argparse
import json
import math
import os
import random
import time

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--metrics", required=True)
args = parser.parse_args()
with open(args.config) as f:
    config = json.load(f)

# A stand-in for a long training job (the hand-over benchmark): sleep, then answer.
time.sleep(float(config.get("sleep_sec", 0)))
steps = int(config.get("steps", 1))
lr = float(config.get("lr", 0.01))
ne = 0.9 + 0.02 * (math.log10(lr) + 1.5) ** 2 + 0.01 * abs(float(config.get("dropout", 0.0)) - 0.2)
ne += 0.01 * abs(int(config.get("width", 64)) - 128) / 128 - 0.005 * (config.get("flag") is True)
ne -= 0.002 * math.log2(max(1, steps))
ne += random.Random(int(config.get("seed", 0)) * 7919 + steps).gauss(0, 0.001)
print("rea:progress " + json.dumps({"step": steps, "steps": steps, "loss": ne, "examples_per_s": 0}), flush=True)
with open(args.metrics + ".tmp", "w") as f:
    json.dump({"ne": ne}, f)
os.replace(args.metrics + ".tmp", args.metrics)
print("rea:metrics " + json.dumps({"ne": ne}), flush=True)
