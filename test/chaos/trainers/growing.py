#!/usr/bin/env python3
"""The fast stand-in trainer (test/fixtures/trainers/fast.py) whose memory grows with its batch, for
the chaos suite's ``trainer-oom`` fault: at four fifths of its run it allocates, and touches,
``batch_size × alloc_kb_per_batch`` KiB, as a real trainer's activations follow its batch. Put in a
memory cgroup smaller than that, it is killed by the kernel's OOM killer.

    python growing.py --config CONFIG_JSON_PATH --metrics METRICS_JSON_PATH
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "trainers"))

import fast  # noqa: E402

# What the run holds until it ends, as a trainer holds its activations.
HELD: list = []


def grow(config: dict) -> None:
    time.sleep(0.8 * float(config.get("seconds", 0.5)))
    kib = int(config.get("batch_size", 256)) * int(config.get("alloc_kb_per_batch", 0))
    # Written, not just reserved: untouched pages would cost the cgroup nothing.
    HELD.append(b"\x01" * (kib * 1024))


if __name__ == "__main__":
    config_path = sys.argv[sys.argv.index("--config") + 1]
    with open(config_path) as f:
        threading.Thread(target=grow, args=(json.load(f),), daemon=True).start()
    sys.exit(fast.main())
