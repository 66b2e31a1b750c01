import { readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { Option, type Command } from 'commander';
import type { RosterClientOptions } from '../client/index.js';

/** The security flags of the client commands (each also from its env var, so secrets stay out of `ps`). */
export interface ClientSecurityFlags {
  token?: string;
  tokenFile?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Adds --token, --token-file, --tls, --tls-ca, --tls-cert and --tls-key to a client command. */
export function addClientSecurityOptions(command: Command): Command {
  return command
    .addOption(new Option('--token <token>', 'bearer token for a node with a credentials file (prefer ROSTER_TOKEN or --token-file)').env('ROSTER_TOKEN'))
    .addOption(new Option('--token-file <path>', 'file holding the bearer token').env('ROSTER_TOKEN_FILE'))
    .addOption(new Option('--tls', 'connect with TLS, verifying the node against the system roots (or --tls-ca)').env('ROSTER_TLS'))
    .addOption(new Option('--tls-ca <file>', 'PEM CA that signed the node certificate (implies --tls)').env('ROSTER_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'PEM client certificate, for a node that requires mTLS').env('ROSTER_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'PEM key of --tls-cert').env('ROSTER_TLS_KEY'));
}

/** The client options the flags ask for; throws with the flag named when a file cannot be read. */
export function clientSecurityOptions(flags: ClientSecurityFlags): Pick<RosterClientOptions, 'credentials' | 'token'> {
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (flags.token !== undefined && flags.tokenFile !== undefined) throw new Error('give --token or --token-file, not both');
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const token = flags.tokenFile !== undefined ? read('--token-file', flags.tokenFile).toString('utf8').trim() : flags.token;
  const tls = flags.tls === true || flags.tlsCa !== undefined || flags.tlsCert !== undefined;
  let channel: ChannelCredentials | undefined;
  if (tls) {
    channel = credentials.createSsl(
      flags.tlsCa !== undefined ? read('--tls-ca', flags.tlsCa) : null,
      flags.tlsKey !== undefined ? read('--tls-key', flags.tlsKey) : null,
      flags.tlsCert !== undefined ? read('--tls-cert', flags.tlsCert) : null,
    );
  }
  return { ...(channel ? { credentials: channel } : {}), ...(token !== undefined && token !== '' ? { token } : {}) };
}

/** The same options from the environment alone (`ROSTER_TOKEN`, `ROSTER_TOKEN_FILE`, `ROSTER_TLS`, `ROSTER_TLS_CA`, `ROSTER_TLS_CERT`, `ROSTER_TLS_KEY`), for the agent. */
export function clientSecurityFromEnv(env: NodeJS.ProcessEnv): Pick<RosterClientOptions, 'credentials' | 'token'> {
  const value = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const flags: ClientSecurityFlags = {};
  const set = <K extends keyof ClientSecurityFlags>(key: K, v: ClientSecurityFlags[K] | undefined): void => {
    if (v !== undefined) flags[key] = v;
  };
  set('token', value('ROSTER_TOKEN'));
  set('tokenFile', value('ROSTER_TOKEN_FILE'));
  set('tls', value('ROSTER_TLS') !== undefined && !['0', 'false', 'no', 'off'].includes(value('ROSTER_TLS')!.toLowerCase()) ? true : undefined);
  set('tlsCa', value('ROSTER_TLS_CA'));
  set('tlsCert', value('ROSTER_TLS_CERT'));
  set('tlsKey', value('ROSTER_TLS_KEY'));
  return clientSecurityOptions(flags);
}
