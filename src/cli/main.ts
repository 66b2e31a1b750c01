import { Command, CommanderError } from 'commander';
import { ConfigError, describeSettings, loadConfig } from './config.js';
import { CliError, EXIT, EXIT_CODES_HELP, explain } from './failures.js';
import { createLogger } from './logging.js';
import { startNode } from './node.js';
import { exitOnSignals } from './signals.js';
import { ROSTER_VERSION } from './version.js';

/**
 * Told to bin/roster.js, which holds some V8 settings while the program loads and starts (see
 * there): a node once it serves, any other command once its modules are loaded.
 */
function started(): void {
  (process as NodeJS.EventEmitter).emit('roster:started');
}

/** The program with `serve`; {@link main} adds the other commands. */
function buildProgram(): Command {
  const program = new Command('roster')
    .description('Roster: a gRPC-native, peer-replicated service registry')
    .version(ROSTER_VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();

  const serve = program
    .command('serve')
    .description('run a registry node (gRPC on --port, /metrics /healthz /readyz on --http-port)')
    .option('--config <path>', 'JSON config file (precedence: defaults < file < ROSTER_* env < flags)');
  for (const s of describeSettings()) {
    const fallback = s.fallback === undefined ? '' : ` (default: ${s.fallback})`;
    serve.option(`--${s.flag} ${s.boolean ? '[value]' : '<value>'}`, `${s.help}${fallback} [env ${s.envVar}]`);
  }
  serve.action(async (flags: Record<string, unknown>) => {
    const config = loadConfig(flags);
    const logger = createLogger(config.logLevel, 1, config.logFormat);
    // Signals first, so a SIGTERM that lands while the node starts still stops it gracefully.
    const node = startNode(config, logger);
    exitOnSignals({
      shutdown: async () => (await node).stop(),
      forceAfterMs: config.shutdownGraceMs + 2_000,
      report: (event, fields) => logger[event === 'shutting down' ? 'info' : 'error'](fields, event),
    });
    await node;
    started();
  });
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    const program = buildProgram();
    // A node loads none of the other commands' modules (the client library, the agent): about
    // 1 MiB of heap it would hold for as long as it runs.
    if (argv[2] !== 'serve') {
      (await import('./commands.js')).addClientCommands(program);
      started();
    }
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    const failure = err instanceof ConfigError ? new CliError(err.message, EXIT.usage) : explain(err, { server: '', timeout: 0 });
    process.stderr.write(`roster: ${failure.message}\n`);
    process.exit(failure.exitCode);
  }
}

await main(process.argv);
