import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { RosterNode } from '../../src/cli/node.js';
import { RegistryServiceService } from '../../src/gen/roster/v1/registry_service.js';
import { ReplicationAction, ReplicationServiceService } from '../../src/gen/roster/v1/replication_service.js';
import { InstanceStatus } from '../../src/gen/roster/v1/instance.js';
import { recordToProto } from '../../src/grpc/convert.js';
import { registration } from '../core/fixtures.js';
import { startTestNode } from '../client/harness.js';
import { protoInstance, WAIT_MS } from '../grpc/helpers.js';

/** Principals of the credentials file, one per role, plus a `register` limited to app billing. */
const TOKENS = {
  read: 'token-read-0123456789',
  register: 'token-register-0123456789',
  scoped: 'token-scoped-0123456789',
  operate: 'token-operate-0123456789',
  replicate: 'token-replicate-0123456789',
} as const;

const CREDENTIALS = {
  principals: [
    { name: 'reader', token: TOKENS.read, roles: ['read'] },
    { name: 'registrar', token: TOKENS.register, roles: ['register'] },
    { name: 'billing-agent', token: TOKENS.scoped, roles: ['register'], apps: ['Billing'] },
    { name: 'operator', token: TOKENS.operate, roles: ['operate'] },
    { name: 'peer', token: TOKENS.replicate, roles: ['replicate'] },
  ],
};

/** Who calls, with which token, on which app. `scoped-other` is the billing-only credential on app `other`. */
const CALLERS = ['anonymous', 'unknown', 'read', 'register', 'scoped', 'scoped-other', 'operate', 'replicate'] as const;
type Caller = (typeof CALLERS)[number];

const tokenOf = (caller: Caller): string | undefined => (caller === 'anonymous' ? undefined : caller === 'unknown' ? 'token-nobody-0123456789' : TOKENS[caller === 'scoped-other' ? 'scoped' : caller]);
const appOf = (caller: Caller): string => (caller === 'scoped-other' ? 'other' : 'billing');

type Kind = 'unary' | 'server' | 'bidi';
interface Row {
  readonly path: string;
  readonly kind: Kind;
  readonly request: (app: string) => Buffer;
  /** The callers that get through; every other caller is refused. */
  readonly allowed: readonly Caller[];
}

const ALL: readonly Caller[] = CALLERS;
const WRITERS: readonly Caller[] = ['register', 'scoped'];

function rpc(definition: grpc.ServiceDefinition, name: string, allowed: readonly Caller[], request: (app: string) => unknown): Row {
  const method = definition[name[0]!.toLowerCase() + name.slice(1)]!;
  const kind: Kind = method.requestStream ? 'bidi' : method.responseStream ? 'server' : 'unary';
  return { path: method.path, kind, request: (app) => method.requestSerialize(request(app)), allowed };
}

const R = RegistryServiceService as unknown as grpc.ServiceDefinition;
const P = ReplicationServiceService as unknown as grpc.ServiceDefinition;
const id = (app: string): { app: string; instanceId: string } => ({ app, instanceId: 'i-1' });

/**
 * The documented matrix: every RPC served on the gRPC port and who may call it. A service
 * served but missing here fails the test, so a new face must add its rows.
 */
const ROWS: readonly Row[] = [
  rpc(R, 'Register', WRITERS, (app) => ({ instance: protoInstance({ app, lastDirtyTimestamp: Date.now() }) })),
  rpc(R, 'Heartbeat', WRITERS, (app) => ({ ...id(app), lastDirtyTimestamp: 0 })),
  rpc(R, 'Heartbeats', WRITERS, (app) => ({ batchId: 1, heartbeats: [{ ...id(app), lastDirtyTimestamp: 0 }] })),
  rpc(R, 'Cancel', [...WRITERS, 'operate'], id),
  rpc(R, 'SetStatusOverride', ['operate'], (app) => ({ ...id(app), status: InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE })),
  rpc(R, 'ClearStatusOverride', ['operate'], id),
  rpc(R, 'UpdateMetadata', ['operate'], (app) => ({ ...id(app), set: { k: 'v' }, remove: [] })),
  rpc(R, 'GetInstance', ['read'], id),
  rpc(R, 'ListApplications', ['read'], () => ({ chunkSize: 0 })),
  rpc(R, 'GetApplication', ['read'], (app) => ({ app, pageSize: 0, pageToken: '' })),
  rpc(R, 'ListByVip', ['read'], () => ({ vip: 'billing', secure: false, pageSize: 0, pageToken: '' })),
  rpc(R, 'GetDelta', ['read'], () => ({ sinceRevision: 0, maxChanges: 0, nodeId: '' })),
  rpc(R, 'Watch', ['read'], (app) => ({ app, vip: '', nodeId: '' })),
  rpc(P, 'Replicate', ['replicate'], (app) => ({
    batchId: 1,
    tasks: [
      {
        action: ReplicationAction.REPLICATION_ACTION_REGISTER,
        instance: recordToProto({ ...registration({ app, instanceId: 'from-peer', lastDirtyTimestamp: Date.now() }), overriddenStatus: undefined, lastUpdatedTimestamp: 0 }),
        originTimestamp: 0,
      },
    ],
  })),
  rpc(P, 'Snapshot', ['replicate'], () => ({ apps: [] })),
  rpc(P, 'Digest', ['replicate'], () => ({})),
  // DiscoveryRequest{resource_names: [app] (3), type_url: Listener (4)}: a proxyless client's first LDS request.
  { path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', kind: 'bidi', request: discoveryRequest, allowed: ['read'] },
  { path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources', kind: 'bidi', request: () => Buffer.alloc(0), allowed: ['read'] },
  { path: '/grpc.health.v1.Health/Check', kind: 'unary', request: () => Buffer.alloc(0), allowed: ALL },
  // list_services (field 7) = "": the smallest reflection request.
  { path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', kind: 'bidi', request: () => Buffer.from([0x3a, 0x00]), allowed: ['read'] },
  { path: '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', kind: 'bidi', request: () => Buffer.from([0x3a, 0x00]), allowed: ['read'] },
];

const raw = (b: Buffer): Buffer => b;

function discoveryRequest(app: string): Buffer {
  const field = (n: number, value: string): Buffer => {
    const bytes = Buffer.from(value);
    return Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
  };
  return Buffer.concat([field(3, app), field(4, 'type.googleapis.com/envoy.config.listener.v3.Listener')]);
}

/** One call of `row` as `caller`; resolves with the status (OK once a first response arrives). */
function callAs(client: grpc.Client, row: Row, caller: Caller): Promise<{ code: grpc.status; details: string; response?: Buffer }> {
  const metadata = new grpc.Metadata();
  const token = tokenOf(caller);
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const options = { deadline: Date.now() + WAIT_MS };
  const request = row.request(appOf(caller));
  return new Promise((resolve) => {
    if (row.kind === 'unary') {
      client.makeUnaryRequest(row.path, raw, raw, request, metadata, options, (err, response) =>
        resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', ...(response ? { response } : {}) }),
      );
      return;
    }
    const call = row.kind === 'server' ? client.makeServerStreamRequest(row.path, raw, raw, request, metadata, options) : client.makeBidiStreamRequest(row.path, raw, raw, metadata, options);
    let done = false;
    const finish = (code: grpc.status, details: string, response?: Buffer): void => {
      if (done) return;
      done = true;
      resolve({ code, details, ...(response ? { response } : {}) });
      call.cancel();
    };
    call.on('data', (response: Buffer) => finish(grpc.status.OK, '', response));
    call.on('error', (err: grpc.ServiceError) => finish(err.code, err.details));
    call.on('end', () => finish(grpc.status.OK, ''));
    if (row.kind === 'bidi') (call as grpc.ClientDuplexStream<Buffer, Buffer>).write(request);
  });
}

/** Service names from a reflection list_services response (field 6 → repeated field 1 → field 1). */
function servicesOf(response: Buffer): string[] {
  const names: string[] = [];
  const outer = new BinaryReader(response);
  while (outer.pos < outer.len) {
    const [field, wire] = outer.tag();
    if (field !== 6 || wire !== WireType.LengthDelimited) {
      outer.skip(wire, field);
      continue;
    }
    const list = new BinaryReader(outer.bytes());
    while (list.pos < list.len) {
      const [f, w] = list.tag();
      if (f !== 1) {
        list.skip(w, f);
        continue;
      }
      const service = new BinaryReader(list.bytes());
      while (service.pos < service.len) {
        const [sf, sw] = service.tag();
        if (sf === 1) names.push(service.string());
        else service.skip(sw, sf);
      }
    }
  }
  return names;
}

describe('every RPC and every HTTP endpoint × every role', () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-matrix-'));
  let node: RosterNode;
  let client: grpc.Client;
  /** Expected refusals by `method|reason`, to compare with /metrics. */
  const refusals = new Map<string, number>();

  const seed = (): void => {
    for (const app of ['billing', 'other']) {
      if (node.registry.record(app, 'i-1') === undefined) node.registry.register(registration({ app, instanceId: 'i-1', lastDirtyTimestamp: Date.now() }));
    }
  };
  const state = (): string => JSON.stringify({ revision: node.registry.revision, records: node.registry.snapshot().instances });

  before(async () => {
    const file = join(dir, 'credentials.json');
    writeFileSync(file, JSON.stringify(CREDENTIALS));
    node = await startTestNode({ credentialsFile: file });
    client = new grpc.Client(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every service the node serves has rows in the matrix', async () => {
    const reflection = ROWS.find((r) => r.path.includes('reflection.v1.'))!;
    const listed = await callAs(client, reflection, 'read');
    assert.equal(listed.code, grpc.status.OK);
    const served = servicesOf(listed.response!);
    assert.ok(served.includes('roster.v1.RegistryService'), `served: ${served.join(', ')}`);
    for (const service of served)
      assert.ok(
        ROWS.some((r) => r.path.startsWith(`/${service}/`)),
        `${service} is served but has no row in the matrix`,
      );
    for (const definition of [R, P]) {
      for (const method of Object.values(definition))
        assert.ok(
          ROWS.some((r) => r.path === method.path),
          `${method.path} has no row`,
        );
    }
  });

  for (const row of ROWS) {
    test(`gRPC ${row.path}`, async () => {
      for (const caller of CALLERS) {
        seed();
        const before = state();
        const result = await callAs(client, row, caller);
        const who = `${row.path} as ${caller}: ${grpc.status[result.code]} ${result.details}`;
        if (row.allowed.includes(caller)) {
          assert.ok(result.code !== grpc.status.UNAUTHENTICATED && result.code !== grpc.status.PERMISSION_DENIED, who);
          continue;
        }
        const expected = caller === 'anonymous' || caller === 'unknown' ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED;
        assert.equal(result.code, expected, who);
        assert.match(result.details, caller === 'anonymous' ? /requires a credential with role/ : caller === 'unknown' ? /not known/ : /lacks role|may not register app "other"/, who);
        assert.doesNotMatch(result.details, /token-/, 'a refusal never echoes a token');
        assert.equal(state(), before, `${who} changed the registry`);
        const key = `${row.path}|${expected === grpc.status.UNAUTHENTICATED ? 'unauthenticated' : 'permission_denied'}`;
        refusals.set(key, (refusals.get(key) ?? 0) + 1);
      }
    });
  }

  /**
   * Every route of the HTTP port and who may use it (`:app` is billing, or other for
   * `scoped-other`); health and metrics are open. A mounted route without a row fails.
   */
  const EUREKA_BODY = (app: string): string =>
    JSON.stringify({
      instance: {
        instanceId: 'i-1',
        app: app.toUpperCase(),
        hostName: 'h',
        ipAddr: '10.0.0.9',
        status: 'UP',
        port: { $: 8080, '@enabled': 'true' },
        dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
      },
    });
  interface HttpRow {
    readonly method: string;
    readonly route: string;
    readonly query?: string;
    readonly body?: (app: string) => string;
    /** A server-sent event stream: only its status is read. */
    readonly stream?: boolean;
    readonly allowed: readonly Caller[];
  }
  const HTTP_ROWS: readonly HttpRow[] = [
    { method: 'GET', route: '/healthz', allowed: ALL },
    { method: 'GET', route: '/readyz', allowed: ALL },
    { method: 'GET', route: '/metrics', allowed: ALL },
    { method: 'GET', route: '/peers', allowed: ['read'] },
    ...['/eureka', '/eureka/v2'].flatMap((prefix): HttpRow[] => [
      { method: 'POST', route: `${prefix}/apps/:app`, body: EUREKA_BODY, allowed: WRITERS },
      { method: 'PUT', route: `${prefix}/apps/:app/:id`, allowed: WRITERS },
      { method: 'DELETE', route: `${prefix}/apps/:app/:id`, allowed: [...WRITERS, 'operate'] },
      { method: 'PUT', route: `${prefix}/apps/:app/:id/status`, query: '?value=OUT_OF_SERVICE', allowed: ['operate'] },
      { method: 'DELETE', route: `${prefix}/apps/:app/:id/status`, allowed: ['operate'] },
      { method: 'PUT', route: `${prefix}/apps/:app/:id/metadata`, query: '?k=v', allowed: ['operate'] },
      { method: 'GET', route: `${prefix}/apps`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/apps/delta`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/apps/:app`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/apps/:app/:id`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/instances/:id`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/vips/:vip`, allowed: ['read'] },
      { method: 'GET', route: `${prefix}/svips/:vip`, allowed: ['read'] },
    ]),
    { method: 'GET', route: '/', allowed: ['read'] },
    { method: 'GET', route: '/dashboard/assets/:file', allowed: ['read'] },
    { method: 'GET', route: '/dashboard/api/overview', allowed: ['read'] },
    { method: 'GET', route: '/dashboard/api/apps', allowed: ['read'] },
    { method: 'GET', route: '/dashboard/api/apps/:app/instances', allowed: ['read'] },
    { method: 'GET', route: '/dashboard/api/events', stream: true, allowed: ['read'] },
    { method: 'PUT', route: '/dashboard/api/apps/:app/instances/:id/override', body: () => JSON.stringify({ status: 'OUT_OF_SERVICE' }), allowed: ['operate'] },
    { method: 'DELETE', route: '/dashboard/api/apps/:app/instances/:id/override', allowed: ['operate'] },
    { method: 'DELETE', route: '/dashboard/api/apps/:app/instances/:id', allowed: ['operate'] },
    // A write to no route at all still needs operate: closed by default.
    { method: 'POST', route: '/no-such-route', allowed: ['operate'] },
  ];

  test('every mounted HTTP route has a row in the matrix', () => {
    for (const route of node.httpRoutes) {
      const [method, path] = route.split(' ');
      if (method === 'HEAD') continue;
      assert.ok(
        HTTP_ROWS.some((r) => r.method === method && r.route === path),
        `${route} is mounted but has no row in the matrix`,
      );
    }
  });

  test('HTTP endpoints: 401 without a known credential, 403 without the role, nothing changed', async () => {
    const base = `http://127.0.0.1:${node.httpPort}`;
    for (const row of HTTP_ROWS) {
      for (const caller of CALLERS) {
        seed();
        const token = tokenOf(caller);
        const app = appOf(caller);
        const path = row.route.replace(':app', app).replace(':id', 'i-1').replace(':vip', 'billing').replace(':file', 'app.js') + (row.query ?? '');
        const before = state();
        const headers: Record<string, string> = { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
        if (row.body) headers['content-type'] = 'application/json';
        const res = await fetch(`${base}${path}`, { method: row.method, headers, ...(row.body ? { body: row.body(app) } : {}) });
        if (row.stream && res.ok) await res.body?.cancel();
        const body = row.stream && res.ok ? '' : await res.text();
        const who = `${row.method} ${path} as ${caller}: ${res.status} ${body.trim().slice(0, 200)}`;
        if (row.allowed.includes(caller)) {
          assert.ok(res.status !== 401 && res.status !== 403, who);
          continue;
        }
        assert.equal(state(), before, who);
        assert.equal(res.status, caller === 'anonymous' || caller === 'unknown' ? 401 : 403, who);
        if (res.status === 401) assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="roster"/);
      }
    }
    // Basic auth carries the token as the password (Eureka clients, browsers).
    const basic = await fetch(`${base}/peers`, { headers: { authorization: `Basic ${Buffer.from(`any:${TOKENS.read}`).toString('base64')}` } });
    assert.equal(basic.status, 200);
    assert.equal(basic.headers.get('x-content-type-options'), 'nosniff');
    // A Eureka client with the credential in its service URL registers.
    const registered = await fetch(`${base}/eureka/v2/apps/billing`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`agent:${TOKENS.scoped}`).toString('base64')}` },
      body: EUREKA_BODY('billing'),
    });
    assert.equal(registered.status, 204, await registered.text());
  });

  test('a browser write from another site is refused even with a valid credential', async () => {
    const base = `http://127.0.0.1:${node.httpPort}`;
    const path = '/dashboard/api/apps/billing/instances/i-1/override';
    const auth = { authorization: `Bearer ${TOKENS.operate}` };
    seed();
    const before = state();
    const foreign = await fetch(`${base}${path}`, { method: 'DELETE', headers: { ...auth, origin: 'https://evil.example' } });
    assert.equal(foreign.status, 403);
    assert.match(await foreign.text(), /cross-site write refused/);
    assert.equal(state(), before);
    const same = await fetch(`${base}${path}`, { method: 'DELETE', headers: { ...auth, origin: base } });
    assert.ok(same.status !== 403 && same.status !== 401, `${same.status}`);
    await same.text();
  });

  test('a declared body beyond the limit is refused 413 before any face reads it', async () => {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/eureka/apps/billing`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.register}` },
      body: 'x'.repeat(2 * 1024 * 1024),
    });
    assert.equal(res.status, 413);
  });

  test('refusals are counted in /metrics by method and reason, and no secret shows there or in /peers', async () => {
    const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    for (const [key, count] of refusals) {
      const [method, reason] = key.split('|');
      const line = text.split('\n').find((l) => l.startsWith(`roster_auth_refusals_total{surface="grpc",method="${method}",reason="${reason}"}`));
      assert.ok(line, `no refusal series for ${key}`);
      assert.equal(Number(line.split(' ').at(-1)), count, line);
    }
    assert.match(text, /roster_auth_refusals_total\{surface="http",method="GET",reason="unauthenticated"\} \d+/);
    const peers = await (await fetch(`http://127.0.0.1:${node.httpPort}/peers`, { headers: { authorization: `Bearer ${TOKENS.read}` } })).text();
    for (const token of Object.values(TOKENS)) {
      assert.ok(!text.includes(token), 'a token in /metrics');
      assert.ok(!peers.includes(token), 'a token in /peers');
    }
  });
});
