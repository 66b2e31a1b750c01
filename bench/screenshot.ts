/**
 * `npm run screenshot [-- --seconds N --out FILE]`: regenerates docs/dashboard.png, the README's
 * picture of the dashboard, from real nodes. Two nodes replicate to each other; instances of a
 * few applications register and heartbeat over gRPC at both; one is DOWN, one STARTING, one
 * overridden OUT_OF_SERVICE; a batch worker churns (so replication has a queue and a lag to
 * plot); two instances never renew and get evicted once the first renewal minute is measured.
 * After that minute (70 s by default) Debian's chromium takes the page of node A, then the
 * instances of one application (FILE with -instances before .png).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RosterClient } from '../src/client/index.js';
import { resolveConfig } from '../src/cli/config.js';
import { createLogger } from '../src/cli/logging.js';
import { startNode, type RosterNode } from '../src/cli/node.js';
import { InstanceStatus, type DeepPartial, type Instance } from '../src/gen/roster/v1/instance.js';
import { launchChromium } from '../test/dashboard/chromium.js';
import { freePort } from '../test/support/ports.js';

const DEFAULT_OUT = fileURLToPath(new URL('../docs/dashboard.png', import.meta.url));
const ZONES = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'];
/** Applications and their instance counts: a small but plausible fleet. */
const FLEET: ReadonlyArray<[app: string, count: number, team: string]> = [
  ['accounts', 4, 'identity'],
  ['billing', 6, 'payments'],
  ['checkout', 8, 'payments'],
  ['inventory', 5, 'supply'],
  ['notifications', 3, 'platform'],
  ['recommendations', 6, 'discovery'],
  ['search-api', 7, 'discovery'],
  ['shipping', 4, 'supply'],
];
const RENEWAL_SECS = 10;

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '70' }, out: { type: 'string', default: DEFAULT_OUT } } });
const seconds = Number(values.seconds);
if (!Number.isInteger(seconds) || seconds < 5 || seconds > 600) throw new Error('--seconds must be an integer 5..600');

function instance(app: string, n: number, team: string, extra: DeepPartial<Instance> = {}): DeepPartial<Instance> {
  const host = `${app}-${n}.prod.internal`;
  const ip = `10.20.${FLEET.findIndex(([a]) => a === app) + 1}.${10 + n}`;
  return {
    app,
    instanceId: `${app}-${n}`,
    hostName: host,
    ipAddr: ip,
    port: { number: 8080, enabled: true },
    securePort: { number: 8443, enabled: n % 2 === 0 },
    vipAddress: `${app}.vip`,
    zone: ZONES[n % ZONES.length]!,
    region: 'eu-west-1',
    metadata: { version: `2.${n % 3}.${(n * 7) % 10}`, team },
    homePageUrl: `http://${host}:8080/`,
    statusPageUrl: `http://${host}:8080/status`,
    healthCheckUrl: `http://${host}:8080/healthz`,
    lease: { renewalIntervalSecs: RENEWAL_SECS, durationSecs: 3 * RENEWAL_SECS },
    lastDirtyTimestamp: Date.now(),
    ...extra,
  };
}

const grpcPorts = [await freePort(), await freePort()];
const peers = grpcPorts.map((p) => `127.0.0.1:${p}`).join(',');
const nodes: RosterNode[] = [];
const clients: RosterClient[] = [];
const timers: NodeJS.Timeout[] = [];
try {
  for (const [i, port] of grpcPorts.entries()) {
    const config = resolveConfig({
      flags: { port, httpPort: 0, nodeId: `roster-${'ab'[i]}`, peers, clusterToken: 'screenshot-token', logLevel: 'warn', antiEntropySecs: 10 },
    });
    nodes.push(await startNode(config, createLogger(config.logLevel)));
  }
  for (const port of grpcPorts) clients.push(new RosterClient(`127.0.0.1:${port}`));

  // The fleet, split over both nodes; each instance heartbeats at the node it registered with.
  const renewing: Array<{ client: RosterClient; app: string; id: string }> = [];
  let k = 0;
  for (const [app, count, team] of FLEET) {
    for (let n = 1; n <= count; n++) {
      const client = clients[k++ % 2]!;
      const status = app === 'checkout' && n === 3 ? InstanceStatus.INSTANCE_STATUS_DOWN : app === 'inventory' && n === 5 ? InstanceStatus.INSTANCE_STATUS_STARTING : InstanceStatus.INSTANCE_STATUS_UP;
      await client.register(instance(app, n, team, { status }));
      renewing.push({ client, app, id: `${app}-${n}` });
    }
  }
  await clients[0]!.setStatusOverride('search-api', 'search-api-4', InstanceStatus.INSTANCE_STATUS_OUT_OF_SERVICE);
  // Two that never renew: evicted once the first renewal minute has been measured.
  for (const n of [1, 2]) await clients[1]!.register(instance('report-builder', n, 'data', { lease: { renewalIntervalSecs: 5, durationSecs: 5 } }));

  let tick = 0;
  let worker = 0;
  timers.push(
    setInterval(() => {
      tick++;
      for (const [i, inst] of renewing.entries()) {
        if (i % RENEWAL_SECS === tick % RENEWAL_SECS) void inst.client.heartbeat(inst.app, inst.id).catch(() => undefined);
      }
      // A batch worker comes and goes every second, alternately at each node.
      const client = clients[worker % 2]!;
      void client.register(instance('batch-worker', worker, 'data')).catch(() => undefined);
      if (worker >= 3) void client.cancel('batch-worker', `batch-worker-${worker - 3}`).catch(() => undefined);
      worker++;
    }, 1000),
  );
  process.stderr.write(`nodes up (dashboard: http://127.0.0.1:${nodes[0]!.httpPort}/); waiting ${seconds} s for a measured renewal minute ...\n`);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));

  const chromium = await launchChromium({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await chromium.context.newPage();
    await page.goto(`http://127.0.0.1:${nodes[0]!.httpPort}/`);
    await page.locator('#live[data-state="live"]').waitFor();
    await page.locator('#apps tr[data-app="checkout"]').waitFor();
    await page.locator('#queue-spark svg').waitFor();
    await page.waitForTimeout(500);
    await page.screenshot({ path: values.out, fullPage: true });
    process.stderr.write(`wrote ${values.out}\n`);
    // One application opened: its instances, with the DOWN one and their actions.
    await page.getByRole('button', { name: 'checkout', exact: true }).click();
    await page.locator('#instances tr[data-id="checkout-8"]').waitFor();
    await page.waitForTimeout(800); // the smooth scroll
    const instancesOut = values.out.replace(/\.png$/, '-instances.png');
    const box = await page.locator('#instances-section').boundingBox();
    if (box === null) throw new Error('the instances section is not on screen');
    const scrollY = Number(await page.evaluate('scrollY'));
    await page.screenshot({ path: instancesOut, fullPage: true, clip: { x: box.x - 20, y: box.y + scrollY, width: box.width + 40, height: box.height + 20 } });
    process.stderr.write(`wrote ${instancesOut}\n`);
  } finally {
    await chromium.close();
  }
} finally {
  for (const t of timers) clearInterval(t);
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.stop()));
}
