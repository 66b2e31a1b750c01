import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { RosterNode } from '../../src/cli/node.js';
import { RosterClient } from '../../src/client/index.js';
import { clientSecurityFromEnv } from '../../src/cli/client-security.js';
import { startTestNode } from '../client/harness.js';
import { run } from '../cli/process.js';
import { protoInstance } from '../grpc/helpers.js';
import { TestPki } from './pki.js';

const READ = 'cli-read-token-0123456789';
const WRITE = 'cli-register-token-0123456789';

describe('clients of a node with TLS and credentials', () => {
  const pki = new TestPki();
  const ca = pki.ca('ca');
  let node: RosterNode;
  let server: string;
  before(async () => {
    const files = pki.leaf(ca, 'node');
    const credentials = join(pki.dir, 'credentials.json');
    writeFileSync(
      credentials,
      JSON.stringify({
        principals: [
          { name: 'reader', token: READ, roles: ['read'] },
          { name: 'agent', token: WRITE, roles: ['register', 'read'], apps: ['billing'] },
        ],
      }),
    );
    writeFileSync(join(pki.dir, 'read.token'), `${READ}\n`);
    // Server-side TLS only (no client CA): clients verify the node; tokens say who they are.
    node = await startTestNode({ tlsCertFile: files.cert, tlsKeyFile: files.key, credentialsFile: credentials });
    server = `localhost:${node.grpcPort}`;
  });
  after(async () => {
    await node.stop();
    pki.close();
  });

  test('the client library: TLS credentials and a token option', async () => {
    const tls = grpc.credentials.createSsl(readFileSync(ca.cert));
    const agent = new RosterClient(server, { credentials: tls, token: WRITE });
    const anonymous = new RosterClient(server, { credentials: tls });
    try {
      await agent.register(protoInstance({ app: 'billing', instanceId: 'b-1' }));
      assert.equal((await agent.getInstance('billing', 'b-1')).instance?.instanceId, 'b-1');
      await assert.rejects(agent.register(protoInstance({ app: 'orders', instanceId: 'o-1' })), /PERMISSION_DENIED|may not register app "orders"/);
      await assert.rejects(anonymous.getInstance('billing', 'b-1'), /UNAUTHENTICATED|requires a credential/);
    } finally {
      agent.close();
      anonymous.close();
    }
  });

  test('the CLI: --tls-ca with the token from a file or ROSTER_TOKEN; refused without one', async () => {
    const withFile = await run(['apps', '--server', server, '--tls-ca', ca.cert, '--token-file', join(pki.dir, 'read.token'), '--json']);
    assert.equal(withFile.code, 0, withFile.stderr);
    assert.match(withFile.stdout, /"instanceId":"b-1"/);
    const fromEnv = await run(['get', 'billing', 'b-1', '--server', server, '--json'], { ROSTER_TLS_CA: ca.cert, ROSTER_TOKEN: READ });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const refused = await run(['apps', '--server', server, '--tls-ca', ca.cert]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /requires a credential with role read/);
    const missing = await run(['apps', '--server', server, '--tls-ca', join(pki.dir, 'nope.pem')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--tls-ca .*nope\.pem: ENOENT/);
  });
});

describe('client security from the environment (the agent)', () => {
  test('ROSTER_TOKEN_FILE and ROSTER_TLS_CA become a token and TLS credentials; nothing set stays plain', () => {
    const pki = new TestPki();
    try {
      const ca = pki.ca('ca');
      const tokenFile = join(pki.dir, 'token');
      writeFileSync(tokenFile, 'agent-token-0123456789\n');
      const options = clientSecurityFromEnv({ ROSTER_TOKEN_FILE: tokenFile, ROSTER_TLS_CA: ca.cert });
      assert.equal(options.token, 'agent-token-0123456789');
      assert.ok(options.credentials?._isSecure());
      assert.deepEqual(clientSecurityFromEnv({}), {});
      assert.throws(() => clientSecurityFromEnv({ ROSTER_TLS_CERT: ca.cert }), /--tls-cert and --tls-key go together/);
    } finally {
      pki.close();
    }
  });
});
