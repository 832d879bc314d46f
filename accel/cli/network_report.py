"""What ``accel run`` leaves in its report folder besides ``results.json``: ``report.md`` (a page a person
reads in a minute) and three plots, each drawn into a binary stream as PNG."""

from .plots import pyplot

__all__ = ["best_configuration", "report_markdown", "plot_cycles_energy", "plot_energy_accuracy", "plot_idle"]

LAYER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def best_configuration(configs, baseline):
    """(name, why) of the configuration with the lowest energy per inference among those that are bit-exact
    and (a classifier) classify as golden does; (None, why not) when none is."""
    fit = {name: c for name, c in configs.items() if c["bit_exact"] and c.get("agrees_with_golden", 1.0) == 1.0}
    if not fit:
        return None, "no configuration is bit-exact with golden's classifications"
    name = min(fit, key=lambda n: fit[n]["energy_per_inference_pj"])
    best, base = fit[name], configs[baseline]
    fastest = min(fit, key=lambda n: fit[n]["cycles"])
    why = (f"lowest energy per inference among the bit-exact configurations: "
           f"{best['energy_per_inference_pj'] / 1e3:,.1f} nJ, {base['energy_per_inference_pj'] / best['energy_per_inference_pj']:.2f}x "
           f"below the {baseline} ({base['energy_per_inference_pj'] / 1e3:,.1f} nJ), in "
           f"{best['cycles_per_inference']:,.0f} cycles per inference ({base['cycles'] / best['cycles']:.2f}x the "
           f"{baseline}'s speed); the fastest is {fastest} ({fit[fastest]['cycles_per_inference']:,.0f} cycles)")
    return name, why


def _blocks(configs):
    return list(dict.fromkeys(b for c in configs.values() for b in c["energy_pj"]["by_block"]))


def report_markdown(result):
    """``report.md``: accuracy, cycles, energy by block, the best configuration and why, the multiplier
    energy per useful multiply, and what the host does."""
    configs, baseline, images = result["configurations"], result["baseline"], result["images"]
    classifier = result["kind"] == "classifier"
    runs = f"{images} test images" if classifier else "one pass (an inference below)"
    lines = [f"# accel run: {result['workload']} on the accelerator", "",
             f"{result['description']}. {runs}, backend {result['backend']}, command `{result['command']}`.", "",
             f"**Every layer bit-exact against golden: {'yes' if result['bit_exact'] else 'NO'}.**"
             + (f" The float32 model's accuracy on these images: {result['float32_accuracy']:.1%}." if classifier
                else ""), "",
             "| configuration | bit-exact | " + ("classes = golden | = float32 | accuracy | " if classifier else "")
             + "cycles / inference | ideal | energy / inference (nJ) | MACs useful |",
             "|---" * (9 if classifier else 6) + "|"]
    for name, c in configs.items():
        classes = (f"{c['agrees_with_golden']:.0%} | {c['agrees_with_float32']:.0%} | {c['accuracy']:.1%} | "
                   if classifier else "")
        lines.append(f"| {name}: {c['description']} | {'yes' if c['bit_exact'] else 'NO'} | {classes}"
                     f"{c['cycles_per_inference']:,.0f} | {c['ideal_cycles'] / images:,.0f} | "
                     f"{c['energy_per_inference_pj'] / 1e3:,.2f} | {c['macs_useful'] / max(c['macs'], 1):.1%} |")
    best = result["best"]
    lines += ["", f"**Best configuration: {best or 'none'}** — {result['best_why']}.", ""]
    lines += ["Energy per inference by block (nJ; switching of each block, register clock, each buffer's "
              "accesses):", "", "| block | " + " | ".join(configs) + " |", "|---" * (len(configs) + 1) + "|"]
    for block in _blocks(configs):
        lines.append(f"| {block} | " + " | ".join(f"{c['energy_pj']['by_block'].get(block, 0.0) / images / 1e3:,.3f}"
                                                  for c in configs.values()) + " |")
    lines += ["| *clock without clock gating (not in the totals)* | "
              + " | ".join(f"*{c['energy_pj']['clock']['ungated'] / images / 1e3:,.3f}*" for c in configs.values())
              + " |",
              "| *total with the clock ungated* | "
              + " | ".join(f"*{(c['energy_pj']['total'] - c['energy_pj']['clock']['gated'] + c['energy_pj']['clock']['ungated']) / images / 1e3:,.2f}*"
                           for c in configs.values()) + " |"]
    areas = {name: c["area"] for name, c in configs.items() if "area" in c}
    if areas:
        recorded = any(area.get("source") == "record" for area in areas.values())
        lines += ["", "Area of the accelerator that runs each configuration's conv layers (`accel synth --unit "
                  "accel`, cmos flow: logic in gate equivalents, buffers as SRAM bits; a classifier that runs on "
                  "a direct dense accelerator of its own, as in the Winograd configurations, is not counted)"
                  + (", from the workload's record of this exact hardware (`python -m accel.cli.workloads."
                     "record_areas` synthesized it; a configuration it lacks is not recorded: `accel run --area` "
                     "synthesizes it)" if recorded else "") + ":", "",
                  "| configuration | logic (GE) | flip-flops | SRAM bits |", "|---|---|---|---|"]
        lines += [f"| {name} | {areas[name]['ge']:,.1f} | {areas[name]['flip_flops']:,} | {areas[name]['sram_bits']:,} |"
                  if name in areas else f"| {name} | not recorded | | |" for name in configs]
    ratio = result["hold_per_useful_multiply"]
    lines += ["", f"Multiplier energy follows the useful multiplies: with `hold` a useful multiply costs "
              f"{ratio:.2f}x the {baseline}'s multiply (multiplier energy per useful MAC under `hold` over "
              f"multiplier energy per MAC of the {baseline}, same images); the skipped ones next to nothing.", "",
              ("How it runs: each conv layer on the accelerator (one RUN per image, the weights loaded once), "
               "the classifier as a 1x1 convolution (a GEMM with the images as columns) on the array; bias and "
               "ReLU between layers on the host, which feeds each layer golden's activations of the previous one "
               "(equal to the hardware's when that layer is bit-exact, as checked). " if classifier else
               "How it runs: each layer on the accelerator with its own seeded random data (the layers are not "
               "chained: a topology has no trained weights), all layers of a configuration in one command "
               "stream. ")
              + "Energy from the toggle counts (docs/energy.md), the register clock with RTL clock gating (a "
              "register of two or more bits takes a clock edge only when it takes a new value, its clock gate one "
              "every cycle; the ungated figure in italics above); area: "
              + ("above, " if areas else "`accel run --area` or ")
              + "`accel synth --unit accel` (docs/area.md).", "",
              "Plots: `cycles_energy.png` (cycles per inference by layer, energy per inference by block), "
              + ("`energy_accuracy.png`, " if classifier else "")
              + "`idle.png` (where the array's idle cycles went)."]
    return "\n".join(lines) + "\n"


def _save(fig, plt, stream):
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=110)
    plt.close(fig)


def plot_cycles_energy(result, stream):
    """Two panels per configuration: cycles per inference stacked by layer, energy per inference stacked by
    block."""
    plt = pyplot()
    configs, images = result["configurations"], result["images"]
    names = list(configs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    bottoms = [0.0] * len(names)
    layers = list(next(iter(configs.values()))["layers"])
    for colour, layer in zip(LAYER_COLOURS * 2, layers):
        heights = [configs[n]["layers"][layer]["cycles"] / images for n in names]
        left.bar(names, heights, bottom=bottoms, label=layer, color=colour)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    left.set_ylabel("cycles per inference")
    left.set_title("cycles by layer", fontsize=10)
    left.legend(fontsize=8)
    bottoms = [0.0] * len(names)
    for index, block in enumerate(_blocks(configs)):
        heights = [configs[n]["energy_pj"]["by_block"].get(block, 0.0) / images / 1e3 for n in names]
        right.bar(names, heights, bottom=bottoms, label=block, color=plt.cm.tab20(index % 20))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    right.set_ylabel("energy per inference (nJ)")
    right.set_title("energy by block", fontsize=10)
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    runs = f"{images} images" if result["kind"] == "classifier" else "one pass"
    fig.suptitle(f"{result['workload']}: {runs} on the accelerator ({result['backend']})", fontsize=10)
    _save(fig, plt, stream)


def plot_energy_accuracy(result, stream):
    """Energy per inference against classification accuracy, one labelled point per configuration."""
    plt = pyplot()
    configs = result["configurations"]
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    for name, c in configs.items():
        marker = "o" if c["bit_exact"] else "x"
        ax.plot(c["energy_per_inference_pj"] / 1e3, 100 * c["accuracy"], marker, ms=8)
        ax.annotate(name, (c["energy_per_inference_pj"] / 1e3, 100 * c["accuracy"]), fontsize=8,
                    xytext=(5, 4), textcoords="offset points")
    ax.axhline(100 * result["float32_accuracy"], color="grey", ls="--", lw=1, label="float32 model")
    ax.set_xlabel("energy per inference (nJ)")
    ax.set_ylabel(f"accuracy on {result['images']} images (%)")
    ax.margins(x=0.25, y=0.3)
    ax.legend(fontsize=8)
    ax.set_title("energy against accuracy", fontsize=10)
    _save(fig, plt, stream)


def plot_idle(result, stream):
    """The array's idle cycles per inference, stacked by cause, per configuration."""
    plt = pyplot()
    configs, images = result["configurations"], result["images"]
    names = list(configs)
    causes = list(dict.fromkeys(k for c in configs.values() for k in c["idle"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    bottoms = [0.0] * len(names)
    for cause in causes:
        heights = [configs[n]["idle"].get(cause, 0) / images for n in names]
        ax.bar(names, heights, bottom=bottoms, label=cause.removeprefix("idle_"))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_ylabel("idle cycles of the array per inference")
    ax.set_title("where the array's idle cycles went", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, plt, stream)
