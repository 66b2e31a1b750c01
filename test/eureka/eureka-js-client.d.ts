/** The part of eureka-js-client (which ships no types) that the tests use. */
declare module 'eureka-js-client' {
  import { EventEmitter } from 'node:events';

  export interface EurekaInstanceConfig {
    app: string;
    hostName: string;
    ipAddr: string;
    instanceId?: string;
    port?: { $: number; '@enabled': boolean | string };
    vipAddress?: string;
    statusPageUrl?: string;
    metadata?: Record<string, string>;
    dataCenterInfo: { '@class': string; name: string };
  }

  export interface EurekaConfig {
    instance: EurekaInstanceConfig;
    eureka: {
      host?: string;
      port?: number;
      servicePath?: string;
      serviceUrls?: Record<string, string[]>;
      heartbeatInterval?: number;
      registryFetchInterval?: number;
      maxRetries?: number;
      requestRetryDelay?: number;
      filterUpInstances?: boolean;
      preferSameZone?: boolean;
    };
    shouldUseDelta?: boolean;
    logger?: { debug(...args: unknown[]): void; info(...args: unknown[]): void; warn(...args: unknown[]): void; error(...args: unknown[]): void };
  }

  /** An instance as the client caches it: Eureka's JSON. */
  export type CachedInstance = Record<string, unknown> & { instanceId?: string; hostName: string; status: string; app: string };

  export class Eureka extends EventEmitter {
    constructor(config: EurekaConfig);
    start(callback?: (err?: Error | null) => void): void;
    stop(callback?: (err?: Error | null) => void): void;
    getInstancesByAppId(appId: string): CachedInstance[];
    getInstancesByVipAddress(vip: string): CachedInstance[];
  }
}
