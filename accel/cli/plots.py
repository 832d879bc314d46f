"""The plots the commands write: each function draws one figure into a binary stream as PNG (the commands
write it through :func:`accel.synth.workspace.write_atomic`)."""

__all__ = ["pyplot", "plot_energy_by_unit", "plot_sweep", "plot_formats", "plot_winograd_accuracy", "plot_pareto"]


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported here: it is slow, and only plots need it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_energy_by_unit(styles, stream, title):
    """Stacked bars: energy of each unit class per gating style, with useful MACs in the labels."""
    plt = pyplot()
    units = list(dict.fromkeys(u for s in styles.values() for u in s["energy_pj"]["by_unit"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bottoms = [0.0] * len(styles)
    for unit in units:
        heights = [s["energy_pj"]["by_unit"].get(unit, 0.0) for s in styles.values()]
        ax.bar(list(styles), heights, bottom=bottoms, label=unit)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for x, style in enumerate(styles.values()):
        ax.annotate(f"{style['macs_useful']}/{style['macs']} useful MACs\n{style['macs_gated']} skipped",
                    (x, bottoms[x]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("energy per run (pJ)")
    ax.set_xlabel("zero gating style")
    ax.set_ylim(0, max(bottoms) * 1.2)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=110)
    plt.close(fig)


def plot_sweep(sweep, stream):
    """Plot multiplier and array energy per instruction against density, with the ideal line."""
    plt = pyplot()
    points = sorted(sweep["points"], key=lambda p: p["useful"])
    x = [p["useful"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dense = max(points, key=lambda p: p["useful"])
    for ax, key, title in ((axes[0], "mul_pj", "64 multipliers"), (axes[1], "array_pj", "whole 4x4x4 array")):
        for gating, style in (("none", "o-"), ("and", "s--"), ("hold", "^-")):
            ax.plot(x, [p["gating"][gating][key] for p in points], style, label=f"gating {gating}")
        top = dense["gating"]["none"][key] / dense["useful"]
        ax.plot(x, [top * u for u in x], "k:", label="ideal (∝ useful multiplies)")
        ax.plot(x, [p["gating"]["hold"]["flags_pj"] + p["zdet_pj"] for p in points], "x-.",
                label="flag wires + zero detectors (hold)")
        ax.set_xlabel("useful multiplies (weight x activation density)")
        ax.set_ylabel("pJ per HMMA instruction")
        ax.set_title(title)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"HMMA energy vs density ({sweep['instructions']} random instructions per point, seed {sweep['seed']})")
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=110)
    plt.close(fig)


def plot_formats(rows, width, stream):
    """Bits per weight and decompressor tiles per clock of each sparse format against weight density."""
    plt = pyplot()
    fig, (size, rate) = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["format"] for r in rows):
        mine = [r for r in rows if r["format"] == name]
        x = [100 * r["density"] for r in mine]
        size.plot(x, [r["bits_per_weight"] for r in mine], "o-", label=name)
        rate.plot(x, [r["tiles_per_cycle"] for r in mine], "o-", label=name)
    size.axhline(16, color="grey", ls="--", label="dense FP16")
    size.set(xlabel="weight density (%)", ylabel="bits per weight", title="compressed size")
    rate.set(xlabel="weight density (%)", ylabel="tiles per clock", title=f"decompressor, {width}-bit input",
             ylim=(0, 1.05))
    size.legend()
    rate.legend()
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=100)
    plt.close(fig)


def plot_winograd_accuracy(accuracy, stream):
    """Relative RMS error against float64 of every algorithm, point set and precision, per kind of data."""
    plt = pyplot()
    kinds = list(accuracy)
    labels = list(accuracy[kinds[0]])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(kinds)
    for index, kind in enumerate(kinds):
        ax.bar([x + index * width for x in range(len(labels))], [accuracy[kind][label]["rel_rms"] for label in labels],
               width, label=f"{kind} data")
    ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(labels))])
    ax.set_xticklabels([label.replace("/", "\n") for label in labels], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("RMS error / RMS of the float64 result")
    ax.set_title("Convolution error against a float64 direct convolution (FP16 operands, FP32 accumulation)",
                 fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=110)
    plt.close(fig)


def plot_pareto(networks, stream):
    """Energy against cycles of every configuration of a design-space sweep, one panel per network, the
    Pareto front joined and labelled, the best (lowest-energy bit-exact) configuration circled."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(networks), figsize=(6.5 * len(networks), 4.8), squeeze=False)
    for ax, (network, summary) in zip(axes[0], networks.items()):
        configs = {c["config"]: c for c in summary["configs"]}
        exact = [c for c in configs.values() if c["bit_exact"]]
        wrong = [c for c in configs.values() if not c["bit_exact"]]
        ax.plot([c["cycles"] for c in exact], [c["energy_pj"] for c in exact], "o", color="tab:blue",
                alpha=0.6, label="configuration (bit-exact)")
        if wrong:
            ax.plot([c["cycles"] for c in wrong], [c["energy_pj"] for c in wrong], "x", color="tab:red",
                    label="configuration (NOT bit-exact)")
        front = [configs[label] for label in summary["pareto"]]
        ax.plot([c["cycles"] for c in front], [c["energy_pj"] for c in front], "-", color="tab:orange",
                label="Pareto front")
        for config in front:
            ax.annotate(config["config"], (config["cycles"], config["energy_pj"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        if len(configs) <= 12:      # few enough to label every one
            for config in configs.values():
                if config not in front:
                    ax.annotate(config["config"], (config["cycles"], config["energy_pj"]), fontsize=6,
                                color="grey", xytext=(4, -8), textcoords="offset points")
        if summary["best"]:
            best = configs[summary["best"]]
            ax.plot([best["cycles"]], [best["energy_pj"]], "o", ms=14, mfc="none", color="tab:green",
                    label="best: lowest energy, bit-exact")
        ax.margins(x=0.1, y=0.1)
        ax.set_xlim(right=ax.get_xlim()[1] + 0.35 * (ax.get_xlim()[1] - ax.get_xlim()[0]))   # room for labels
        ax.set_xlabel("cycles (sum over the network's layers)")
        ax.set_ylabel("energy (pJ, sum over the network's layers)")
        ax.set_title(f"{network}: {len(configs)} configurations", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("accel sweep: energy vs cycles\nlabels: algo/format/gating/w weight density/a activation "
                 "density/array/s seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=110)
    plt.close(fig)
