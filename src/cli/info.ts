/** growlm info: version, compiled backends, usable devices, CPU code path and threads. */
import { parseArgs } from "node:util";

import { runtimeInfo } from "../runtime.js";
import type { Command } from "./command.js";

export const info: Command = {
  name: "info",
  summary: "print the version, compiled backends, usable CUDA devices, CPU code path and thread count",
  usage: "growlm info [--json]",
  run(argv) {
    const { values } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } } });
    const r = runtimeInfo();
    if (values.json) {
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    const features = Object.entries(r.cpuFeatures)
      .filter(([, on]) => on)
      .map(([name]) => name);
    console.log(`growlm ${r.version} (node ${r.node}, ${r.platform})`);
    console.log(`backends:     ${r.backends.join(", ")}`);
    console.log(`cpu path:     ${r.isa}${r.bf16Dot ? " + avx512bf16 dot products" : ""} (best ${r.bestIsa}; available ${r.availableIsas.join(", ")})`);
    console.log(`cpu features: ${features.join(" ") || "none beyond the baseline"}`);
    console.log(`threads:      ${r.threads}`);
    const devices = r.cuda.devices.map((d) => `cuda:${d.index} ${d.name} (sm ${d.computeCapability}, ${(d.totalBytes / 2 ** 30).toFixed(1)} GiB)`);
    console.log(`cuda devices: ${devices.join("; ") || `none (${r.cuda.unavailableReason})`}${r.cuda.emulated ? " [emulated: GROWLM_CUDA_EMULATE=1]" : ""}`);
    for (const [name, lib] of Object.entries(r.cuda.libraries)) {
      console.log(`${`${name}:`.padEnd(14)}${lib.path ?? `not found (set GROWLM_${name.toUpperCase()}_PATH)`}`);
    }
  },
};
