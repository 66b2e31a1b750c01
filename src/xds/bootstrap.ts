/**
 * The bootstrap file a proxyless gRPC client reads (`GRPC_XDS_BOOTSTRAP` = its path, or
 * `GRPC_XDS_BOOTSTRAP_CONFIG` = its text) to find Roster's xDS server.
 */
export interface BootstrapOptions {
  /**
   * gRPC targets of Roster nodes: `HOST:PORT`, or any target the clients resolve, e.g.
   * `dns:///roster.ns.svc:8761` (every node behind one name) or `ipv4:10.0.0.1:8761,10.0.0.2:8761`
   * (grpc-js and gRPC C-core; not grpc-go). Each becomes one `xds_servers` entry: clients that
   * support xDS fallback try them in order; grpc-js uses the first.
   */
  readonly servers: readonly string[];
  /** The client's locality; grpc-js fails every call without one, so there is always a zone. */
  readonly zone?: string;
  readonly region?: string;
  readonly nodeId?: string;
}

export interface Bootstrap {
  readonly xds_servers: ReadonlyArray<{
    readonly server_uri: string;
    readonly channel_creds: ReadonlyArray<{ readonly type: string }>;
    readonly server_features: readonly string[];
  }>;
  readonly node: { readonly id: string; readonly locality: { readonly zone: string; readonly region?: string } };
}

const DEFAULT_ZONE = 'default';
const TARGET = /^[\x21-\x7e]{1,512}$/;

/** Validates the options (throwing an Error naming the flag) and builds the bootstrap. */
export function bootstrapConfig(options: BootstrapOptions): Bootstrap {
  if (options.servers.length === 0) throw new Error('--server: at least one HOST:PORT is required');
  for (const server of options.servers) {
    if (!TARGET.test(server)) throw new Error(`--server: ${JSON.stringify(server)} is not a gRPC target`);
    if (!server.includes(':')) throw new Error(`--server: ${JSON.stringify(server)} needs a port (HOST:PORT)`);
  }
  const zone = options.zone ?? DEFAULT_ZONE;
  if (!TARGET.test(zone)) throw new Error('--zone: must be 1..512 printable characters without spaces');
  if (options.region !== undefined && !TARGET.test(options.region)) throw new Error('--region: must be 1..512 printable characters without spaces');
  return {
    xds_servers: options.servers.map((server_uri) => ({
      server_uri,
      // Plaintext only: grpc-js accepts nothing but insecure or google_default, and clients
      // that see `tls` first would pick it (grpc-go, recent grpcio) against a plaintext port.
      channel_creds: [{ type: 'insecure' }],
      // ignore_resource_deletion: a client keeps resources the server stops sending (e.g.
      // while a node restarts empty), the xDS counterpart of self-preservation.
      server_features: ['xds_v3', 'ignore_resource_deletion'],
    })),
    node: {
      id: options.nodeId ?? `roster-xds-client-${process.pid}`,
      locality: { zone, ...(options.region === undefined ? {} : { region: options.region }) },
    },
  };
}
