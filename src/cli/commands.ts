import { hostname } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { addAgentCommand } from '../agent/command.js';
import { InstanceAgent, isRetryable, RosterClient } from '../client/index.js';
import { backoffDelay, sleep } from '../client/backoff.js';
import { SystemClock } from '../core/clock.js';
import { Instance } from '../gen/roster/v1/instance.js';
import {
  CancelResponse,
  ClearStatusOverrideResponse,
  GetApplicationResponse,
  GetDeltaResponse,
  GetInstanceResponse,
  ListByVipResponse,
  SetStatusOverrideResponse,
  UpdateMetadataResponse,
  WatchResponse,
} from '../gen/roster/v1/registry_service.js';
import type { PeersReport } from '../replication/replicator.js';
import { bootstrapConfig } from '../xds/bootstrap.js';
import { addClientSecurityOptions, clientSecurityOptions, type ClientSecurityFlags } from './client-security.js';
import type { LogFormat } from './config.js';
import { CliError, EXIT, explain, seconds } from './failures.js';
import { applicationsTable, changeHeader, changeLine, instanceDetails, instancesTable, parseStatus, SETTABLE_STATUSES, statusName, table } from './format.js';
import { createLogger } from './logging.js';
import { exitOnSignals } from './signals.js';

const DEFAULT_TIMEOUT = '5s';
/** `register` retries a server that is down this many times, with backoff from 0.5 s to 10 s (about 3 min in all). */
const REGISTER_ATTEMPTS = 20;
const REGISTER_BACKOFF = { initialMs: 500, maxMs: 10_000 };

interface ClientFlags extends ClientSecurityFlags {
  server: string;
  timeout: number;
  json?: boolean;
}

/**
 * Every command but `serve`: the client commands, `peers`, `xds bootstrap` and `agent`. Their
 * modules (the client library, the agent) are loaded only when one of them may run.
 */
export function addClientCommands(program: Command): void {
  clientCommand(program, 'apps')
    .description('list applications and their instance counts per status')
    .action(async (flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        const snapshot = await client.listApplications({ timeoutMs: flags.timeout });
        if (flags.json) {
          print({ revision: snapshot.revision, reconcileHash: snapshot.reconcileHash, instances: snapshot.instances.map((i) => Instance.toJSON(i)) });
        } else {
          if (snapshot.instances.length > 0) process.stdout.write(applicationsTable(snapshot.instances));
          process.stdout.write(`revision ${snapshot.revision}, ${snapshot.instances.length} instances\n`);
        }
      });
    });

  clientCommand(program, 'get')
    .description(`show an application's instances, or one instance in full (exit ${EXIT.notFound} when there is none)`)
    .argument('<app>', 'application name')
    .argument('[id]', 'instance id')
    .action(async (app: string, id: string | undefined, flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        if (id === undefined) {
          const res = await client.getApplication(app, { timeoutMs: flags.timeout });
          if (res.instances.length === 0) throw new CliError(`not found: application ${app} has no instances`, EXIT.notFound);
          if (flags.json) print(GetApplicationResponse.toJSON(res));
          else process.stdout.write(instancesTable(res.instances));
        } else {
          const res = await client.getInstance(app, id, { timeoutMs: flags.timeout });
          if (flags.json) print(GetInstanceResponse.toJSON(res));
          else if (res.instance !== undefined) process.stdout.write(instanceDetails(res.instance));
        }
      });
    });

  clientCommand(program, 'vip')
    .description(`list the instances serving a VIP (exit ${EXIT.notFound} when there is none)`)
    .argument('<vip>', "VIP address, matched against each instance's comma-separated list")
    .option('--secure', 'match the secure VIP instead', false)
    .action(async (vip: string, flags: ClientFlags & { secure: boolean }) => {
      await withClient(flags, async (client) => {
        const res = await client.listByVip(vip, flags.secure, { timeoutMs: flags.timeout });
        if (res.instances.length === 0) throw new CliError(`not found: no instances serve ${flags.secure ? 'secure ' : ''}VIP ${vip}`, EXIT.notFound);
        if (flags.json) print(ListByVipResponse.toJSON(res));
        else process.stdout.write(instancesTable(res.instances));
      });
    });

  clientCommand(program, 'status')
    .description(`set an operator status override, or --clear it (status: ${SETTABLE_STATUSES.join(', ')})`)
    .argument('<app>', 'application name')
    .argument('<id>', 'instance id')
    .argument('[status]', `the status to force: ${SETTABLE_STATUSES.join(', ')}`)
    .option('--clear', 'remove the override: the instance re-registers with its own status')
    .action(async (app: string, id: string, text: string | undefined, flags: ClientFlags & { clear?: boolean }) => {
      if (Boolean(flags.clear) === (text !== undefined)) {
        throw new CliError(`give either a status (${SETTABLE_STATUSES.join(', ')}) or --clear`, EXIT.usage);
      }
      const forced = text === undefined ? undefined : parseStatus(text);
      if (text !== undefined && (forced === undefined || !(SETTABLE_STATUSES as readonly string[]).includes(statusName(forced)))) {
        throw new CliError(`unknown status "${text}": use one of ${SETTABLE_STATUSES.join(', ')}`, EXIT.usage);
      }
      await withClient(flags, async (client) => {
        if (forced === undefined) {
          const res = await client.clearStatusOverride(app, id, { timeoutMs: flags.timeout });
          if (flags.json) print(ClearStatusOverrideResponse.toJSON(res));
          else process.stdout.write(`${app}/${id}: override cleared, status ${statusName(res.instance?.status ?? 0)}\n`);
        } else {
          const res = await client.setStatusOverride(app, id, forced, { timeoutMs: flags.timeout });
          if (flags.json) print(SetStatusOverrideResponse.toJSON(res));
          else process.stdout.write(`${app}/${id}: override ${statusName(forced)}, status ${statusName(res.instance?.status ?? 0)}\n`);
        }
      });
    });

  clientCommand(program, 'cancel')
    .description('remove an instance now (what an instance does when it shuts down)')
    .argument('<app>', 'application name')
    .argument('<id>', 'instance id')
    .action(async (app: string, id: string, flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        const res = await client.cancel(app, id, { timeoutMs: flags.timeout });
        if (flags.json) print(CancelResponse.toJSON(res));
        else process.stdout.write(`cancelled ${app}/${id} (revision ${res.revision})\n`);
      });
    });

  const metadata = program.command('metadata').description("change an instance's metadata (see: metadata set --help)");
  clientCommand(metadata, 'set')
    .description('add or replace metadata entries')
    .argument('<app>', 'application name')
    .argument('<id>', 'instance id')
    .argument('<key=value...>', 'one or more entries')
    .action(async (app: string, id: string, entries: string[], flags: ClientFlags) => {
      const set = entries.reduce<Record<string, string>>((into, entry) => collectMetadata(entry, into), {});
      await withClient(flags, async (client) => {
        const res = await client.updateMetadata(app, id, set, [], { timeoutMs: flags.timeout });
        if (flags.json) print(UpdateMetadataResponse.toJSON(res));
        else process.stdout.write(`${app}/${id}: metadata ${formatMetadata(res.instance?.metadata ?? {})}\n`);
      });
    });
  clientCommand(metadata, 'rm')
    .description('remove metadata entries')
    .argument('<app>', 'application name')
    .argument('<id>', 'instance id')
    .argument('<key...>', 'one or more keys')
    .action(async (app: string, id: string, keys: string[], flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        const res = await client.updateMetadata(app, id, {}, keys, { timeoutMs: flags.timeout });
        if (flags.json) print(UpdateMetadataResponse.toJSON(res));
        else process.stdout.write(`${app}/${id}: metadata ${formatMetadata(res.instance?.metadata ?? {})}\n`);
      });
    });

  clientCommand(program, 'delta')
    .description("print the changes after a revision, from the node's change log")
    .requiredOption('--since <revision>', 'changes after this revision (required; `roster apps` prints the current one)', nonNegativeInt)
    .option('--max <n>', 'at most this many changes (server default 1000)', nonNegativeInt, 0)
    .action(async (flags: ClientFlags & { since: number; max: number }) => {
      await withClient(flags, async (client) => {
        const res = await client.getDelta(flags.since, flags.max, { timeoutMs: flags.timeout });
        if (flags.json) return print(GetDeltaResponse.toJSON(res));
        if (res.resyncRequired) {
          throw new CliError(`revision ${flags.since} is older than the change log (node at ${res.revision}): list again with roster apps`, EXIT.failure);
        }
        if (res.changes.length > 0) process.stdout.write(changeHeader() + res.changes.map(changeLine).join(''));
        process.stdout.write(`revision ${res.revision}${res.hasMore ? ` (more: run again with --since ${res.revision})` : ''}, ${res.changes.length} changes\n`);
      });
    });

  clientCommand(program, 'watch')
    .description('print changes as they happen (NDJSON with --json) until Ctrl-C')
    .argument('[app]', 'only this application (default: all)')
    .option('--vip <vip>', 'only instances serving this VIP')
    .option('--since <revision>', 'start after this revision (default: from now)', nonNegativeInt)
    .action(async (app: string | undefined, flags: ClientFlags & { vip?: string; since?: number }) => {
      const client = new RosterClient(flags.server, clientOptions(flags));
      const abort = new AbortController();
      exitOnSignals({ shutdown: async () => abort.abort(), forceAfterMs: 2_000 });
      const what = `${app === undefined ? 'all applications' : `application ${app}`}${flags.vip ? ` serving VIP ${flags.vip}` : ''}`;
      let since = flags.since;
      let headed = false;
      // Each pass ends on resync_required; bounded by the signal (the command runs until Ctrl-C).
      while (!abort.signal.aborted) {
        const changes = client.watch(
          { app: app ?? '', vip: flags.vip ?? '', ...(since === undefined ? {} : { sinceRevision: since }) },
          {
            signal: abort.signal,
            onRetry: (err, delayMs) => process.stderr.write(`roster: watch stream lost (${explain(err, flags).message}); reconnecting in ${seconds(delayMs)}\n`),
          },
        );
        for await (const message of changes) {
          if (!headed && !flags.json) {
            // The first message comes at once (progress at the current revision, or the replay).
            const from = since === undefined ? `revision ${message.revision} (now)` : `revision ${since}`;
            process.stderr.write(`watching ${what} on ${flags.server} from ${from}; Ctrl-C to stop\n`);
            process.stdout.write(changeHeader());
            headed = true;
          }
          if (flags.json) print(WatchResponse.toJSON(message));
          else for (const change of message.changes) process.stdout.write(changeLine(change));
          if (message.resyncRequired) {
            process.stderr.write(`roster: revision ${since ?? '?'} is older than the change log; continuing from revision ${message.revision}\n`);
          }
        }
        since = undefined;
      }
      client.close();
    });

  clientCommand(program, 'register')
    .description('register an instance and keep it alive until Ctrl-C/SIGTERM, then cancel it (a dev helper)')
    .requiredOption('--app <app>', 'application name (required)')
    .option('--id <id>', 'instance id (default: HOST:APP:PORT)')
    .option('--host <host>', 'host name', hostname())
    .option('--ip <ip>', 'IP address', '127.0.0.1')
    .option('--port <port>', 'plain port (0: none)', nonNegativeInt, 0)
    .option('--secure-port <port>', 'TLS port (0: none)', nonNegativeInt, 0)
    .option('--status <status>', `the status the instance reports: ${SETTABLE_STATUSES.join(', ')}`, 'UP')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectMetadata, {} as Record<string, string>)
    .option('--vip <vip>', 'VIP address(es), comma-separated')
    .option('--zone <zone>', 'availability zone')
    .option('--renew-secs <secs>', 'heartbeat interval (0: the server default, 30)', nonNegativeInt, 0)
    .option('--duration-secs <secs>', 'lease duration (0: the server default, 90)', nonNegativeInt, 0)
    .option('--attempts <n>', 'registration attempts while the server is down or unreachable', positiveInt, REGISTER_ATTEMPTS)
    .addOption(logFormatOption())
    .action(async (flags: ClientFlags & RegisterFlags) => {
      const reported = parseStatus(flags.status);
      if (reported === undefined) throw new CliError(`unknown status "${flags.status}": use one of ${SETTABLE_STATUSES.join(', ')}`, EXIT.usage);
      const instanceId = flags.id ?? `${flags.host}:${flags.app}:${flags.port}`;
      const client = new RosterClient(flags.server, clientOptions(flags));
      const agent = new InstanceAgent({
        client,
        logger: createLogger('warn', 2, flags.logFormat),
        startAttempts: 1,
        instance: {
          app: flags.app,
          instanceId,
          hostName: flags.host,
          ipAddr: flags.ip,
          port: { number: flags.port, enabled: flags.port > 0 },
          securePort: { number: flags.securePort, enabled: flags.securePort > 0 },
          status: reported,
          vipAddress: flags.vip ?? '',
          zone: flags.zone ?? '',
          metadata: flags.metadata,
          lease: { renewalIntervalSecs: flags.renewSecs, durationSecs: flags.durationSecs },
        },
      });
      // Signals first: Ctrl-C or SIGTERM must stop the retries below as well as the heartbeats.
      const abort = new AbortController();
      let stored: Instance | undefined;
      exitOnSignals({
        shutdown: async () => {
          abort.abort();
          try {
            await agent.stop();
            if (stored !== undefined && !flags.json) process.stdout.write(`cancelled ${stored.app}/${stored.instanceId}\n`);
          } finally {
            client.close();
          }
        },
        forceAfterMs: 12_000,
        report: (event, fields) => {
          if (event !== 'shutting down') process.stderr.write(`roster: ${event}${fields.err ? `: ${explain(fields.err, flags).message}` : ''}\n`);
        },
      });
      const clock = new SystemClock();
      for (let attempt = 1; stored === undefined; attempt++) {
        try {
          stored = await agent.start();
        } catch (err) {
          if (abort.signal.aborted) return;
          if (!isRetryable(err) || attempt >= flags.attempts) throw explain(err, flags);
          const delay = backoffDelay(attempt - 1, REGISTER_BACKOFF);
          process.stderr.write(`roster: ${explain(err, flags).message}; attempt ${attempt} of ${flags.attempts}, retrying in ${seconds(delay)}\n`);
          if (!(await sleep(clock, delay, abort.signal))) return;
        }
      }
      if (flags.json) print(Instance.toJSON(stored));
      else {
        process.stdout.write(
          `registered ${stored.app}/${stored.instanceId} (${statusName(stored.status)}); ` + `heartbeating every ${stored.lease?.renewalIntervalSecs ?? flags.renewSecs}s, Ctrl-C to cancel\n`,
        );
      }
    });

  program
    .command('peers')
    .description("show each peer's replication state (read from the node's HTTP port)")
    .addOption(new Option('--admin <host:port>', 'HTTP address of the node').env('ROSTER_ADMIN').default('127.0.0.1:8762'))
    .addOption(timeoutOption())
    .option('--json', 'machine-readable output')
    .action(async (flags: { admin: string; timeout: number; json?: boolean }) => {
      const report = (await fetchJson(`http://${flags.admin}/peers`, flags.timeout)) as PeersReport;
      if (flags.json) return print(report);
      process.stdout.write(`node ${report.nodeId} (${report.ready ? 'synced' : 'waiting for a peer snapshot'})\n`);
      const rows = report.peers.map((p) => [
        p.peer,
        p.connected ? 'connected' : 'down',
        String(p.queueDepth),
        String(p.inFlight),
        String(p.tasksSent),
        String(p.dropped),
        String(p.expired),
        String(p.reconnects),
        p.lastError ?? '',
      ]);
      process.stdout.write(table(['PEER', 'STATE', 'QUEUED', 'IN FLIGHT', 'SENT', 'DROPPED', 'EXPIRED', 'RECONNECTS', 'LAST ERROR'], rows));
    });

  program
    .command('xds')
    .description('proxyless gRPC (xDS) helpers')
    .command('bootstrap')
    .description('print a bootstrap file for xDS clients (point GRPC_XDS_BOOTSTRAP at it, or put it in GRPC_XDS_BOOTSTRAP_CONFIG)')
    .requiredOption('--server <target>', 'Roster gRPC address, HOST:PORT or a gRPC target (repeat for fallback servers)', collectList, [])
    .option('--zone <zone>', "the client's zone (its locality; grpc-js needs one)", 'default')
    .option('--region <region>', "the client's region")
    .option('--node-id <id>', 'the client node id the server logs', `${hostname()}-xds`)
    .action((flags: { server: string[]; zone: string; region?: string; nodeId: string }) => {
      let bootstrap: ReturnType<typeof bootstrapConfig>;
      try {
        bootstrap = bootstrapConfig({ servers: flags.server, zone: flags.zone, nodeId: flags.nodeId, ...(flags.region === undefined ? {} : { region: flags.region }) });
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err), EXIT.usage);
      }
      process.stdout.write(`${JSON.stringify(bootstrap, null, 2)}\n`);
    });

  addAgentCommand(program);
}

async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
    throw new CliError(`cannot reach ${url} (${cause}): is the node running, and is this its HTTP port? (--admin, ROSTER_ADMIN)`, EXIT.unreachable);
  }
  if (!res.ok) throw new CliError(`${url} answered HTTP ${res.status}`, EXIT.failure);
  return res.json();
}

interface RegisterFlags {
  app: string;
  id?: string;
  host: string;
  ip: string;
  port: number;
  securePort: number;
  status: string;
  metadata: Record<string, string>;
  vip?: string;
  zone?: string;
  renewSecs: number;
  durationSecs: number;
  attempts: number;
  logFormat: LogFormat;
}

function timeoutOption(): Option {
  return new Option('--timeout <duration>', 'give up on the server after this long (e.g. 500ms, 5s, 1m)').default(parseDuration(DEFAULT_TIMEOUT), DEFAULT_TIMEOUT).argParser(parseDuration);
}

function logFormatOption(): Option {
  return new Option('--log-format <format>', 'how the agent logs on stderr: auto (pretty on a terminal), json, pretty').choices(['auto', 'json', 'pretty']).default('auto');
}

function clientCommand(parent: Command, name: string): Command {
  return addClientSecurityOptions(
    parent
      .command(name)
      .addOption(new Option('--server <host:port>', 'gRPC address of a Roster node').env('ROSTER_SERVER').default('127.0.0.1:8761'))
      .addOption(timeoutOption())
      .option('--json', 'machine-readable output (one JSON document; NDJSON for watch)'),
  );
}

/** The call timeout, TLS and token options from the flags; an unreadable file is a usage error naming the flag. */
function clientOptions(flags: ClientFlags): ReturnType<typeof clientSecurityOptions> & { timeoutMs: number } {
  try {
    return { ...clientSecurityOptions(flags), timeoutMs: flags.timeout };
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}

async function withClient(flags: ClientFlags, run: (client: RosterClient) => Promise<void>): Promise<void> {
  const client = new RosterClient(flags.server, clientOptions(flags));
  try {
    await run(client);
  } catch (err) {
    throw explain(err, flags);
  } finally {
    client.close();
  }
}

function print(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document)}\n`);
}

function formatMetadata(metadata: Readonly<Record<string, string>>): string {
  const keys = Object.keys(metadata).sort();
  return keys.length === 0 ? '(none)' : keys.map((k) => `${k}=${metadata[k]}`).join(' ');
}

/** `500ms`, `5s`, `1m`, or a bare number of seconds, to milliseconds (1 ms .. 1 h). */
function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 500ms, 5s or 1m');
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms < 1 || ms > 3_600_000) throw new InvalidArgumentError('expected a duration between 1ms and 1h');
  return Math.round(ms);
}

function nonNegativeInt(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(text);
}

function positiveInt(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidArgumentError('expected a positive integer');
  return Number(text);
}

function collectList(value: string, into: string[]): string[] {
  return [...into, value];
}

function collectMetadata(entry: string, into: Record<string, string>): Record<string, string> {
  const eq = entry.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${entry}"`);
  return { ...into, [entry.slice(0, eq)]: entry.slice(eq + 1) };
}
