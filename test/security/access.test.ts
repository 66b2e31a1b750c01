import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { outsideScope } from '../../src/security/access.js';
import { buildPolicy, CredentialsError, parseCredentials } from '../../src/security/credentials-file.js';
import { PolicySource } from '../../src/security/policy-source.js';
import { silentLogger } from '../grpc/helpers.js';

const SECRET = 'a-long-enough-secret-token';
const file = (principals: unknown[]): string => JSON.stringify({ principals });

test('credentials file: every problem names the entry and field, never the token', () => {
  const cases: Array<[string, RegExp]> = [
    ['{', /not valid JSON/],
    [JSON.stringify({ principals: [], extra: 1 }), /Unrecognized key|extra/],
    [file([{ name: 'a', roles: ['read'], token: 'short' }]), /principals\.0\.token: must be at least 16 characters/],
    [file([{ name: 'a', roles: ['root'], token: SECRET }]), /principals\.0\.roles\.0/],
    [file([{ name: 'a', roles: ['read'] }]), /needs a token, a tokenSha256 or a certificate name/],
    [
      file([
        { name: 'a', roles: ['read'], token: SECRET },
        { name: 'a', roles: ['read'], certificate: 'x' },
      ]),
      /"a" appears twice/,
    ],
    [
      file([
        { name: 'a', roles: ['read'], token: SECRET },
        { name: 'b', roles: ['operate'], token: SECRET },
      ]),
      /principals\.1 \(b\): its token is also another principal's/,
    ],
    [file([{ name: 'a', roles: [], token: SECRET }]), /must list at least one role/],
    ['{}', /principals: is required/],
    [file([{ roles: ['read'], token: SECRET, extra: 1 }]), /principals\.0: unknown key "extra"; principals\.0\.name: is required/],
    [file([{ name: 'a', roles: ['read'], token: SECRET, tokenSha256: 'ab' }]), /principals\.0\.tokenSha256: must be 64 hex digits; principals\.0: give token or tokenSha256, not both/],
    [file([{ name: 'a', roles: ['read'], certificate: 'x', apps: [] }]), /principals\.0\.apps: must list at least one app when present/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => parseCredentials(text, '/etc/roster/credentials.json'),
      (err: unknown) => {
        assert.ok(err instanceof CredentialsError);
        assert.match(err.message, /credentials file \/etc\/roster\/credentials\.json/);
        assert.match(err.message, expected);
        assert.ok(!err.message.includes(SECRET) && !err.message.includes('short'), err.message);
        return true;
      },
    );
  }
});

test('a token or its SHA-256 identifies a principal; roles, apps and certificate names apply', () => {
  const digest = createHash('sha256').update('hashed-token-0123456789').digest('hex');
  const principals = parseCredentials(
    file([
      { name: 'agent', token: SECRET, roles: ['register', 'read'], apps: ['Billing'] },
      { name: 'ops', tokenSha256: digest, roles: ['operate', 'register'] },
      { name: 'peer', certificate: 'roster-peer', roles: ['replicate'] },
    ]),
    'f',
  );
  const policy = buildPolicy({ principals, mtls: false });
  assert.equal(policy.identify({ token: SECRET })?.name, 'agent');
  assert.equal(policy.identify({ token: 'hashed-token-0123456789' })?.name, 'ops');
  assert.equal(policy.identify({ certificateNames: ['node-a', 'roster-peer'] })?.name, 'peer');
  assert.equal(policy.identify({ certificateNames: ['stranger'] }), undefined);

  const register = { action: 'Register', anyOf: ['register'] as const };
  const agent = policy.decide({ token: SECRET }, register);
  assert.ok(agent.allowed);
  assert.deepEqual([...(agent.apps ?? [])], ['billing']);
  assert.equal(outsideScope(agent, 'Register', 'BILLING'), undefined, 'apps compare case-insensitively');
  assert.deepEqual(outsideScope(agent, 'Register', 'orders'), { allowed: false, code: 'permission_denied', message: 'Register: agent may not register app "orders"' });
  // Cancel: `operate` is not app-scoped, so a principal holding it is not limited.
  const ops = policy.decide({ token: 'hashed-token-0123456789' }, { action: 'Cancel', anyOf: ['register', 'operate'] });
  assert.ok(ops.allowed && ops.apps === undefined);

  assert.deepEqual(policy.decide({}, register), {
    allowed: false,
    code: 'unauthenticated',
    message: 'Register requires a credential with role register (authorization: Bearer <token>, or a client certificate)',
  });
  assert.deepEqual(policy.decide({ token: 'nobody-knows-this-one' }, register), { allowed: false, code: 'unauthenticated', message: 'Register: the credential presented is not known' });
  assert.deepEqual(policy.decide({ certificateNames: ['roster-peer'] }, register), { allowed: false, code: 'permission_denied', message: 'Register: peer lacks role register' });
});

test('the policy by configuration: open, cluster token only, mTLS, credentials file', () => {
  const open = buildPolicy({ mtls: false });
  assert.equal(open.open, true);
  assert.ok(open.decide({}, { action: 'Replicate', anyOf: ['replicate'] }).allowed);

  const tokenOnly = buildPolicy({ clusterToken: 'cluster-secret', mtls: false });
  assert.equal(tokenOnly.open, false);
  assert.ok(tokenOnly.decide({}, { action: 'Register', anyOf: ['register'] }).allowed, 'clients stay open as before roles existed');
  assert.equal(tokenOnly.decide({}, { action: 'Replicate', anyOf: ['replicate'] }).allowed, false);
  assert.ok(tokenOnly.decide({ token: 'cluster-secret' }, { action: 'Replicate', anyOf: ['replicate'] }).allowed);
  assert.equal(tokenOnly.decide({ token: 'cluster-secret' }, { action: 'SetStatusOverride', anyOf: ['operate'] }).allowed, true, 'operate is not enforced here');

  const mtls = buildPolicy({ mtls: true });
  assert.equal(mtls.decide({}, { action: 'GetInstance', anyOf: ['read'] }).allowed, false);
  const cert = mtls.decide({ certificateNames: ['node-b'] }, { action: 'Replicate', anyOf: ['replicate'] });
  assert.ok(cert.allowed && cert.principal?.name === 'certificate:node-b');

  const withFile = buildPolicy({ principals: parseCredentials(file([{ name: 'r', token: SECRET, roles: ['read'] }]), 'f'), clusterToken: 'cluster-secret', mtls: true });
  assert.equal(withFile.decide({ certificateNames: ['node-b'] }, { action: 'Replicate', anyOf: ['replicate'] }).allowed, false, 'with a file, a certificate must be listed');
  assert.ok(withFile.decide({ token: 'cluster-secret' }, { action: 'Replicate', anyOf: ['replicate'] }).allowed);
});

test('the credentials file is reloaded when it changes; a broken one keeps the previous credentials', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-creds-'));
  try {
    const path = join(dir, 'credentials.json');
    writeFileSync(path, file([{ name: 'old', token: SECRET, roles: ['read'] }]));
    const source = new PolicySource({ credentialsFile: path, mtls: false, logger: silentLogger() });
    assert.equal(source.policy.identify({ token: SECRET })?.name, 'old');
    assert.equal(await source.reload(), false, 'unchanged');
    writeFileSync(path, file([{ name: 'new', token: 'the-rotated-token-0123', roles: ['read'] }]));
    assert.equal(await source.reload(), true);
    assert.equal(source.policy.identify({ token: SECRET }), undefined);
    assert.equal(source.policy.identify({ token: 'the-rotated-token-0123' })?.name, 'new');
    writeFileSync(path, '{"principals": [');
    assert.equal(await source.reload(), false);
    assert.equal(source.policy.identify({ token: 'the-rotated-token-0123' })?.name, 'new');
    assert.throws(() => new PolicySource({ credentialsFile: join(dir, 'missing.json'), mtls: false, logger: silentLogger() }), /missing\.json: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the cluster token file is re-read: peers present and accept the rotated token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roster-token-'));
  try {
    const path = join(dir, 'token');
    writeFileSync(path, 'first-cluster-token\n');
    const source = new PolicySource({ clusterTokenFile: path, mtls: false, logger: silentLogger() });
    const replicate = { action: 'Replicate', anyOf: ['replicate'] as const };
    assert.equal(source.clusterToken, 'first-cluster-token', 'trimmed');
    assert.ok(source.policy.decide({ token: 'first-cluster-token' }, replicate).allowed);
    writeFileSync(path, 'second-cluster-token\n');
    assert.equal(await source.reload(), true);
    assert.equal(source.clusterToken, 'second-cluster-token');
    assert.equal(source.policy.decide({ token: 'first-cluster-token' }, replicate).allowed, false);
    assert.ok(source.policy.decide({ token: 'second-cluster-token' }, replicate).allowed);
    writeFileSync(path, '\n');
    assert.equal(await source.reload(), false, 'an emptied file keeps the last token');
    assert.equal(source.clusterToken, 'second-cluster-token');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
