import { hostname } from 'node:os';
import { status as grpcStatus } from '@grpc/grpc-js';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InstanceAgent, isServiceError, RosterClient } from '../client/index.js';
import { Instance } from '../gen/roster/v1/instance.js';
import {
  ClearStatusOverrideResponse,
  GetApplicationResponse,
  GetInstanceResponse,
  SetStatusOverrideResponse,
  WatchResponse,
} from '../gen/roster/v1/registry_service.js';
import { addClientSecurityOptions, clientSecurityOptions, type ClientSecurityFlags } from './client-security.js';
import { ConfigError, describeSettings, loadConfig } from './config.js';
import {
  applicationsTable,
  changeLine,
  instanceDetails,
  instancesTable,
  parseStatus,
  statusName,
  table,
} from './format.js';
import { createLogger } from './logging.js';
import { startNode } from './node.js';
import { addAgentCommand } from '../agent/command.js';
import type { PeersReport } from '../replication/replicator.js';
import { exitOnSignals } from './signals.js';
import { bootstrapConfig } from '../xds/bootstrap.js';

/**
 * Exit codes: 0 success; 1 an RPC or runtime failure (the message names the gRPC status);
 * 2 bad usage or configuration. Errors are one line on stderr: `roster: NOT_FOUND: ...`.
 */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** A failure with its exit code, reported as one line on stderr. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface ClientFlags extends ClientSecurityFlags {
  server: string;
  json?: boolean;
}

function buildProgram(): Command {
  const program = new Command('roster')
    .description('Roster: a gRPC-native, peer-replicated service registry')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', '\nExit codes: 0 ok; 1 RPC or runtime failure (stderr names the gRPC status); 2 bad usage or configuration.')
    .exitOverride();

  const serve = program
    .command('serve')
    .description('run a registry node (gRPC on --port, /metrics /healthz /readyz on --http-port)')
    .option('--config <path>', 'JSON config file (precedence: defaults < file < ROSTER_* env < flags)');
  for (const s of describeSettings()) serve.option(`--${s.flag} ${s.boolean ? '[value]' : '<value>'}`, `${s.help} [env ${s.envVar}]`);
  serve.action(async (flags: Record<string, unknown>) => {
    const config = loadConfig(flags);
    const logger = createLogger(config.logLevel);
    const node = await startNode(config, logger);
    exitOnSignals({
      shutdown: () => node.stop(),
      forceAfterMs: config.shutdownGraceMs + 2_000,
      report: (event, fields) => logger[event === 'shutting down' ? 'info' : 'error'](fields, event),
    });
  });

  clientCommand(program, 'apps')
    .description('list applications and their instance counts per status')
    .action(async (flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        const snapshot = await client.listApplications();
        if (flags.json) {
          print({ revision: snapshot.revision, reconcileHash: snapshot.reconcileHash, instances: snapshot.instances.map((i) => Instance.toJSON(i)) });
        } else {
          if (snapshot.instances.length > 0) process.stdout.write(applicationsTable(snapshot.instances));
          process.stdout.write(`revision ${snapshot.revision}, ${snapshot.instances.length} instances\n`);
        }
      });
    });

  clientCommand(program, 'get')
    .description("show an application's instances, or one instance in full")
    .argument('<app>', 'application name')
    .argument('[id]', 'instance id')
    .action(async (app: string, id: string | undefined, flags: ClientFlags) => {
      await withClient(flags, async (client) => {
        if (id === undefined) {
          const res = await client.getApplication(app);
          if (flags.json) print(GetApplicationResponse.toJSON(res));
          else if (res.instances.length === 0) process.stdout.write(`no instances of ${app}\n`);
          else process.stdout.write(instancesTable(res.instances));
        } else {
          const res = await client.getInstance(app, id);
          if (flags.json) print(GetInstanceResponse.toJSON(res));
          else if (res.instance !== undefined) process.stdout.write(instanceDetails(res.instance));
        }
      });
    });

  clientCommand(program, 'status')
    .description('set an operator status override (UP, DOWN, STARTING, OUT_OF_SERVICE), or --clear it')
    .argument('<app>', 'application name')
    .argument('<id>', 'instance id')
    .argument('[status]', 'the status to force')
    .option('--clear', 'remove the override: the instance re-registers with its own status')
    .action(async (app: string, id: string, text: string | undefined, flags: ClientFlags & { clear?: boolean }) => {
      if (Boolean(flags.clear) === (text !== undefined)) throw new CliError('give either STATUS or --clear', EXIT_USAGE);
      const forced = text === undefined ? undefined : parseStatus(text);
      if (text !== undefined && forced === undefined) throw new CliError(`unknown status "${text}"`, EXIT_USAGE);
      await withClient(flags, async (client) => {
        if (forced === undefined) {
          const res = await client.clearStatusOverride(app, id);
          if (flags.json) print(ClearStatusOverrideResponse.toJSON(res));
          else process.stdout.write(`${app}/${id}: override cleared, status ${statusName(res.instance?.status ?? 0)}\n`);
        } else {
          const res = await client.setStatusOverride(app, id, forced);
          if (flags.json) print(SetStatusOverrideResponse.toJSON(res));
          else process.stdout.write(`${app}/${id}: override ${statusName(forced)}, status ${statusName(res.instance?.status ?? 0)}\n`);
        }
      });
    });

  clientCommand(program, 'watch')
    .description('print changes as they happen (NDJSON with --json) until Ctrl-C')
    .argument('[app]', 'only this application')
    .option('--vip <vip>', 'only instances serving this VIP')
    .option('--since <revision>', 'start after this revision (default: from now)', nonNegativeInt)
    .action(async (app: string | undefined, flags: ClientFlags & { vip?: string; since?: number }) => {
      const client = new RosterClient(flags.server, clientOptions(flags));
      const abort = new AbortController();
      exitOnSignals({ shutdown: async () => abort.abort(), forceAfterMs: 2_000 });
      let since = flags.since;
      // Each pass ends on resync_required; bounded by the signal (the command runs until Ctrl-C).
      while (!abort.signal.aborted) {
        const changes = client.watch(
          { app: app ?? '', vip: flags.vip ?? '', ...(since === undefined ? {} : { sinceRevision: since }) },
          {
            signal: abort.signal,
            onRetry: (err, delayMs) =>
              process.stderr.write(`roster: watch stream failed (${describeError(err)}); reconnecting in ${Math.round(delayMs)} ms\n`),
          },
        );
        for await (const message of changes) {
          if (flags.json) print(WatchResponse.toJSON(message));
          else for (const change of message.changes) process.stdout.write(changeLine(change));
          if (message.resyncRequired) {
            process.stderr.write('roster: watch cursor is older than the change log; continuing from the current revision\n');
          }
        }
        since = undefined;
      }
      client.close();
    });

  clientCommand(program, 'register')
    .description('register an instance and keep it alive until Ctrl-C/SIGTERM, then cancel it (a dev helper)')
    .requiredOption('--app <app>', 'application name')
    .option('--id <id>', 'instance id (default: HOST:APP:PORT)')
    .option('--host <host>', 'host name', hostname())
    .option('--ip <ip>', 'IP address', '127.0.0.1')
    .option('--port <port>', 'plain port (0: none)', nonNegativeInt, 0)
    .option('--secure-port <port>', 'TLS port (0: none)', nonNegativeInt, 0)
    .option('--status <status>', 'the status the instance reports', 'UP')
    .option('--metadata <key=value>', 'a metadata entry (repeatable)', collectMetadata, {} as Record<string, string>)
    .option('--vip <vip>', 'VIP address(es), comma-separated')
    .option('--zone <zone>', 'availability zone')
    .option('--renew-secs <secs>', 'heartbeat interval (server default when omitted)', nonNegativeInt, 0)
    .option('--duration-secs <secs>', 'lease duration (server default when omitted)', nonNegativeInt, 0)
    .action(async (flags: ClientFlags & RegisterFlags) => {
      const reported = parseStatus(flags.status);
      if (reported === undefined) throw new CliError(`unknown status "${flags.status}"`, EXIT_USAGE);
      const instanceId = flags.id ?? `${flags.host}:${flags.app}:${flags.port}`;
      const client = new RosterClient(flags.server, clientOptions(flags));
      const agent = new InstanceAgent({
        client,
        logger: createLogger('warn', 2),
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
      let stored: Instance;
      try {
        stored = await agent.start();
      } finally {
        if (agent.registrations === 0) client.close();
      }
      if (flags.json) print(Instance.toJSON(stored));
      else {
        process.stdout.write(
          `registered ${stored.app}/${stored.instanceId} (${statusName(stored.status)}); ` +
            `heartbeating every ${stored.lease?.renewalIntervalSecs ?? flags.renewSecs}s, Ctrl-C to cancel\n`,
        );
      }
      exitOnSignals({
        shutdown: async () => {
          try {
            await agent.stop();
            if (!flags.json) process.stdout.write(`cancelled ${stored.app}/${stored.instanceId}\n`);
          } finally {
            client.close();
          }
        },
        forceAfterMs: 12_000,
        report: (event, fields) => {
          if (event !== 'shutting down') process.stderr.write(`roster: ${event}${fields.err ? `: ${describeError(fields.err)}` : ''}\n`);
        },
      });
    });

  program
    .command('peers')
    .description("show each peer's replication state (read from the node's admin HTTP port)")
    .addOption(new Option('--admin <host:port>', 'admin HTTP address of the node').env('ROSTER_ADMIN').default('127.0.0.1:8762'))
    .option('--json', 'machine-readable output')
    .action(async (flags: { admin: string; json?: boolean }) => {
      const report = (await fetchJson(`http://${flags.admin}/peers`)) as PeersReport;
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
      let bootstrap;
      try {
        bootstrap = bootstrapConfig({ servers: flags.server, zone: flags.zone, nodeId: flags.nodeId, ...(flags.region === undefined ? {} : { region: flags.region }) });
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err), EXIT_USAGE);
      }
      process.stdout.write(`${JSON.stringify(bootstrap, null, 2)}\n`);
    });

  addAgentCommand(program);
  return program;
}


async function fetchJson(url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new CliError(`cannot reach ${url}: ${err instanceof Error ? err.message : String(err)}`, EXIT_FAILURE);
  }
  if (!res.ok) throw new CliError(`${url} answered HTTP ${res.status}`, EXIT_FAILURE);
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
}

function clientCommand(program: Command, name: string): Command {
  return addClientSecurityOptions(
    program
      .command(name)
      .addOption(new Option('--server <host:port>', 'Roster node to talk to').env('ROSTER_SERVER').default('127.0.0.1:8761'))
      .option('--json', 'machine-readable output (one JSON document; NDJSON for watch)'),
  );
}

/** TLS and token options from the flags; an unreadable file is a usage error naming the flag. */
function clientOptions(flags: ClientSecurityFlags): ReturnType<typeof clientSecurityOptions> {
  try {
    return clientSecurityOptions(flags);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT_USAGE);
  }
}

async function withClient(flags: ClientFlags, run: (client: RosterClient) => Promise<void>): Promise<void> {
  const client = new RosterClient(flags.server, clientOptions(flags));
  try {
    await run(client);
  } finally {
    client.close();
  }
}

function print(document: unknown): void {
  process.stdout.write(JSON.stringify(document) + '\n');
}

function nonNegativeInt(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(text);
}

function collectList(value: string, into: string[]): string[] {
  return [...into, value];
}

function collectMetadata(entry: string, into: Record<string, string>): Record<string, string> {
  const eq = entry.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value');
  return { ...into, [entry.slice(0, eq)]: entry.slice(eq + 1) };
}

function describeError(err: unknown): string {
  if (isServiceError(err)) return `${grpcStatus[err.code] ?? err.code}: ${(err.details || err.message).replace(/\s+/g, ' ').trim()}`;
  return err instanceof Error ? err.message : String(err);
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    const exitCode = err instanceof ConfigError || (err instanceof CliError && err.exitCode === EXIT_USAGE) ? EXIT_USAGE : EXIT_FAILURE;
    process.stderr.write(`roster: ${describeError(err)}\n`);
    process.exit(exitCode);
  }
}

await main(process.argv);
