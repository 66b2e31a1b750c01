import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { describeAgentSettings, loadAgentConfig } from '../../src/agent/config.js';
import { describeSettings, resolveConfig } from '../../src/cli/config.js';

/**
 * Static checks of what cannot run here (no Docker engine, no cluster): the Dockerfile and the
 * Kubernetes manifests are parsed and held against the repository and the CLI's own option
 * definitions, so a renamed flag or a moved file breaks this test rather than a deployment.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const run = promisify(execFile);
// js-yaml: already in the lockfile (eureka-js-client uses it), a plain YAML 1.2 parser; its
// safe schema builds only plain objects, arrays and scalars.
const { safeLoadAll } = createRequire(import.meta.url)('js-yaml') as { safeLoadAll(text: string): unknown[] };

/** A parsed YAML document, navigated loosely: the assertions are the schema. */
type Json = Record<string, any>;

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, each tagged with its stage. */
function parseDockerfile(text: string): { instructions: Instruction[]; stages: string[] } {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) pending += `${line.slice(0, -1).trim()} `;
    else {
      logical.push(pending + line);
      pending = '';
    }
  }
  assert.equal(pending, '', 'no dangling line continuation');
  const stages: string[] = [];
  const instructions = logical.map((line) => {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    assert.equal(keyword, upper, `instruction in upper case: ${line}`);
    if (upper === 'FROM') stages.push(/\bAS\s+(\S+)$/i.exec(args)?.[1] ?? `#${stages.length}`);
    return { keyword: upper, args, stage: stages.length - 1 };
  });
  return { instructions, stages };
}

const flagNames = (args: readonly string[]): string[] => args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]!);

test('Dockerfile: multi-stage, non-root, healthcheck, every COPY source exists, the CMD is a real command', async () => {
  const { instructions, stages } = parseDockerfile(read('Dockerfile'));
  assert.ok(stages.length >= 2, 'multi-stage');
  const last = stages.length - 1;
  const final = instructions.filter((i) => i.stage === last);
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  for (const copy of instructions.filter((i) => i.keyword === 'COPY')) {
    const parts = copy.args.split(/\s+/);
    const from = parts.find((p) => p.startsWith('--from='))?.slice(7);
    const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
    if (from !== undefined) {
      assert.ok(stages.slice(0, copy.stage).includes(from), `COPY --from=${from} names an earlier stage`);
      continue;
    }
    for (const source of sources) {
      assert.ok(existsSync(join(root, source)), `COPY source ${source} exists`);
      assert.ok(!ignored.includes(source.replace(/^\.\//, '').split('/')[0]!), `COPY source ${source} is not in .dockerignore`);
    }
  }
  for (const heavy of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(heavy), `.dockerignore leaves out ${heavy}`);

  const user = final.filter((i) => i.keyword === 'USER').at(-1)?.args;
  assert.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `the final stage runs as a non-root user (${user})`);
  const healthcheck = final.find((i) => i.keyword === 'HEALTHCHECK');
  assert.match(healthcheck?.args ?? '', /CMD \[.*\/healthz/, 'a HEALTHCHECK on /healthz');
  assert.ok(
    final.some((i) => i.keyword === 'COPY' && i.args.includes('--from=') && i.args.includes('dist')),
    'the runtime stage takes the compiled output',
  );
  const runs = instructions
    .filter((i) => i.keyword === 'RUN')
    .map((i) => i.args)
    .join('\n');
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  for (const [, script] of runs.matchAll(/npm run (\S+)/g)) assert.ok(scripts[script!] !== undefined, `npm run ${script} exists`);

  const entrypoint = JSON.parse(final.find((i) => i.keyword === 'ENTRYPOINT')!.args) as string[];
  const cmd = JSON.parse(final.find((i) => i.keyword === 'CMD')!.args) as string[];
  // The image runs the `roster` command, which runs dist/ when there is no src/ (bin/roster.js).
  assert.deepEqual(entrypoint, ['node', (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin['roster']!.replace(/^\.\//, '')]);
  assert.ok(
    final.some((i) => i.keyword === 'COPY' && /^bin\s/.test(i.args)),
    'the runtime stage has bin/',
  );
  const source = 'src/cli/main.ts';
  const known = new Set(describeSettings().map((s) => s.flag));
  for (const flag of flagNames(cmd)) assert.ok(known.has(flag), `CMD flag --${flag} is a serve option`);
  const help = await run(process.execPath, ['--import', 'tsx', source, ...cmd, '--help'], { cwd: root, timeout: 60_000 });
  assert.match(help.stdout, new RegExp(`^Usage: roster ${cmd[0]} `), 'the CMD names a roster command');
});

test('the runtime image has every package the compiled code imports (dependencies, not devDependencies)', () => {
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts')) files.push(path);
    }
  };
  walk('src');
  for (const file of files) {
    // Type-only imports vanish from the compiled output.
    const text = read(file).replace(/\b(?:import|export)\s+type\s[^;]*;/g, '');
    for (const [, a, b, c] of text.matchAll(/\bfrom\s+'([^'.][^']*)'|\bimport\('([^'.][^']*)'\)|^import\s+'([^'.][^']*)'/gm)) {
      const spec = (a ?? b ?? c)!;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (spec.startsWith('node:') || builtinModules.includes(name)) continue;
      assert.ok(pkg.dependencies[name] !== undefined, `${file} imports ${name}, which npm ci --omit=dev must install`);
    }
  }
});

/** Every manifest document, with the file it came from. */
function manifests(): { file: string; doc: Json }[] {
  const dir = join(root, 'deploy/kubernetes');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      safeLoadAll(readFileSync(join(dir, f), 'utf8'))
        .filter((d) => d !== null)
        .map((doc) => ({ file: f, doc: doc as Json })),
    );
}

const matches = (selector: Json, labels: Json): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** `$(VAR)` references resolved from the container's earlier env entries (Kubernetes' rule), with sample downward-API values. */
function containerEnv(container: Json): Record<string, string> {
  const samples: Record<string, string> = { 'metadata.namespace': 'team-a', 'metadata.name': 'pod-0', 'status.podIP': '10.1.2.3' };
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as Json[]) {
    if (e.valueFrom !== undefined) {
      const path = e.valueFrom.fieldRef?.fieldPath as string | undefined;
      assert.ok(path === undefined || samples[path] !== undefined, `${e.name}: field ${path} is one we know`);
      env[e.name] = path === undefined ? 'from-a-secret' : samples[path]!;
      continue;
    }
    env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
      assert.ok(env[name] !== undefined, `${container.name}: $(${name}) refers to an env var defined before ${e.name}`);
      return env[name]!;
    });
  }
  return env;
}

/** `--kebab value` pairs → settings by camelCase name, as commander would hand them over. */
function flagValues(args: readonly string[], defs: readonly { name: string; flag: string }[]): Record<string, string> {
  const byFlag = new Map(defs.map((d) => [d.flag, d.name]));
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (!args[i]!.startsWith('--')) continue;
    const name = byFlag.get(args[i]!.slice(2));
    assert.ok(name !== undefined, `--${args[i]!.slice(2)} is an option of the command`);
    out[name] = args[++i]!;
  }
  return out;
}

test("Kubernetes manifests: three replicas via a headless Service, probes, drain, policy; every flag and env var is the CLI's", () => {
  const docs = manifests();
  const of = (kind: string): Json[] => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  for (const { file, doc } of docs) {
    assert.ok(doc.apiVersion && doc.kind && (doc.metadata?.name || doc.kind === 'Kustomization'), `${file}: apiVersion, kind, metadata.name`);
    assert.equal(doc.metadata?.namespace, undefined, `${file} ${doc.kind}: no hard-coded namespace`);
  }
  assert.doesNotMatch(JSON.stringify(docs), /\.(default|kube-system)\.svc/, 'no namespace in DNS names');

  const kustomization = of('Kustomization')[0]!;
  for (const resource of kustomization.resources as string[]) assert.ok(existsSync(join(root, 'deploy/kubernetes', resource)), resource);
  assert.equal(kustomization.namespace, undefined);

  const [sts] = of('StatefulSet');
  assert.ok(sts !== undefined);
  assert.equal(sts.spec.replicas, 3);
  const podLabels = sts.spec.template.metadata.labels as Json;
  assert.ok(matches(sts.spec.selector.matchLabels, podLabels));
  const headless = of('Service').find((s) => s.metadata.name === sts.spec.serviceName);
  assert.equal(headless?.spec.clusterIP, 'None', 'the governing Service is headless');
  assert.equal(headless?.spec.publishNotReadyAddresses, true, 'starting peers are discoverable');
  const client = of('Service').find((s) => s.spec.clusterIP !== 'None');
  assert.ok(client !== undefined && matches(client.spec.selector, podLabels), 'a client Service selects the pods');
  const pdb = of('PodDisruptionBudget')[0];
  assert.ok(pdb !== undefined && matches(pdb.spec.selector.matchLabels, podLabels) && (pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === 2));

  const [policy] = of('NetworkPolicy');
  assert.ok(policy !== undefined && matches(policy.spec.podSelector.matchLabels, podLabels));
  const peerRule = (policy.spec.ingress as Json[]).find((r) => (r.ports as Json[]).some((p) => p.port === 8761));
  assert.ok(
    peerRule?.from.some((f: Json) => f.podSelector?.matchLabels && matches(f.podSelector.matchLabels, podLabels)),
    'peers may reach 8761',
  );

  const serveDefs = describeSettings();
  const agentDefs = describeAgentSettings();
  const pods = [...of('StatefulSet'), ...of('Deployment')].map((w) => w.spec.template.spec as Json);
  let agents = 0;
  for (const pod of pods) {
    assert.equal(pod.securityContext?.runAsNonRoot, true, 'pods run as non-root');
    for (const c of pod.containers as Json[]) {
      assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${c.name}: resources`);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${c.name}: read-only root`);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${c.name}: no capabilities`);
      const portNames = new Set(((c.ports ?? []) as Json[]).map((p) => p.name));
      for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean) as Json[]) {
        assert.ok(portNames.has(probe.httpGet.port), `${c.name}: probe port ${probe.httpGet.port} is declared`);
      }
      if (!String(c.image).includes('/roster:')) continue;
      const env = containerEnv(c);
      const args = c.args as string[];
      if (args[0] === 'serve') {
        assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
        assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
        assert.ok(c.lifecycle?.preStop, 'a preStop that lets clients move away before SIGTERM');
        const known = new Set(serveDefs.map((s) => s.envVar));
        for (const name of Object.keys(env).filter((n) => n.startsWith('ROSTER_'))) assert.ok(known.has(name), `${name} is a serve setting`);
        // The real loader accepts the values (a typo or a bad value fails here, not in the cluster).
        const config = resolveConfig({ env, flags: flagValues(args.slice(1), serveDefs) });
        assert.equal(config.peersDns, 'roster-headless.team-a.svc:8761');
        assert.equal(config.host, '0.0.0.0');
      } else {
        assert.equal(args[0], 'agent', `${c.name}: a roster command`);
        agents++;
        const known = new Set([...agentDefs.map((s) => s.envVar), 'ROSTER_AGENT_CONFIG']);
        for (const name of Object.keys(env).filter((n) => n.startsWith('ROSTER_'))) assert.ok(known.has(name), `${name} is an agent setting`);
        const config = loadAgentConfig(flagValues(args.slice(1), agentDefs), env);
        assert.equal(config.apps[0]?.ip, '10.1.2.3', 'the pod IP is registered');
        assert.equal(config.apps[0]?.instanceId, 'pod-0');
        assert.equal(config.httpHost, '0.0.0.0', "the kubelet can reach the agent's probes");
        assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
        // The application keeps serving while the agent drains.
        const app = (pod.containers as Json[]).find((other) => other !== c)!;
        const sleep = Number((app.lifecycle?.preStop?.exec?.command as string[] | undefined)?.at(-1));
        assert.ok(sleep > config.drainSecs, `the app's preStop (${sleep} s) outlasts the drain (${config.drainSecs} s)`);
        assert.ok(pod.terminationGracePeriodSeconds > sleep, 'the grace period covers the drain');
      }
    }
  }
  assert.equal(agents, 1, 'the example Deployment runs the agent sidecar');
});
