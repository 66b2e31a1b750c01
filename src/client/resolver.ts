import { experimental, type ChannelOptions } from '@grpc/grpc-js';
import type { ServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';
import { InstanceStatus, type Instance } from '../gen/roster/v1/instance.js';
import { DiscoveryCache } from './discovery.js';
import { RosterClient, type RosterClientOptions } from './roster-client.js';

/** Where the registry is, and how channels should use what it says. */
export interface RosterResolverOptions extends RosterClientOptions {
  /** Roster servers (`host:port`, a comma-separated list or an array); or pass `client`. */
  readonly servers?: string | readonly string[];
  /** An existing client to read the registry through (it is not closed by the handle). */
  readonly client?: RosterClient;
  /** Resolve to instances' secure ports (and, for `vip/NAME`, secure VIPs). Default false. */
  readonly secure?: boolean;
  /** The load-balancing policy handed to channels in the service config (default `round_robin`). */
  readonly loadBalancingPolicy?: string;
  /** The URI scheme to register (default `roster`). */
  readonly scheme?: string;
}

/** What {@link registerRosterResolver} set up; `close()` stops following the registry. */
export interface RosterResolverHandle {
  readonly cache: DiscoveryCache;
  close(): Promise<void>;
}

/** What a target names: `roster:///APP` or `roster:///vip/NAME`. */
type Target = { readonly kind: 'app' | 'vip'; readonly name: string };

function parseTarget(path: string): Target {
  const clean = path.replace(/^\/+/, '');
  const target: Target = clean.startsWith('vip/') ? { kind: 'vip', name: clean.slice(4) } : { kind: 'app', name: clean };
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(target.name)) {
    throw new Error(`roster target "${path}" must be roster:///APP or roster:///vip/NAME`);
  }
  return target;
}

/**
 * Registers a grpc-js name resolver, so that any channel to `roster:///APP` (or
 * `roster:///vip/NAME`) connects to the UP instances of that application (or VIP) and follows
 * every change live: the registry is followed by one {@link DiscoveryCache} (one Watch stream)
 * whatever the number of channels. The service config it hands out selects `round_robin`,
 * so calls spread over the instances with no other code. An application with no UP instance
 * resolves to no address, so calls fail UNAVAILABLE (or wait, with waitForReady).
 */
export function registerRosterResolver(options: RosterResolverOptions): RosterResolverHandle {
  const ownClient = options.client === undefined;
  const client = options.client ?? new RosterClient(options.servers ?? [], options);
  const cache = new DiscoveryCache(client, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const secure = options.secure ?? false;
  const serviceConfig: ServiceConfig = {
    loadBalancingConfig: [{ [options.loadBalancingPolicy ?? 'round_robin']: {} }],
    methodConfig: [],
  };

  const addressOf = (i: Instance): { host: string; port: number } | undefined => {
    const port = secure ? i.securePort : i.port;
    const host = i.ipAddr || i.hostName;
    return port?.enabled && port.number > 0 && host ? { host, port: port.number } : undefined;
  };

  class RosterResolver implements experimental.Resolver {
    readonly #target: Target;
    readonly #listener: experimental.ResolverListener;
    #last: string | undefined;
    #subscribed = false;
    #scheduled = false;

    constructor(target: { path: string }, listener: experimental.ResolverListener, _channelOptions: ChannelOptions) {
      this.#target = parseTarget(target.path);
      this.#listener = listener;
    }

    static getDefaultAuthority(target: { path: string }): string {
      return parseTarget(target.path).name;
    }

    updateResolution(): void {
      if (!this.#subscribed) {
        this.#subscribed = true;
        cache.on('change', this.#schedule);
        cache.on('resync', this.#schedule);
      }
      this.#last = undefined;
      cache.start().then(this.#schedule, () => {});
    }

    destroy(): void {
      this.#subscribed = false;
      cache.off('change', this.#schedule);
      cache.off('resync', this.#schedule);
      this.#last = undefined;
    }

    /** Coalesces a burst of changes (a resync emits one per instance) into one update. */
    readonly #schedule = (): void => {
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#subscribed) this.#push();
      });
    };

    #push(): void {
      const { kind, name } = this.#target;
      const instances = kind === 'app' ? cache.instances(name) : cache.byVip(name, secure);
      const addresses = instances
        .filter((i) => i.status === InstanceStatus.INSTANCE_STATUS_UP)
        .map(addressOf)
        .filter((a): a is { host: string; port: number } => a !== undefined);
      const key = addresses
        .map((a) => `${a.host}:${a.port}`)
        .sort()
        .join(',');
      if (key === this.#last) return;
      this.#last = key;
      const endpoints = addresses.map((a) => ({ addresses: [a] }));
      const note = endpoints.length === 0 ? `no UP instance of ${kind === 'app' ? '' : 'vip '}${name} in the registry` : '';
      this.#listener(experimental.statusOrFromValue(endpoints), {}, experimental.statusOrFromValue(serviceConfig), note);
    }
  }

  experimental.registerResolver(options.scheme ?? 'roster', RosterResolver);
  return {
    cache,
    async close() {
      await cache.close();
      if (ownClient) await client.close();
    },
  };
}
