/**
 * Data-parallel training the way PyTorch's DistributedDataParallel does it, over a model's flat
 * gradient buffer: every rank holds the same parameters, computes the gradient of its shard of
 * the global batch, and the gradients are summed across ranks in buckets before the optimizer
 * step, so every rank takes the same step.
 *
 * Token weighting: the trainer weights every counted token by 1 / (tokens counted in the whole
 * global batch: all ranks, all micro-batches), so the sum of the ranks' gradients is the
 * gradient of the global batch, and N ranks with 1/N of the batch each end where one process
 * with the whole batch ends (up to the order of float32 additions).
 *
 * Buckets (DDP's reducer): the parameters are grouped in reverse storage order, which is the
 * order the backward finishes them (head and final norm, the last layer, ..., the first layer,
 * the embedding), into buckets of about bucketCapMb MiB, the first one capped at 1 MiB so
 * communication starts early. During the last micro-batch's backward the model reports each
 * group of parameters whose gradients are final (LlamaModel's onGradientsFinal); a bucket
 * whose parameters are all final starts its all-reduce at once, buckets always in index order
 * so every rank starts the same collectives in the same order. Parameters the model does not
 * report are covered when the backward ends, and so are a FiLM-Ensemble's γ and β
 * (src/probabilistic/film.ts), a second flat buffer reduced whole.
 *
 * A model on a GPU (LlamaModel on "cuda:N") needs a communicator with device collectives (the
 * "nccl" backend): its buckets are views of the device gradient buffer, all-reduced in place
 * on the communicator's own stream after the backward kernels that finished them, so the
 * reduction of the last layers overlaps the backward of the earlier ones on the GPU.
 *
 * What overlaps with the TCP communicator: a bucket's transfer, its rank-ordered sum and its
 * all-gather run on the communicator's thread while the backward computes the layers before it.
 * What does not: copying each bucket into shared memory as it starts and back once the backward
 * is done, the last bucket (the first layers and the embedding, final only when the backward
 * ends), the micro-batches before the last (they accumulate locally, DDP's no_sync), and the
 * small all-reduces of the token count before the step and of the loss after it. On a CPU that
 * runs compute threads on every core, the thread competes with them: the overlap hides waiting
 * and transfer, not compute.
 */
import { GrowlmError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";
import type { DeviceBuffer } from "../device.js";
import { type CommWork, type Communicator, type DeviceCollectives, hasDeviceCollectives } from "./comm.js";

/** DDP's default bucket_cap_mb. */
export const DEFAULT_BUCKET_CAP_MB = 25;
/** DDP's first bucket (1 MiB): small, so the first all-reduce starts as soon as the head's gradients are final. */
const FIRST_BUCKET_BYTES = 1024 * 1024;

/** A communicator and how to use it for training, as train loops receive it. */
export interface DistributedTraining {
  communicator: Communicator;
  /** Hugging Face's ddp_bucket_cap_mb (default 25 MiB). */
  bucketCapMb?: number;
}

/** A contiguous range of the flat gradient buffer reduced by one all-reduce. */
export interface GradientBucket {
  /** [begin, end) in elements of the flat buffer (alignment padding included). */
  begin: number;
  end: number;
  /** The parameters in it, by Hugging Face name. */
  names: readonly string[];
}

/**
 * Groups the parameters of `model` into buckets in reverse storage order (see the module
 * comment); a parameter larger than the cap gets a bucket of its own.
 * @param bucketCapMb MiB of float32 gradients per bucket
 */
export function gradientBuckets(model: LlamaModel, bucketCapMb = DEFAULT_BUCKET_CAP_MB): GradientBucket[] {
  if (!(bucketCapMb > 0) || !Number.isFinite(bucketCapMb)) {
    throw new GrowlmError("gradientBuckets", `ddp_bucket_cap_mb must be a positive number but is ${bucketCapMb}`);
  }
  const capBytes = bucketCapMb * 1024 * 1024;
  const entries = model.layout.entries;
  const buckets: GradientBucket[] = [];
  let end = model.layout.numel;
  let begin = end;
  let names: string[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    const cap = buckets.length === 0 ? Math.min(FIRST_BUCKET_BYTES, capBytes) : capBytes;
    if (names.length > 0 && (end - e.offset) * 4 > cap) {
      buckets.push({ begin, end, names });
      end = begin;
      names = [];
    }
    begin = e.offset;
    names.push(e.name);
  }
  if (names.length > 0) buckets.push({ begin: 0, end, names });
  return buckets;
}

/**
 * DistributedSampler's shard of one epoch's order: the order padded to a multiple of
 * `worldSize` by repeating its beginning, then every worldSize-th index from `rank`. Every rank
 * gets the same number of indices, and rank r's i-th index is the padded order's
 * (i·worldSize + r)-th: a global batch of worldSize × b consecutive indices is the union of the
 * ranks' batches of b.
 */
export function shardIndices(order: readonly number[], rank: number, worldSize: number): number[] {
  if (!Number.isSafeInteger(worldSize) || worldSize < 1 || !Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new GrowlmError("shardIndices", `rank ${rank} is not a rank of a world of ${worldSize}`);
  }
  if (order.length === 0) return [];
  const total = Math.ceil(order.length / worldSize) * worldSize;
  const shard: number[] = [];
  for (let i = rank; i < total; i += worldSize) shard.push(order[i % order.length]!);
  return shard;
}

/** Reduces a model's gradients across the ranks of a communicator, bucket by bucket (see the module comment). */
export class DataParallel {
  readonly buckets: readonly GradientBucket[];
  readonly #bucketOf = new Map<string, number>();
  /** Per bucket, parameters not yet reported final in the current backward. */
  readonly #unfinished: Int32Array;
  readonly #works: (CommWork | null)[];
  #next = 0;
  #active = false;
  /** The device collectives of a model on a GPU (null: the model's gradients are host arrays). */
  readonly #device: DeviceCollectives | null = null;

  constructor(
    readonly model: LlamaModel,
    readonly communicator: Communicator,
    bucketCapMb = DEFAULT_BUCKET_CAP_MB,
  ) {
    if (model.device !== "cpu") {
      if (!hasDeviceCollectives(communicator)) {
        throw new GrowlmError("DataParallel", `the model is on "${model.device}": its gradients are reduced on the GPU, which the "${communicator.backend}" communicator cannot do; use the "nccl" backend (--ddp_backend nccl)`);
      }
      this.#device = communicator;
    }
    this.buckets = gradientBuckets(model, bucketCapMb);
    this.buckets.forEach((b, i) => b.names.forEach((name) => this.#bucketOf.set(name, i)));
    this.#unfinished = new Int32Array(this.buckets.length);
    this.#works = this.buckets.map(() => null);
  }

  /**
   * Copies rank 0's parameters (and its FiLM-Ensemble's) to every rank, as DDP does when it
   * wraps a model, so all ranks start alike.
   */
  broadcastParameters(): void {
    if (this.#device) {
      const { params } = this.model.state;
      const film = this.model.film;
      const works = [this.#device.broadcastDevice(params as DeviceBuffer, this.model.layout.numel, "float32", 0)];
      if (film) works.push(this.#device.broadcastDevice(film.state.params as DeviceBuffer, film.numel, "float32", 0));
      for (const work of works) work.wait();
      this.model.markParamsUpdated(false);
      film?.markParamsUpdated();
      return;
    }
    const works = [this.communicator.broadcast(this.model.params.data, 0)];
    if (this.model.film) works.push(this.communicator.broadcast(this.model.film.params.data, 0));
    for (const work of works) work.wait();
    this.model.markParamsChanged();
  }

  /**
   * Starts reducing the gradients of the backward about to run: returns the callback to give
   * the model as onGradientsFinal. finishBackward() must follow.
   */
  startBackward(): (names: readonly string[]) => void {
    if (this.#active) throw new GrowlmError("DataParallel.startBackward", "the previous backward's reduction was not finished (finishBackward)");
    this.#active = true;
    this.#next = 0;
    this.buckets.forEach((b, i) => (this.#unfinished[i] = b.names.length));
    return (names) => {
      for (const name of names) {
        const i = this.#bucketOf.get(name);
        if (i === undefined) throw new GrowlmError("DataParallel", `the model reported gradients of "${name}", which is not one of its parameters`);
        if (--this.#unfinished[i]! < 0) throw new GrowlmError("DataParallel", `the model reported the gradients of "${name}" final twice in one backward`);
      }
      while (this.#next < this.buckets.length && this.#unfinished[this.#next] === 0) this.#launch(this.#next++);
    };
  }

  /**
   * Starts the buckets not started yet, and the FiLM-Ensemble's gradients (one more
   * all-reduce: the model does not report them, they are final only when the backward ends),
   * waits for all, and leaves the summed gradients in model.grads (and model.film.grads).
   */
  finishBackward(): void {
    if (!this.#active) throw new GrowlmError("DataParallel.finishBackward", "no backward is being reduced (startBackward)");
    while (this.#next < this.buckets.length) this.#launch(this.#next++);
    this.#active = false;
    const works = this.#works.splice(0, this.#works.length, ...this.buckets.map(() => null));
    const film = this.model.film;
    if (film && this.#device) works.push(this.#device.allReduceDevice(film.state.grads as DeviceBuffer, film.numel, "float32", "sum"));
    else if (film) works.push(this.communicator.allReduce(film.grads.data, "sum"));
    // Wait for every collective even after a failure, so none is left in flight; report the first failure.
    let failure: unknown = null;
    for (const work of works) {
      try {
        work!.wait();
      } catch (err) {
        failure ??= err;
      }
    }
    film?.markGradsChanged();
    if (failure !== null) throw failure;
  }

  #launch(i: number): void {
    const b = this.buckets[i]!;
    if (this.#device) {
      // On a GPU: the bucket's range of the device gradient buffer, reduced where it lies.
      const { backend, grads } = this.model.state;
      const view = backend.view(grads, b.begin, b.end - b.begin, "f32") as DeviceBuffer;
      this.#works[i] = this.#device.allReduceDevice(view, b.end - b.begin, "float32", "sum");
      return;
    }
    this.#works[i] = this.communicator.allReduce(this.model.grads.data.subarray(b.begin, b.end), "sum");
  }
}
