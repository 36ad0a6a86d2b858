/**
 * The rendezvous store (torch's TCPStore, reduced to what a rendezvous needs): rank 0 serves
 * a key-value map at MASTER_ADDR:MASTER_PORT, every rank connects as a client and sets keys,
 * reads keys (waiting until another rank has set them) and adds to counters. The TCP backend
 * exchanges its listening addresses through it; an NCCL backend passes ncclUniqueId from rank
 * 0 to the others the same way (a set on rank 0, a get everywhere else).
 *
 * Wire format: one JSON object per line in each direction; requests carry an id the reply
 * repeats. Clients connect with retries until their deadline, because rank 0 may start
 * serving after the others are up (several machines, or a slow start).
 */
import net from "node:net";

import { GrowlmError } from "../errors.js";

type StoreRequest =
  | { id: number; op: "set"; key: string; value: string }
  | { id: number; op: "get"; key: string }
  | { id: number; op: "add"; key: string; amount: number };

type StoreReply = { id: number; value: string } | { id: number; count: number } | { id: number; error: string };

/** Splits a byte stream into lines and hands each parsed JSON object on. */
function lineReader(onMessage: (message: unknown) => void, onBadLine: (line: string) => void): (chunk: Buffer) => void {
  let rest = "";
  return (chunk) => {
    rest += chunk.toString("utf8");
    let newline = rest.indexOf("\n");
    while (newline >= 0) {
      const line = rest.slice(0, newline);
      rest = rest.slice(newline + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        onBadLine(line);
        return;
      }
      onMessage(message);
      newline = rest.indexOf("\n");
    }
  };
}

/** Whether `host` names this machine's loopback interface only. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The server side, run by rank 0. */
export class TcpStoreServer {
  readonly #values = new Map<string, string>();
  readonly #waiting = new Map<string, ((value: string) => void)[]>();
  readonly #sockets = new Set<net.Socket>();

  private constructor(readonly server: net.Server) {
    server.on("connection", (socket) => this.#serve(socket));
  }

  /**
   * Listens on `port`: on the loopback interface when `host` is a loopback name (a job on
   * one machine), otherwise on every interface, as TCPStore does (the other machines reach
   * it at MASTER_ADDR, whichever interface that is).
   */
  static listen(host: string, port: number): Promise<TcpStoreServer> {
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        const why = err.code === "EADDRINUSE" ? "the port is in use (another job, or a previous run still exiting): choose another MASTER_PORT" : err.message;
        reject(new GrowlmError("rendezvous", `rank 0 cannot serve the rendezvous at ${host}:${port}: ${why}`, { cause: err }));
      });
      const ready = (): void => {
        server.removeAllListeners("error");
        resolve(new TcpStoreServer(server));
      };
      if (isLoopback(host)) server.listen(port, host, ready);
      else server.listen(port, ready);
    });
  }

  #serve(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const reply = (message: StoreReply): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
    };
    socket.on(
      "data",
      lineReader(
        (message) => {
          const request = message as StoreRequest;
          if (request.op === "set") {
            this.#values.set(request.key, request.value);
            for (const resolve of this.#waiting.get(request.key) ?? []) resolve(request.value);
            this.#waiting.delete(request.key);
            reply({ id: request.id, value: request.value });
          } else if (request.op === "get") {
            const value = this.#values.get(request.key);
            if (value !== undefined) reply({ id: request.id, value });
            else this.#waiting.set(request.key, [...(this.#waiting.get(request.key) ?? []), (v) => reply({ id: request.id, value: v })]);
          } else if (request.op === "add") {
            const count = Number(this.#values.get(request.key) ?? "0") + request.amount;
            this.#values.set(request.key, String(count));
            reply({ id: request.id, count });
          } else {
            reply({ id: (request as { id: number }).id, error: `unknown store operation ${JSON.stringify((request as { op: unknown }).op)}` });
          }
        },
        () => socket.destroy(),
      ),
    );
  }

  /**
   * Stops accepting clients. The connections open end when their clients close them; a
   * client may be a process whose event loop is blocked in training by then, so neither they
   * nor this server keep the process alive. With `force`, they are cut at once.
   */
  close(force = false): void {
    this.server.close();
    for (const socket of this.#sockets) {
      if (force) socket.destroy();
      else socket.unref();
    }
  }
}

/** A rank's connection to the store. */
export class TcpStoreClient {
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (reply: StoreReply) => void; reject: (err: Error) => void }>();
  #broken: Error | null = null;

  private constructor(
    readonly socket: net.Socket,
    readonly address: string,
    readonly deadline: number,
  ) {
    socket.setNoDelay(true);
    socket.on(
      "data",
      lineReader(
        (message) => {
          const reply = message as StoreReply;
          const waiter = this.#pending.get(reply.id);
          this.#pending.delete(reply.id);
          waiter?.resolve(reply);
        },
        (line) => this.#break(new GrowlmError("rendezvous", `the store at ${address} sent an unreadable line ${JSON.stringify(line.slice(0, 80))}`)),
      ),
    );
    socket.on("error", (err) => this.#break(new GrowlmError("rendezvous", `the connection to the store at ${address} failed: ${err.message}`, { cause: err })));
    socket.on("close", () => this.#break(new GrowlmError("rendezvous", `the store at ${address} closed the connection (rank 0 stopped)`)));
  }

  /**
   * Connects to the store at host:port, retrying refused connections every 100 ms until
   * `deadline` (a Date.now() time), which also bounds every later request.
   */
  static async connect(host: string, port: number, deadline: number): Promise<TcpStoreClient> {
    const address = `${host}:${port}`;
    let last = "";
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host, port });
          s.once("connect", () => {
            s.removeAllListeners("error");
            resolve(s);
          });
          s.once("error", reject);
        });
        return new TcpStoreClient(socket, address, deadline);
      } catch (err) {
        last = (err as Error).message;
        const code = (err as NodeJS.ErrnoException).code;
        const retry = code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EHOSTUNREACH" || code === "ETIMEDOUT" || code === "EAI_AGAIN";
        if (!retry) throw new GrowlmError("rendezvous", `cannot reach the rendezvous store at ${address}: ${last}`, { cause: err });
      }
      if (Date.now() + 100 > deadline) {
        throw new GrowlmError("rendezvous", `no rendezvous store answered at ${address} before the timeout (${last}): is rank 0 running, and are MASTER_ADDR and MASTER_PORT the same on every rank?`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** This end's address as the store sees it: an address of this machine that routes towards rank 0. */
  get localAddress(): string {
    const address = this.socket.localAddress ?? "127.0.0.1";
    return address.startsWith("::ffff:") && /^\d+\.\d+\.\d+\.\d+$/.test(address.slice(7)) ? address.slice(7) : address;
  }

  #break(err: Error): void {
    if (this.#broken) return;
    this.#broken = err;
    for (const waiter of this.#pending.values()) waiter.reject(err);
    this.#pending.clear();
  }

  #request(request: StoreRequest, waitingFor: string): Promise<StoreReply> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(request.id);
        reject(new GrowlmError("rendezvous", `timed out ${waitingFor} (store ${this.address})`));
      }, Math.max(0, this.deadline - Date.now()));
      this.#pending.set(request.id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if ("error" in reply) reject(new GrowlmError("rendezvous", reply.error));
          else resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  async set(key: string, value: string): Promise<void> {
    await this.#request({ id: this.#nextId++, op: "set", key, value }, `setting "${key}"`);
  }

  /**
   * The value of `key`, waiting until some rank sets it.
   * @param waitingFor what the wait means, for the timeout message ("waiting for rank 3 to join")
   */
  async get(key: string, waitingFor = `waiting for "${key}"`): Promise<string> {
    const reply = await this.#request({ id: this.#nextId++, op: "get", key }, waitingFor);
    return (reply as { value: string }).value;
  }

  /** Adds `amount` to the counter `key` (0 when new) and returns its new value. */
  async add(key: string, amount: number): Promise<number> {
    const reply = await this.#request({ id: this.#nextId++, op: "add", key, amount }, `adding to "${key}"`);
    return (reply as { count: number }).count;
  }

  /** Closes the connection (its end goes out whenever this thread's event loop next turns). */
  close(): void {
    this.#broken ??= new GrowlmError("rendezvous", "the store client is closed");
    this.socket.end();
    this.socket.unref();
  }
}
