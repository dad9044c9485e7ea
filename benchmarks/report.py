"""results.json -> a markdown table: each figure's ratio, goal, and the absolute numbers."""

from __future__ import annotations

# figure -> (what the ratio means, goal: the ratio must be at least this)
GOALS = {
    "training": ("Trainer / bare loop, training images/s", 0.95),
    "inference": ("Trainer.predict / bare inference_mode loop, images/s", 0.95),
    "pipeline": ("imgclf data pipeline / torchvision ImageFolder + v2, images/s", 1.5),
    "precompute": ("head epoch on cached features / through the frozen body", 30.0),
}
MEMORY_GOAL_BYTES = 3 * 1024**3


def gb(n: float) -> str:
    return f"{n / 1024**3:.2f} GB"


def markdown_report(results: dict) -> str:
    lines = ["# imgclf benchmarks", ""]
    figures = results.get("figures", {})
    if figures:
        lines += [
            "Each ratio compares two measurements taken in turns (A, B, A, B, ...) in one run;",
            "A and B are the medians of the rounds.",
            "",
            "| figure | ratio | goal | met | A | B | round ratios |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, fig in figures.items():
            meaning, goal = GOALS[name]
            rounds = ", ".join(f"{r:.2f}" for r in fig["round_ratios"])
            lines.append(
                f"| {name}: {meaning} | **{fig['ratio']:.2f}** | >= {goal:g} "
                f"| {'yes' if fig['ratio'] >= goal else 'NO'} "
                f"| {fig['a_name']}: {fig['a']:.1f} {fig['unit']} "
                f"| {fig['b_name']}: {fig['b']:.1f} {fig['unit']} | {rounds} |"
            )
        lines.append("")
    knobs = results.get("knobs", {})
    if knobs:
        lines += [
            "**Speed knobs**: the rate with the knob set (A) / without it (B), in turns.",
            "",
            "| knob | measured on | ratio | A | B | round ratios |",
            "|---|---|---|---|---|---|",
        ]
        for name, knob in knobs.items():
            rounds = ", ".join(f"{r:.2f}" for r in knob["round_ratios"])
            note = (
                f" (compiling: {knob['compile_seconds']:.0f} s once)"
                if "compile_seconds" in knob
                else ""
            )
            lines.append(
                f"| {name}{note} | {knob['what']} | **{knob['ratio']:.2f}** "
                f"| {knob['a']:.1f} {knob['unit']} | {knob['b']:.1f} {knob['unit']} "
                f"| {rounds} |"
            )
        if "pin_memory" not in knobs:
            lines.append("| pin_memory | no GPU here: not measured | | | | |")
        lines.append("")
    runs = results.get("runs", {})
    if "recipe" in runs:
        r = runs["recipe"]
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in r["stage_seconds"].items())
        lines += [
            f"**Demo recipe** (`{r['command']}`): {r['wall_seconds']:.0f} s wall "
            f"({stages}), best valid accuracy {r['best_valid_acc']:.4f}, "
            f"valid log-loss {r['valid_logloss']:.3f}, peak RSS {gb(r['peak_rss_tree_bytes'])}.",
            "",
        ]
    if "memory" in runs:
        m = runs["memory"]
        met = "yes" if m["peak_pss_tree_bytes"] < MEMORY_GOAL_BYTES else "NO"
        lines += [
            f"**Memory** ({m['command']}, {m['images']} images at {m['image_size']} px, "
            f"{m['epochs']} epochs): peak footprint of the run and its workers (PSS sum) "
            f"{gb(m['peak_pss_tree_bytes'])} (goal < 3 GB: {met}); RSS sum, shared pages "
            f"counted in every process, {gb(m['peak_rss_tree_bytes'])}; feature cache on disk "
            f"{m['feature_cache_bytes'] / 1024**2:.0f} MB (memory-mapped); "
            f"{m['wall_seconds']:.0f} s.",
            "",
        ]
    if "predict" in runs:
        from benchmarks.predict_latency import markdown_lines

        lines += markdown_lines(runs["predict"])
    machine = results.get("machine", {})
    if machine:
        lines += [
            f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
            f"({machine['torch_threads']} threads), torchvision {machine['torchvision']}, "
            f"lightning {machine['lightning']}, Pillow {machine['pillow']}, "
            f"load average at start {machine['load_average']}. "
            f"Total {results.get('total_seconds', 0):.0f} s.",
            "",
            "Settings: "
            + ", ".join(f"{k}={v}" for k, v in results.get("settings", {}).items() if k != "items"),
            "",
        ]
    return "\n".join(lines)
