import * as grpc from '@grpc/grpc-js';
import * as pb from '../gen/roster/v1/replication_service.js';
import type { TlsMaterial } from '../security/tls-material.js';
import type { LinkError, PeerDigest, PeerLink, PeerSnapshot, ReplicateHandlers, ReplicateStream } from '../replication/link.js';
import { recordFromProto, taskResultFromProto } from './convert.js';
import { encodeReplicateRequest, readReplicateResponse } from './write-codec.js';

export interface GrpcPeerLinkOptions {
  /** The cluster credential, sent as `authorization: Bearer <token>`; a function is asked on every call (the token file may be rotated). */
  readonly token: string | undefined | (() => string | undefined);
  /** How to reach peers: {@link peerCredentials}; default plain text. */
  readonly credentials?: grpc.ChannelCredentials;
  /** The name peers' certificates must carry when it is not the dialled host (`grpc.ssl_target_name_override`). */
  readonly serverName?: string;
  /** Deadline for Digest and Snapshot calls. */
  readonly callTimeoutMs?: number;
  /** This node's id, sent as `roster-node-id` so the peer knows which node its renewals come through. */
  readonly nodeId?: string;
}

/** The metadata key a peer names itself with on its Replicate stream. */
export const NODE_ID_HEADER = 'roster-node-id';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A long-lived stream of small messages: without this grpc-js copies a growing retry buffer
  // per message (quadratic): measured ~1.6k msgs/s without it, ~100k with.
  'grpc.per_rpc_retry_buffer_size': 0,
  // Start-up and anti-entropy snapshots are large: don't stall on 64 KiB window updates.
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // The dispatcher owns reconnect timing; keep the channel's own backoff short.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

/**
 * TLS to peers from this node's material: peers' certificates are verified against its CA
 * (or the system roots without one), and its own certificate is presented for mTLS. Both
 * follow reloads, so a reconnect after a rotation uses the new certificate.
 */
export function peerCredentials(material: TlsMaterial | undefined): grpc.ChannelCredentials {
  if (!material) return grpc.credentials.createInsecure();
  if (!material.hasCa) return grpc.credentials.createSsl(null, material.pem.key, material.pem.cert);
  return grpc.experimental.createCertificateProviderChannelCredentials(material, material);
}

function linkError(err: grpc.ServiceError): LinkError {
  const kind =
    err.code === grpc.status.RESOURCE_EXHAUSTED ? 'overloaded' : err.code === grpc.status.UNAUTHENTICATED ? 'unauthenticated' : err.code === grpc.status.UNAVAILABLE ? 'unavailable' : 'other';
  return { kind, message: `${grpc.status[err.code] ?? err.code}: ${err.details}` };
}

/**
 * The generated client with Replicate's batches encoded by hand (write-codec.ts): the request
 * serializer takes the bytes as they are, and answers of codes only are read without the
 * generated reader (one with a conflict's record still takes it).
 */
const ReplicationClient = grpc.makeGenericClientConstructor(
  {
    ...pb.ReplicationServiceService,
    replicate: {
      ...pb.ReplicationServiceService.replicate,
      requestSerialize: (bytes: Buffer) => bytes,
      responseDeserialize: (bytes: Buffer) => readReplicateResponse(bytes) ?? pb.ReplicateResponse.decode(bytes),
    },
  },
  'roster.v1.ReplicationService',
) as unknown as typeof pb.ReplicationServiceClient;

/** Replication to one peer over gRPC: one channel, one Replicate stream at a time. */
export class GrpcPeerLink implements PeerLink {
  readonly #client: pb.ReplicationServiceClient;
  readonly #metadata = new grpc.Metadata();
  readonly #token: GrpcPeerLinkOptions['token'];
  readonly #timeoutMs: number;

  constructor(
    readonly address: string,
    options: GrpcPeerLinkOptions,
  ) {
    const channelOptions = options.serverName !== undefined ? { ...CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': options.serverName } : CHANNEL_OPTIONS;
    this.#client = new ReplicationClient(address, options.credentials ?? grpc.credentials.createInsecure(), channelOptions);
    this.#token = options.token;
    if (options.nodeId !== undefined) this.#metadata.set(NODE_ID_HEADER, options.nodeId);
    this.#timeoutMs = options.callTimeoutMs ?? 10_000;
  }

  replicate(handlers: ReplicateHandlers): ReplicateStream {
    const call = this.#client.replicate(this.#callMetadata());
    let closed = false;
    const close = (error: LinkError | undefined): void => {
      if (closed) return;
      closed = true;
      handlers.onClose(error);
    };
    call.on('metadata', () => handlers.onOpen());
    call.on('data', (response: pb.ReplicateResponse) => handlers.onResults(response.batchId, response.results.map(taskResultFromProto)));
    call.on('error', (err: grpc.ServiceError) => close(linkError(err)));
    call.on('end', () => close(undefined));
    return {
      send: (batchId, tasks) => {
        if (!closed) call.write(encodeReplicateRequest(batchId, tasks) as unknown as pb.ReplicateRequest);
      },
      close: () => {
        closed = true;
        call.cancel();
      },
    };
  }

  digest(): Promise<PeerDigest> {
    return new Promise((resolve, reject) => {
      this.#client.digest({}, this.#callMetadata(), { deadline: this.#deadline() }, (err, response) => {
        if (err) return reject(err);
        resolve({ nodeId: response.nodeId, apps: new Map(response.apps.map((a) => [a.app, { count: a.count, hash: a.hash }])) });
      });
    });
  }

  snapshot(apps: readonly string[]): Promise<PeerSnapshot> {
    return new Promise((resolve, reject) => {
      const snapshot = { nodeId: '', records: [] as PeerSnapshot['records'][number][], tombstones: [] as PeerSnapshot['tombstones'][number][] };
      const call = this.#client.snapshot({ apps: [...apps] }, this.#callMetadata(), { deadline: this.#deadline(60_000) });
      call.on('data', (chunk: pb.SnapshotResponse) => {
        snapshot.nodeId = chunk.nodeId;
        for (const r of chunk.records) {
          try {
            snapshot.records.push({ record: recordFromProto(r.instance), leaseRemainingMs: r.leaseRemainingMs });
          } catch {
            // A record this node cannot read is skipped; the rest of the snapshot still counts.
          }
        }
        for (const t of chunk.tombstones) snapshot.tombstones.push(t);
      });
      call.on('error', reject);
      call.on('end', () => resolve(snapshot));
    });
  }

  onReachable(callback: () => void): () => void {
    const channel = this.#client.getChannel();
    let done = false;
    let wasDown = false;
    const step = (): void => {
      if (done) return;
      // `true` asks an idle channel to connect: the channel retries at its own short backoff.
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.SHUTDOWN) return;
      if (state === grpc.connectivityState.READY && wasDown) {
        done = true;
        callback();
        return;
      }
      if (state !== grpc.connectivityState.READY) wasDown = true;
      // No deadline, so no timer: the watch ends with the next state change (SHUTDOWN on close).
      channel.watchConnectivityState(state, Infinity, step);
    };
    step();
    return () => {
      done = true;
    };
  }

  close(): void {
    this.#client.close();
  }

  /** The fixed headers plus the current cluster token. */
  #callMetadata(): grpc.Metadata {
    const token = typeof this.#token === 'function' ? this.#token() : this.#token;
    if (token === undefined) return this.#metadata;
    const metadata = this.#metadata.clone();
    metadata.set('authorization', `Bearer ${token}`);
    return metadata;
  }

  #deadline(ms = this.#timeoutMs): Date {
    return new Date(Date.now() + ms);
  }
}
