import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { InstanceStatus } from '../gen/roster/v1/instance.js';
import type { InstanceAgent } from '../client/instance-agent.js';
import type { RosterClient } from '../client/roster-client.js';
import type { HttpMount } from '../http/server.js';
import type { AppConfig } from './config.js';
import { runProbe, type ProbeResult } from './probes.js';
import { HealthThresholds, type Health } from './thresholds.js';

/** What the sidecar needs: a client (its Heartbeats stream is shared by every app), the apps, a clock. */
export interface SidecarOptions {
  readonly client: RosterClient;
  readonly apps: readonly AppConfig[];
  /** Seconds between OUT_OF_SERVICE and cancel on {@link Sidecar.drain}. */
  readonly drainSecs: number;
  readonly logger: Logger;
  /** Drives probe timing and the drain wait (default: the system clock). */
  readonly clock?: Clock;
}

/** One application's state, as /healthz reports it. */
export interface AppState {
  readonly app: string;
  readonly instanceId: string;
  readonly health: Health;
  readonly status: string;
  readonly registered: boolean;
  readonly lastProbe?: ProbeResult & { readonly at: string };
}

type Phase = 'starting' | 'running' | 'draining' | 'stopped';

/** One application the sidecar keeps registered, and its probe loop. */
class Tracked {
  readonly thresholds: HealthThresholds;
  agent: InstanceAgent | undefined;
  timer: TimerHandle | undefined;
  lastProbe: (ProbeResult & { at: string }) | undefined;
  /** The status change being written, so two changes never race. */
  writing: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: AppConfig,
    readonly log: Logger,
  ) {
    this.thresholds = new HealthThresholds(config.failureThreshold, config.successThreshold);
  }
}

/**
 * The `roster agent` logic: registers each local application (STARTING while it has a probe
 * and no verdict yet, UP when it has none), probes it every interval and reports the verdicts
 * as the instance's own status (DOWN, UP — each a new last_dirty_timestamp), heartbeats all of
 * them on one stream, and on {@link drain} takes them out of service, waits for in-flight
 * traffic to finish, and cancels them.
 */
export class Sidecar {
  readonly #client: RosterClient;
  readonly #clock: Clock;
  readonly #drainSecs: number;
  readonly #log: Logger;
  readonly #apps: Tracked[];
  #phase: Phase = 'starting';

  constructor(options: SidecarOptions) {
    this.#client = options.client;
    this.#clock = options.clock ?? new SystemClock();
    this.#drainSecs = options.drainSecs;
    this.#log = options.logger.child({ component: 'agent' });
    this.#apps = options.apps.map((config) => new Tracked(config, this.#log.child({ app: config.app, instanceId: config.instanceId })));
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** Each application's health, status and last probe. */
  states(): AppState[] {
    return this.#apps.map((t) => ({
      app: t.config.app,
      instanceId: t.config.instanceId,
      health: t.thresholds.health,
      status: statusName(t.agent?.record.status ?? InstanceStatus.INSTANCE_STATUS_UNSPECIFIED),
      registered: t.agent !== undefined && t.agent.registrations > 0,
      ...(t.lastProbe ? { lastProbe: t.lastProbe } : {}),
    }));
  }

  /** Registers every application (retrying while no server answers) and starts probing. */
  async start(): Promise<void> {
    await Promise.all(
      this.#apps.map(async (t) => {
        const c = t.config;
        t.agent = await this.#client.keepRegistered(
          {
            app: c.app,
            instanceId: c.instanceId,
            hostName: c.hostName,
            ipAddr: c.ip,
            port: { number: c.port, enabled: c.port > 0 },
            securePort: { number: c.securePort, enabled: c.securePort > 0 },
            vipAddress: c.vip,
            secureVipAddress: c.secureVip,
            zone: c.zone,
            region: c.region,
            metadata: { ...c.metadata },
            status: c.probe.kind === 'none' ? InstanceStatus.INSTANCE_STATUS_UP : InstanceStatus.INSTANCE_STATUS_STARTING,
            lease: { renewalIntervalSecs: c.renewSecs, durationSecs: c.durationSecs },
          },
          { clock: this.#clock, logger: this.#log, startAttempts: 1_000 },
        );
        t.log.info({ probe: c.probe.kind, intervalMs: c.probeIntervalMs }, 'registered; probing');
        if (c.probe.kind !== 'none') this.#probe(t, 0);
        else t.thresholds.record(true);
      }),
    );
    this.#phase = 'running';
  }

  /**
   * Graceful drain: OUT_OF_SERVICE for every application (consumers stop picking them), then
   * `drainSecs` for in-flight traffic to finish, then cancel. Probing stops first, so a probe
   * cannot set an instance UP again while it drains.
   */
  async drain(): Promise<void> {
    if (this.#phase === 'draining' || this.#phase === 'stopped') return;
    this.#phase = 'draining';
    for (const t of this.#apps) if (t.timer !== undefined) this.#clock.clearTimeout(t.timer);
    await Promise.all(this.#apps.map((t) => t.writing));
    await Promise.all(
      this.#apps.map(async (t) => {
        if (t.agent === undefined) return;
        try {
          await this.#client.setStatusOverride(t.config.app, t.config.instanceId, InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
          t.log.info({ drainSecs: this.#drainSecs }, 'out of service; draining');
        } catch (err) {
          t.log.warn({ err }, 'could not set OUT_OF_SERVICE; cancelling after the drain period anyway');
        }
      }),
    );
    await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, this.#drainSecs * 1000));
    await Promise.all(
      this.#apps.map(async (t) => {
        await t.agent?.stop();
        t.log.info('cancelled');
      }),
    );
    this.#phase = 'stopped';
  }

  /** /healthz (the agent runs: 200, with every app's state) and /readyz (every app registered and healthy). */
  mount(): HttpMount {
    return (router) => {
      router.on('GET', '/healthz', (_req, res) => {
        const ok = this.#phase !== 'stopped';
        send(res, ok ? 200 : 503, { status: ok ? 'ok' : 'stopped', phase: this.#phase, apps: this.states() });
      });
      router.on('GET', '/readyz', (_req, res) => {
        const apps = this.states();
        const ready = this.#phase === 'running' && apps.every((a) => a.registered && a.health === 'healthy');
        send(res, ready ? 200 : 503, { ready, phase: this.#phase, apps });
      });
    };
  }

  /** Probes `t` after `delayMs`, then every interval (measured from the end of the previous probe). */
  #probe(t: Tracked, delayMs: number): void {
    t.timer = this.#clock.setTimeout(async () => {
      t.timer = undefined;
      const result = await runProbe(t.config.probe, t.config.probeTimeoutMs);
      if (this.#phase === 'draining' || this.#phase === 'stopped') return;
      t.lastProbe = { ...result, at: new Date(this.#clock.wallNow()).toISOString() };
      const changed = t.thresholds.record(result.ok);
      if (changed !== undefined) {
        const status = changed === 'healthy' ? InstanceStatus.INSTANCE_STATUS_UP : InstanceStatus.INSTANCE_STATUS_DOWN;
        t.log.info({ health: changed, status: statusName(status), probe: result.detail }, 'health changed');
        t.writing = t.writing.then(() => this.#report(t, status));
      } else if (!result.ok) {
        t.log.debug({ probe: result.detail }, 'probe failed');
      }
      this.#probe(t, t.config.probeIntervalMs);
    }, delayMs);
  }

  async #report(t: Tracked, status: InstanceStatus): Promise<void> {
    try {
      await t.agent?.setStatus(status);
    } catch (err) {
      // The agent registers again on the next heartbeat's NOT_FOUND; the status rides along.
      t.log.warn({ err, status: statusName(status) }, 'could not report the new status; the next registration carries it');
    }
  }
}

function statusName(status: InstanceStatus): string {
  return (InstanceStatus[status] ?? 'UNSPECIFIED').replace('INSTANCE_STATUS_', '');
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}
