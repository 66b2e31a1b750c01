import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { HEALTH_SERVICE_DEFINITION, type HealthCheckResponse } from '../grpc/health.js';

/**
 * How to tell whether an application is healthy:
 * - `http://HOST:PORT/PATH` (or https): a GET answered with an expected status;
 * - `grpc://HOST:PORT[/SERVICE]`: grpc.health.v1 Check answered SERVING ("" = the whole server);
 * - `tcp://HOST:PORT`: a TCP connection is accepted;
 * - `exec:COMMAND`: a shell command exits 0;
 * - `none`: always healthy (the agent only keeps the registration).
 */
export type Probe =
  | { readonly kind: 'http'; readonly url: string; readonly expect: StatusRange }
  | { readonly kind: 'grpc'; readonly address: string; readonly service: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'exec'; readonly command: string }
  | { readonly kind: 'none' };

/** Inclusive HTTP status bounds, e.g. 200–399. */
export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** One probe's verdict, with a short reason for logs and /healthz. */
export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** `200` or `200-399`; throws naming the value otherwise. */
export function parseStatusRange(text: string): StatusRange {
  const match = /^(\d{3})(?:-(\d{3}))?$/.exec(text.trim());
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  if (!match || min < 100 || max > 599 || min > max) throw new Error(`expected status "${text}" must be NNN or NNN-NNN (100-599)`);
  return { min, max };
}

/** Parses a probe spec (see {@link Probe}); throws a message naming the spec when it is not one. */
export function parseProbe(spec: string, expectStatus = '200-399'): Probe {
  const text = spec.trim();
  if (text === '' || text === 'none') return { kind: 'none' };
  if (text.startsWith('exec:')) {
    const command = text.slice(5).trim();
    if (command === '') throw new Error('probe "exec:" needs a command');
    return { kind: 'exec', command };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`probe "${spec}" must be http(s)://host:port/path, grpc://host:port[/service], tcp://host:port, exec:command or none`);
  }
  const port = Number(url.port);
  switch (url.protocol) {
    case 'http:':
    case 'https:':
      return { kind: 'http', url: url.href, expect: parseStatusRange(expectStatus) };
    case 'grpc:':
    case 'tcp:':
      if (url.hostname === '' || !(port > 0)) throw new Error(`probe "${spec}" needs host:port`);
      return url.protocol === 'tcp:'
        ? { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port }
        : { kind: 'grpc', address: `${url.hostname}:${port}`, service: decodeURIComponent(url.pathname.replace(/^\//, '')) };
    default:
      throw new Error(`probe "${spec}": unknown scheme ${url.protocol} (http, https, grpc, tcp, exec, none)`);
  }
}

/** Runs `probe` once; never throws, and gives up after `timeoutMs`. */
export async function runProbe(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  try {
    switch (probe.kind) {
      case 'none':
        return { ok: true, detail: 'no probe' };
      case 'http':
        return await httpProbe(probe.url, probe.expect, timeoutMs);
      case 'grpc':
        return await grpcProbe(probe.address, probe.service, timeoutMs);
      case 'tcp':
        return await tcpProbe(probe.host, probe.port, timeoutMs);
      case 'exec':
        return await execProbe(probe.command, timeoutMs);
    }
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

async function httpProbe(url: string, expect: StatusRange, timeoutMs: number): Promise<ProbeResult> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  await res.body?.cancel();
  const ok = res.status >= expect.min && res.status <= expect.max;
  return { ok, detail: `HTTP ${res.status}` };
}

function grpcProbe(address: string, service: string, timeoutMs: number): Promise<ProbeResult> {
  const client = new Client(address, credentials.createInsecure());
  const check = HEALTH_SERVICE_DEFINITION.Check;
  return new Promise<ProbeResult>((resolve) => {
    client.makeUnaryRequest(check.path, check.requestSerialize, check.responseDeserialize, { service }, { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, res?: HealthCheckResponse) => {
      if (err) resolve({ ok: false, detail: `gRPC ${err.code}: ${err.details}` });
      else resolve({ ok: res?.status === 'SERVING', detail: `gRPC health ${res?.status ?? 'UNKNOWN'}` });
    });
  }).finally(() => client.close());
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done({ ok: true, detail: 'TCP connected' }));
    socket.once('timeout', () => done({ ok: false, detail: `TCP connect timed out after ${timeoutMs} ms` }));
    socket.once('error', (err) => done({ ok: false, detail: `TCP ${err.message}` }));
  });
}

/** The command runs in `sh -c` in its own process group, killed whole on timeout. */
function execProbe(command: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: 'ignore', detached: true });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `exec: ${err.message}` });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve({ ok: false, detail: `exec timed out after ${timeoutMs} ms` });
      else resolve({ ok: code === 0, detail: `exec exit ${code ?? signal}` });
    });
  });
}
