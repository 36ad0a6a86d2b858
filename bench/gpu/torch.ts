/**
 * PyTorch baselines on the same GPU: a client of tools/torch_gpu_bench.py, which runs as one
 * child process for a whole suite (starting Python and CUDA per measurement would cost seconds
 * each) and answers one JSON line per request. Requests are sequential: while PyTorch times a
 * case, this process waits, so the two never share the GPU during a measurement.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "tools", "torch_gpu_bench.py");

/** What the server says about its PyTorch and GPU. */
export interface TorchInfo {
  torch: string;
  cuda: boolean;
  /** Why CUDA is unusable ("" when it is). */
  reason: string;
  device: string;
  capability: string;
}

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  traceback?: string;
  [key: string]: unknown;
}

/**
 * The first Python that imports torch: GROWLM_TORCH_PYTHON when set, else python3 on PATH (the
 * GPU machine's PyTorch), else Debian's /usr/bin/python3. Null when none does.
 */
export function findTorchPython(): string | null {
  const candidates = process.env.GROWLM_TORCH_PYTHON ? [process.env.GROWLM_TORCH_PYTHON] : ["python3", "/usr/bin/python3"];
  return candidates.find((python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore", timeout: 60_000 }).status === 0) ?? null;
}

export class TorchServer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  #next = 0;
  #exited: string | null = null;
  #stderr = "";

  private constructor(python: string) {
    this.#child = spawn(python, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    this.#child.stderr.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: this.#child.stdout }).on("line", (line) => {
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        this.#stderr += `\n(stdout) ${line}`;
        return;
      }
      this.#pending.get(reply.id)?.(reply);
      this.#pending.delete(reply.id);
    });
    this.#child.on("exit", (code, signal) => {
      this.#exited = `${SCRIPT} exited (${signal ?? `status ${code}`}): ${this.#stderr.trim().slice(-1500)}`;
      for (const resolve of this.#pending.values()) resolve({ id: -1, ok: false, error: this.#exited });
      this.#pending.clear();
    });
  }

  /** Starts the server with `python` and asks what it has. */
  static async start(python: string): Promise<{ server: TorchServer; info: TorchInfo }> {
    const server = new TorchServer(python);
    const info = (await server.request({ op: "info" })) as unknown as TorchInfo;
    return { server, info };
  }

  /** Sends one request; resolves with the reply's fields, rejects with its error. */
  async request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exited !== null) throw new Error(this.#exited);
    const id = this.#next++;
    const reply = await new Promise<Reply>((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin.write(JSON.stringify({ ...body, id }) + "\n");
    });
    if (!reply.ok) throw new Error(`PyTorch ${String(body.op)} ${String(body.case ?? "")}: ${reply.error ?? "failed"}\n${reply.traceback ?? ""}`);
    return reply;
  }

  /** Frees a case's GPU memory; nothing when the server has exited (the case reported that already). */
  async release(id: string): Promise<void> {
    if (this.#exited === null) await this.request({ op: "free", case: id });
  }

  close(): void {
    this.#child.stdin.end();
  }
}
