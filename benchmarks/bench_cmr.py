"""Contextual memory reweaving: does it help, what does it cost, what does monitoring cost.

1. Quality. Key-value recall across segments (``allele.cmr.tasks.RecallTask``): the first
   segment lists 16 key -> value pairs, the second asks 8 of the keys; the backbone sees one
   segment at a time, so the answers lie beyond its context window. The same GPT-style model
   (3 layers, d_model 64) is trained with reweaving (capture layer 0, reweave layer 1) and
   without (the plain backbone on the second segment), same steps, batch, learning rate and
   seeds; the error on fresh streams is compared per seed, with a 95 % t-interval over seeds
   of the paired difference.
2. Cost. Forward time of the CMR model (capture + retrieval + reweaving, a full memory) against
   its plain backbone (the same module, hooks idle), at 128-1024 positions (d_model 384,
   6 layers, capture layer 2, reweave layer 3, buffer 512, k 8), in interleaved pairs: median
   of the per-pair ratios.
3. Monitoring. Forward time of one model with a ``CMRPerformanceMonitor`` recording every pass
   in real time (health checked every second, metrics pushed every second to a sink) against
   the same model with the monitor detached, interleaved pairs.

Run: ``.venv/bin/python benchmarks/bench_cmr.py`` (``--quick`` for a short check).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from scipy import stats as scipy_stats

from allele.cmr import CMRPerformanceMonitor, FullCMRModel, GPTConfig
from allele.cmr.tasks import RecallTask

torch.set_num_threads(1)

TASK = RecallTask(keys=16, values=16, pairs=16, queries=8)


def train_recall(*, reweaving: bool, seed: int, steps: int, batch: int = 32) -> float:
    """Train on the recall task and return the error on 640 fresh streams."""
    torch.manual_seed(seed)
    data = torch.Generator().manual_seed(seed)
    model = FullCMRModel(
        GPTConfig(vocab_size=TASK.vocab_size, n_positions=64, d_model=64, n_layers=3, n_heads=4),
        {
            "target_layers": [0],
            "intervention_layers": [1],
            "reweaving": reweaving,
            "retrieval_k": 32,
            "buffer_size": 64,
            "memory_dim": 32,
        },
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        context, query, answers = TASK.batch(batch, data)
        model.reset_memory()
        model(context)
        loss = TASK.loss(model(query)["logits"], answers)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    held_out = torch.Generator().manual_seed(1_000_000 + seed)
    errors = []
    with torch.no_grad():
        for _ in range(10):
            context, query, answers = TASK.batch(64, held_out)
            model.reset_memory()
            model(context)
            errors.append(TASK.errors(model(query)["logits"], answers).mean().item())
    return statistics.fmean(errors)


def quality(seeds: int, steps: int) -> None:
    with_memory, without = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        with_memory.append(train_recall(reweaving=True, seed=seed, steps=steps))
        without.append(train_recall(reweaving=False, seed=seed, steps=steps))
        print(
            f"seed {seed}: error with reweaving {with_memory[-1]:.3f}, without "
            f"{without[-1]:.3f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    diffs = [b - a for a, b in zip(with_memory, without, strict=True)]
    mean = statistics.fmean(diffs)
    if len(diffs) > 1:
        half = (
            scipy_stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
        )
    else:
        half = float("nan")
    a, b = statistics.fmean(with_memory), statistics.fmean(without)
    print(
        f"RATIO cmr_recall_error with/without reweaving = {a / b:.3f} "
        f"(error {a:.3f} vs {b:.3f}, chance {1 - 1 / TASK.values:.3f}; cut by {mean:.3f} "
        f"[95% CI {mean - half:.3f}, {mean + half:.3f}] over {len(diffs)} seeds, {steps} steps)"
    )


def _pairs(first: object, second: object, repeats: int) -> list[float]:
    """Per-pair ratios second/first of interleaved timings (order alternating)."""
    ratios = []
    for i in range(repeats):
        order = (first, second) if i % 2 == 0 else (second, first)
        times = {}
        for fn in order:
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times[id(fn)] = time.perf_counter() - start
        ratios.append(times[id(second)] / times[id(first)])
    return ratios


def cost(lengths: list[int], repeats: int) -> None:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=512, n_positions=1024, d_model=384, n_layers=6, n_heads=6)
    for length in lengths:
        model = FullCMRModel(
            config,
            {
                "target_layers": [2],
                "intervention_layers": [3],
                "buffer_size": 512,
                "retrieval_k": 8,
            },
        ).eval()
        ids = torch.randint(0, 512, (1, length))
        with torch.no_grad():
            model(ids)  # a full memory from the previous segment
            model(ids)

            def plain(m: FullCMRModel = model, x: torch.Tensor = ids) -> None:
                m.backbone(x)

            def cmr(m: FullCMRModel = model, x: torch.Tensor = ids) -> None:
                m(x)

            for _ in range(2):
                plain()
                cmr()
            ratios = _pairs(plain, cmr, repeats)
        entries = len(model.buffer)
        print(
            f"RATIO cmr_forward/plain_backbone seq_len={length} = "
            f"{statistics.median(ratios):.3f} (median of {repeats} interleaved pairs; memory "
            f"{entries} entries, k=8, target <= 1.15)",
            flush=True,
        )


def monitoring(length: int, repeats: int) -> None:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=512, n_positions=1024, d_model=128, n_layers=4, n_heads=4)
    cmr_config = {"target_layers": [1], "intervention_layers": [2], "buffer_size": 256}
    model = FullCMRModel(config, cmr_config).eval()
    pushed: list[int] = []

    class CountingSink:
        def on_alert(self, alert: object) -> None:
            pass

        def on_metrics(self, samples: list[object], health: object) -> None:
            pushed.append(len(samples))

    monitor = CMRPerformanceMonitor(
        model,
        {"health_check_interval": 1.0, "enable_real_time": False},
        {"alert_channels": []},
        sinks=[CountingSink()],
    )
    ids = torch.randint(0, 512, (1, length))

    def plain() -> None:
        model(ids)

    def monitored() -> None:
        monitor.enable_real_time_monitoring()
        start = time.perf_counter()
        model(ids)
        elapsed = time.perf_counter() - start
        monitor.disable_real_time_monitoring()
        timings.append(elapsed)

    timings: list[float] = []
    ratios = []
    with torch.no_grad():
        model(ids)
        model(ids)
        for i in range(repeats):
            order = (plain, monitored) if i % 2 == 0 else (monitored, plain)
            took = {}
            for fn in order:
                start = time.perf_counter()
                fn()
                took[fn] = time.perf_counter() - start
            # The monitored pass is timed around the forward only (not the attach/detach).
            ratios.append(timings[-1] / took[plain])
    print(
        f"RATIO cmr_monitored/unmonitored seq_len={length} = {statistics.median(ratios):.4f} "
        f"(median of {repeats} interleaved pairs; {len(monitor.history)} passes recorded, "
        f"{len(monitor.health_history)} health checks, {len(pushed)} metric pushes; "
        "target <= 1.02)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, steps and pairs")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--only", choices=("quality", "cost", "monitoring"), default=None)
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else 3)
    steps = args.steps or (250 if args.quick else 400)
    repeats = 9 if args.quick else 31
    if args.only in (None, "quality"):
        quality(seeds, steps)
    if args.only in (None, "cost"):
        cost([128, 256, 512, 1024], repeats)
    if args.only in (None, "monitoring"):
        monitoring(256, repeats * 3)


if __name__ == "__main__":
    main()
