/**
 * The error growlm throws for bad input above the kernel layer: the message starts with the
 * operation (`loadModel: ...`) and names the file, tensor or field at fault.
 */
export class GrowlmError extends Error {
  constructor(
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${message}`, options);
    this.name = "GrowlmError";
  }
}
