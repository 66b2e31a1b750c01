import type { Command } from 'commander';
import { RosterClient } from '../client/roster-client.js';
import { clientSecurityFromEnv } from '../cli/client-security.js';
import { createLogger } from '../cli/logging.js';
import { exitOnSignals } from '../cli/signals.js';
import { startHttpServer } from '../http/server.js';
import { AgentConfigError, describeAgentSettings, loadAgentConfig } from './config.js';
import { Sidecar } from './sidecar.js';

/** Exit code of a configuration problem (the CLI's "bad usage or configuration"). */
const EXIT_USAGE = 2;

/**
 * Adds `roster agent`: the sidecar that registers the local application(s), probes them,
 * heartbeats on one stream, serves /healthz and /readyz, and drains on SIGTERM.
 */
export function addAgentCommand(program: Command): void {
  const agent = program
    .command('agent')
    .description('sidecar: register the local application(s), probe them, drain on SIGTERM (OUT_OF_SERVICE, wait, cancel)')
    .option('--config <path>', 'JSON file: agent settings by name, and "apps": [{...}] for several applications [env ROSTER_AGENT_CONFIG]');
  for (const s of describeAgentSettings()) agent.option(`--${s.flag} <value>`, `${s.help} [env ${s.envVar}]`);
  agent.action(async (flags: Record<string, unknown>) => {
    let config: ReturnType<typeof loadAgentConfig>;
    try {
      config = loadAgentConfig(flags);
    } catch (err) {
      if (!(err instanceof AgentConfigError)) throw err;
      process.stderr.write(`roster: ${err.message}\n`);
      process.exit(EXIT_USAGE);
    }
    const logger = createLogger(config.logLevel);
    // TLS and token from ROSTER_TLS_CA, ROSTER_TOKEN_FILE... as the client commands take them.
    const client = new RosterClient(config.servers, { logger, ...(config.serverDns ? { dns: config.serverDns } : {}), ...clientSecurityFromEnv(process.env) });
    const sidecar = new Sidecar({ client, apps: config.apps, drainSecs: config.drainSecs, logger });
    const http = await startHttpServer({ host: config.httpHost, port: config.httpPort, logger, mounts: [sidecar.mount()] });
    exitOnSignals({
      shutdown: async () => {
        await sidecar.drain();
        await client.close();
        await http.close();
      },
      // The drain period, plus time for the cancels and the HTTP server.
      forceAfterMs: config.drainSecs * 1000 + 15_000,
      report: (event, fields) => logger[event === 'shutting down' ? 'info' : 'error'](fields, event),
    });
    await sidecar.start();
    logger.info({ apps: config.apps.map((a) => `${a.app}/${a.instanceId}`), httpPort: http.port, servers: client.servers }, 'agent running');
  });
}
