/** What a read wants now: the version of the document as the registry is, and how to build its body. */
export interface Wanted {
  readonly version: string;
  /** Starts synchronously, from the registry as it is at the call. */
  build(): Promise<Buffer>;
}

/**
 * Bodies of one version of a document (JSON, XML, each plain or gzip), built once on first
 * demand and shared by every reader; all dropped when the version moves, so a read after a
 * change is never stale. For `GET apps` the version is the registry revision; for
 * `GET apps/delta` it is also where the delta window starts.
 *
 * At most one build per body kind runs at a time. A read that wants a newer version while one
 * runs waits for it to end, then shares a single build with every read that arrived meanwhile,
 * made from the registry as it is then: never older than what the read asked for. Without
 * this, clients polling while the registry changes would each start a build of their own
 * (tens of milliseconds each at 10k instances) and could take the node's whole CPU.
 *
 * Plain bodies larger than `maxPlainBytes` are not kept (gzip ones always are: clients ask for
 * gzip), so memory is the current version's gzip bodies and plain ones up to that size.
 */
export class BodyCache {
  readonly #maxPlainBytes: number;
  #version = '';
  #bodies = new Map<string, Promise<Buffer>>();
  /** Per kind: the build running now (settled, never rejecting), and the one queued behind it. */
  readonly #running = new Map<string, Promise<void>>();
  readonly #queued = new Map<string, Promise<Buffer>>();

  constructor(maxPlainBytes: number) {
    this.#maxPlainBytes = maxPlainBytes;
  }

  /** The body of kind `key` (e.g. `json+gzip`) at the version `want` finds, or a newer one. */
  get(key: string, want: () => Wanted): Promise<Buffer> {
    const wanted = want();
    const kept = wanted.version === this.#version ? this.#bodies.get(key) : undefined;
    if (kept !== undefined) return kept;
    const running = this.#running.get(key);
    if (running === undefined) return this.#build(key, wanted);
    let queued = this.#queued.get(key);
    if (queued === undefined) {
      // Runs after #build's own clean-up of `running` (registered first): no build runs then.
      queued = running.then(() => {
        this.#queued.delete(key);
        return this.get(key, want);
      });
      this.#queued.set(key, queued);
    }
    return queued;
  }

  #build(key: string, wanted: Wanted): Promise<Buffer> {
    if (wanted.version !== this.#version) {
      this.#version = wanted.version;
      this.#bodies = new Map();
    }
    const bodies = this.#bodies;
    const body = wanted.build();
    bodies.set(key, body);
    const settled = body.then(
      (built) => {
        if (!key.endsWith('+gzip') && built.length > this.#maxPlainBytes) bodies.delete(key);
      },
      () => void bodies.delete(key),
    );
    this.#running.set(key, settled);
    void settled.then(() => {
      if (this.#running.get(key) === settled) this.#running.delete(key);
    });
    return body;
  }
}
