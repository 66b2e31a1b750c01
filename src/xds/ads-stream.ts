import type { Logger } from 'pino';
import { invalid } from '../core/errors.js';
import type { XdsResourceCache, ResourceWatcher } from './cache.js';
import { encodeResponseBody, KIND_LABEL, kindOfTypeUrl, withNonce, type DiscoveryRequest, type ResourceKind } from './protos.js';

/** What a stream reports, for metrics. */
export interface StreamObserver {
  sent(type: string, resources: number): void;
  ack(type: string): void;
  nack(type: string): void;
  /** Seconds from a registry change to the response it caused being written. */
  pushed(seconds: number): void;
  unknownType(): void;
}

/** Bounds on what one client may make a stream hold. */
export const STREAM_LIMITS = {
  typeUrls: 16,
  typeUrlLength: 256,
  resourceNames: 10_000,
  resourceNameLength: 512,
} as const;

/** Per type URL: the subscription and where its request/response exchange stands. */
interface TypeState {
  readonly typeUrl: string;
  readonly kind: ResourceKind | undefined;
  names: ReadonlySet<string>;
  /** `names` sorted: the key of the shared response. */
  sortedNames: readonly string[];
  /** The nonce of the last response on this type; requests carrying another one are stale. */
  nonce: string | undefined;
  /** The version of the last response sent (accepted or not). */
  sentVersion: string | undefined;
  /** The last version the client accepted. */
  ackedVersion: string;
  /** A version the client refused: never sent again (nothing newer will have its content). */
  rejectedVersion: string | undefined;
}

/**
 * One state-of-the-world ADS stream (envoy `xds_protocol.rst`): a version per type (a digest of
 * the resources in the response, so equal content has the same version on every node) and a
 * nonce per response. Requests with a stale nonce are ignored; an ACK records the version; a
 * NACK is logged and counted and its version is held back, the client keeping the previous one.
 * Every response carries every subscribed resource that exists (as Listener and Cluster
 * require; for routes and assignments that is allowed too). A type the server does not know
 * holds no resources: it is answered once with an empty response and the stream goes on.
 */
export class AdsStream implements ResourceWatcher {
  readonly #types = new Map<string, TypeState>();
  readonly #cache: XdsResourceCache;
  readonly #send: (response: Buffer) => void;
  readonly #observer: StreamObserver;
  #log: Logger;
  #nonce = 0;
  #node: string | undefined;
  #closed = false;

  constructor(options: { cache: XdsResourceCache; send: (response: Buffer) => void; observer: StreamObserver; logger: Logger }) {
    this.#cache = options.cache;
    this.#send = options.send;
    this.#observer = options.observer;
    this.#log = options.logger;
  }

  /** Applies one request; throws a RegistryError (invalid_argument) for a request out of bounds. */
  handle(request: DiscoveryRequest): void {
    if (this.#closed) return;
    if (this.#node === undefined && request.node) {
      this.#node = request.node.id;
      this.#log = this.#log.child({ xdsNode: request.node.id });
      this.#log.debug({ zone: request.node.locality?.zone }, 'xds stream opened');
    }
    const typeUrl = request.typeUrl;
    if (typeUrl.length === 0 || typeUrl.length > STREAM_LIMITS.typeUrlLength) {
      throw invalid('type_url', `must be 1..${STREAM_LIMITS.typeUrlLength} characters`);
    }
    if (request.resourceNames.length > STREAM_LIMITS.resourceNames) {
      throw invalid('resource_names', `more than ${STREAM_LIMITS.resourceNames} names`);
    }
    for (const name of request.resourceNames) {
      if (name.length > STREAM_LIMITS.resourceNameLength) throw invalid('resource_names', `a name is longer than ${STREAM_LIMITS.resourceNameLength} characters`);
    }
    let state = this.#types.get(typeUrl);
    if (!state) {
      if (this.#types.size >= STREAM_LIMITS.typeUrls) throw invalid('type_url', `more than ${STREAM_LIMITS.typeUrls} types on one stream`);
      const kind = kindOfTypeUrl(typeUrl);
      if (kind === undefined) {
        this.#observer.unknownType();
        this.#log.info({ typeUrl }, 'xds request for a type this server does not serve: answered with no resources');
      }
      state = { typeUrl, kind, names: new Set(), sortedNames: [], nonce: undefined, sentVersion: undefined, ackedVersion: '', rejectedVersion: undefined };
      this.#types.set(typeUrl, state);
    }
    const type = state.kind ? KIND_LABEL[state.kind] : 'unknown';
    if (request.responseNonce !== '') {
      // A request answering an older response: a newer one is on its way, whose ACK will
      // carry the client's current subscription (each SotW request carries all of it).
      if (request.responseNonce !== state.nonce) return;
      if (request.errorDetail) {
        state.rejectedVersion = state.sentVersion;
        this.#observer.nack(type);
        this.#log.warn(
          { typeUrl, rejectedVersion: state.sentVersion, keptVersion: request.versionInfo, code: request.errorDetail.code, error: request.errorDetail.message },
          'xds client rejected a response (NACK)',
        );
      } else {
        state.ackedVersion = request.versionInfo;
        this.#observer.ack(type);
      }
    }
    this.#subscribe(state, new Set(request.resourceNames));
    this.#respond(state, undefined);
  }

  resourcesChanged(kind: ResourceKind, changedAt: number): void {
    if (this.#closed) return;
    for (const state of this.#types.values()) if (state.kind === kind) this.#respond(state, changedAt);
  }

  /** Releases the stream's watches; later requests and changes are ignored. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#types.values()) this.#subscribe(state, new Set());
  }

  #subscribe(state: TypeState, names: ReadonlySet<string>): void {
    if (state.kind !== undefined) {
      for (const name of state.names) if (!names.has(name)) this.#cache.unwatch(state.kind, name, this);
      for (const name of names) if (!state.names.has(name)) this.#cache.watch(state.kind, name, this);
    }
    state.names = names;
    state.sortedNames = [...names].sort();
  }

  #respond(state: TypeState, changedAt: number | undefined): void {
    // A type the server does not serve holds no resources.
    const { version, count, body } =
      state.kind === undefined ? { version: EMPTY_VERSION, count: 0, body: encodeResponseBody(state.typeUrl, EMPTY_VERSION, []) } : this.#cache.response(state.kind, state.sortedNames);
    if (state.nonce !== undefined && version === state.sentVersion) return;
    if (version === state.rejectedVersion) return;
    const nonce = String(++this.#nonce);
    state.nonce = nonce;
    state.sentVersion = version;
    this.#send(withNonce(body, nonce));
    this.#observer.sent(state.kind ? KIND_LABEL[state.kind] : 'unknown', count);
    if (changedAt !== undefined) this.#observer.pushed((performance.now() - changedAt) / 1000);
  }
}

/** The version of a response holding nothing. */
const EMPTY_VERSION = 'empty';
