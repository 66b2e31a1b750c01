import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { registration } from '../core/fixtures.js';
import { waitFor } from '../client/harness.js';
import { bufCurl } from '../grpc/helpers.js';
import { AdsClient, TYPE_URL, withXds, type Response } from './harness.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** The endpoints of a ClusterLoadAssignment response, as "zone ip:port weight". */
function endpoints(response: Response): string[] {
  const out: string[] = [];
  for (const cla of response.resources) {
    for (const locality of (cla['endpoints'] as Array<Record<string, any>> | undefined) ?? []) {
      for (const lb of locality['lbEndpoints'] ?? []) {
        const a = lb.endpoint.address.socketAddress;
        out.push(`${locality['locality'].zone} ${a.address}:${a.portValue} ${lb.loadBalancingWeight}`);
      }
    }
  }
  return out.sort();
}

describe('xDS (ADS, state of the world)', () => {
  test('serves the Listener → RouteConfiguration → Cluster → ClusterLoadAssignment chain a proxyless client follows', async () => {
    await withXds(async (h) => {
      const c = h.open();
      c.request('listener', ['echo:50051']);
      const lds = await c.next();
      assert.equal(lds.typeUrl, TYPE_URL.listener);
      assert.equal(lds.resources.length, 1);
      const listener = lds.resources[0] as Record<string, any>;
      assert.equal(listener['@type'], TYPE_URL.listener);
      assert.equal(listener['name'], 'echo:50051', 'the listener is named exactly as the target, port included');
      const hcm = listener['apiListener'].apiListener;
      assert.equal(hcm['@type'], HCM);
      assert.deepEqual(hcm.rds, { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: 'echo:50051' });
      assert.deepEqual(
        hcm.httpFilters.map((f: any) => f.typedConfig['@type']),
        [ROUTER],
        'the router filter is present',
      );

      c.request('route', ['echo:50051']);
      const rds = await c.next();
      const vhost = (rds.resources[0] as any).virtualHosts[0];
      assert.deepEqual(vhost.domains, ['*']);
      assert.deepEqual(vhost.routes, [{ match: { prefix: '' }, route: { cluster: 'echo' } }]);

      c.request('cluster', ['echo']);
      const cds = await c.next();
      assert.deepEqual(
        { type: (cds.resources[0] as any).type, lb: (cds.resources[0] as any).lbPolicy, eds: (cds.resources[0] as any).edsClusterConfig },
        { type: 'EDS', lb: undefined, eds: { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: 'echo' } },
        'ROUND_ROBIN is the default, so proto3 JSON omits it',
      );

      c.request('endpoint', ['echo']);
      const empty = await c.next();
      assert.deepEqual(empty.resources, [{ '@type': TYPE_URL.endpoint, clusterName: 'echo' }], 'a name with no instances is an empty assignment');

      // Only UP instances with an IP literal and an enabled port; weight from metadata.
      h.registry.register(registration({ app: 'echo', instanceId: 'a', ipAddr: '10.0.0.1', zone: 'z1', metadata: { 'xds.weight': '3' } }));
      h.registry.register(registration({ app: 'echo', instanceId: 'b', ipAddr: '10.0.0.2', zone: 'z2' }));
      h.registry.register(registration({ app: 'echo', instanceId: 'down', ipAddr: '10.0.0.3', status: 'DOWN' }));
      h.registry.register(registration({ app: 'echo', instanceId: 'named', ipAddr: 'localhost' }));
      h.registry.register(registration({ app: 'echo', instanceId: 'closed', ipAddr: '10.0.0.4', port: { number: 80, enabled: false } }));
      let eds = await c.next();
      for (let i = 0; i < 10 && endpoints(eds).length < 2; i++) eds = await c.next();
      assert.deepEqual(endpoints(eds), ['z1 10.0.0.1:8080 3', 'z2 10.0.0.2:8080 1']);
      const localities = (eds.resources[0] as any).endpoints;
      assert.deepEqual(
        localities.map((l: any) => [l.locality, l.loadBalancingWeight]),
        [
          [{ region: 'us-east-1', zone: 'z1' }, 3],
          [{ region: 'us-east-1', zone: 'z2' }, 1],
        ],
        'every locality has a weight: the sum of its endpoints',
      );
    });
  });

  test('remembers a name that does not exist yet and pushes it when an instance registers; OUT_OF_SERVICE and cancel remove it', async () => {
    await withXds(async (h) => {
      const c = h.open();
      c.request('endpoint', ['later']);
      const first = await c.next();
      assert.deepEqual(endpoints(first), []);
      c.request('endpoint', ['later'], first);
      h.registry.register(registration({ app: 'later', instanceId: 'x', ipAddr: '10.1.0.1', zone: 'z' }));
      const added = await c.next();
      assert.deepEqual(endpoints(added), ['z 10.1.0.1:8080 1']);
      assert.notEqual(added.versionInfo, first.versionInfo);
      assert.notEqual(added.nonce, first.nonce);
      c.request('endpoint', ['later'], added);
      h.registry.setStatusOverride('later', 'x', 'OUT_OF_SERVICE');
      const out = await c.next();
      assert.deepEqual(endpoints(out), []);
      assert.equal(out.versionInfo, first.versionInfo, 'the same content has the same version');
      h.registry.cancel('later', 'x');
      h.registry.register(registration({ app: 'later', instanceId: 'y', ipAddr: '10.1.0.2', zone: 'z' }));
      assert.deepEqual(endpoints(await c.next()), ['z 10.1.0.2:8080 1'], 'the cancel changed nothing a client sees; the new instance did');
      h.registry.cancel('later', 'y');
      assert.deepEqual(endpoints(await c.next()), []);
      assert.ok((await h.metric('roster_xds_push_latency_seconds_count')) >= 3);
    });
  });

  test('a name nobody watches any more is rebuilt, not served from an old response, when watched again', async () => {
    await withXds(async (h) => {
      const first = h.open();
      first.request('endpoint', ['again']);
      assert.deepEqual(endpoints(await first.next()), []);
      first.close();
      await waitFor('the stream released', () => h.xds.streams === 0);
      h.registry.register(registration({ app: 'again', instanceId: 'x', ipAddr: '10.3.0.1', zone: 'z' }));
      const second = h.open();
      second.request('endpoint', ['again']);
      assert.deepEqual(endpoints(await second.next()), ['z 10.3.0.1:8080 1']);
    });
  });

  test('a VIP resolves to the instances listing it, and an instance leaving the VIP leaves the assignment', async () => {
    await withXds(async (h) => {
      h.registry.register(registration({ app: 'billing-v2', instanceId: 'v2', ipAddr: '10.2.0.1', zone: 'z', vipAddress: 'billing' }));
      const c = h.open();
      c.request('endpoint', ['billing']);
      const r = await c.next();
      assert.deepEqual(endpoints(r), ['z 10.2.0.1:8080 1']);
      c.request('endpoint', ['billing'], r);
      h.registry.register(registration({ app: 'billing-v2', instanceId: 'v2', ipAddr: '10.2.0.1', zone: 'z', vipAddress: 'other', lastDirtyTimestamp: 5_000 }));
      assert.deepEqual(endpoints(await c.next()), []);
    });
  });

  test('an ACKed version is not sent again; Listener responses carry every subscribed resource', async () => {
    await withXds(async (h) => {
      const c = h.open();
      c.request('listener', ['a']);
      const one = await c.next();
      c.request('listener', ['a', 'b', 'not a name!'], one);
      const two = await c.next();
      assert.deepEqual(two.resources.map((r) => r['name']).sort(), ['a', 'b'], 'both listeners, the invalid name does not exist');
      c.request('listener', ['a', 'b', 'not a name!'], two);
      assert.deepEqual(await c.probe(), [], 'nothing re-sent after the ACK');
      assert.equal(await h.metric('roster_xds_acks_total', { type: 'lds' }), 2);
      assert.equal(await h.metric('roster_xds_resources_sent_total', { type: 'lds' }), 3);
      assert.equal(await h.metric('roster_xds_streams'), 1);
    });
  });

  test('a NACK is counted, its version is never re-sent, and the next change is', async () => {
    await withXds(async (h) => {
      const c = h.open();
      c.request('endpoint', ['echo']);
      const v1 = await c.next();
      c.request('endpoint', ['echo'], v1);
      assert.deepEqual(await c.probe(), [], 'the ACK is handled (and not answered) before the registry changes');
      h.registry.register(registration({ app: 'echo', instanceId: 'a', ipAddr: '10.0.0.1' }));
      const v2 = await c.next();
      // The client rejects v2 and keeps v1: version_info is the one it still uses.
      c.send({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ['echo'],
        versionInfo: v1.versionInfo,
        responseNonce: v2.nonce,
        errorDetail: { code: 3, message: 'endpoint rejected by test' },
      });
      assert.deepEqual(await c.probe(), [], 'the NACKed version is held back');
      // Asking again at the kept version (a new request, no nonce) still does not bring it back.
      c.request('endpoint', ['echo'], { ...v1, nonce: v2.nonce });
      assert.deepEqual(await c.probe(), []);
      assert.equal(await h.metric('roster_xds_nacks_total', { type: 'eds' }), 1);
      assert.equal(await h.metric('roster_xds_acks_total', { type: 'eds' }), 2, 'the ACK of v1 and the re-request at v1');
      h.registry.register(registration({ app: 'echo', instanceId: 'b', ipAddr: '10.0.0.2' }));
      const v3 = await c.next();
      assert.notEqual(v3.versionInfo, v2.versionInfo);
      assert.equal(endpoints(v3).length, 2, 'something newer than the rejected version is sent');
    });
  });

  test('requests with a stale nonce are ignored', async () => {
    await withXds(async (h) => {
      const c = h.open();
      c.request('listener', ['a']);
      const first = await c.next();
      c.request('listener', ['a', 'b'], first);
      const second = await c.next();
      // A request still answering `first` (sent before `second` arrived) changes nothing.
      c.request('listener', ['a', 'b', 'c'], first);
      assert.deepEqual(await c.probe(), []);
      c.request('listener', ['a', 'b', 'c'], second);
      assert.deepEqual((await c.next()).resources.map((r) => r['name']).sort(), ['a', 'b', 'c']);
    });
  });

  test('a type the server does not serve is answered once with no resources, and the stream goes on', async () => {
    await withXds(async (h) => {
      const c = h.open();
      const secret = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
      c.send({ typeUrl: secret, resourceNames: ['cert'] });
      const answer = await c.next();
      assert.equal(answer.typeUrl, secret);
      assert.deepEqual(answer.resources, []);
      c.send({ typeUrl: secret, resourceNames: ['cert'], versionInfo: answer.versionInfo, responseNonce: answer.nonce });
      assert.deepEqual(await c.probe(), [], 'its ACK is not answered');
      c.request('cluster', ['echo']);
      assert.equal((await c.next()).resources.length, 1, 'the stream still serves known types');
      assert.ok((await h.metric('roster_xds_unknown_type_requests_total')) >= 1);
    });
  });

  test('bad input ends the stream with INVALID_ARGUMENT naming the field; delta xDS is UNIMPLEMENTED', async () => {
    await withXds(async (h) => {
      const tooMany = h.open();
      tooMany.request(
        'endpoint',
        Array.from({ length: 10_001 }, (_, i) => `n${i}`),
      );
      const s1 = await tooMany.ended();
      assert.equal(s1.code, grpc.status.INVALID_ARGUMENT);
      assert.match(s1.details, /resource_names/);

      const garbage = h.open();
      garbage.call.write(Buffer.from([0xff, 0xff, 0xff]));
      const s2 = await garbage.ended();
      assert.equal(s2.code, grpc.status.INVALID_ARGUMENT);

      const delta = new AdsClient(h.address, 'DeltaAggregatedResources');
      try {
        assert.equal((await delta.ended()).code, grpc.status.UNIMPLEMENTED);
      } finally {
        delta.close();
      }
      assert.equal(h.xds.streams, 0, 'ended streams are released');
    });
  });

  test('reflection describes the ADS service: buf curl can list it and call it with JSON, Any resources decoded', async () => {
    await withXds(async (h) => {
      const listed = await bufCurl(['--list-methods', `http://${h.address}`]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^envoy\.service\.discovery\.v3\.AggregatedDiscoveryService\/StreamAggregatedResources$/m);
      const request = JSON.stringify({ typeUrl: TYPE_URL.cluster, resourceNames: ['echo'], node: { id: 'curl' } });
      const called = await bufCurl(['-d', request, `http://${h.address}/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources`]);
      assert.equal(called.code, 0, called.stderr);
      const response = JSON.parse(called.stdout);
      assert.equal(response.resources[0]['@type'], TYPE_URL.cluster);
      assert.equal(response.resources[0].edsClusterConfig.serviceName, 'echo');
    });
  });

  // `npm run bench` measures 1,000 streams; here a few hundred keep the suite light.
  test('a change reaches every subscribed stream', async () => {
    await withXds(async (h) => {
      const streams = Array.from({ length: 250 }, () => h.open());
      const firsts = await Promise.all(
        streams.map((c) => {
          c.request('endpoint', ['fan']);
          return c.next(30_000);
        }),
      );
      for (const [i, c] of streams.entries()) c.request('endpoint', ['fan'], firsts[i]);
      h.registry.register(registration({ app: 'fan', instanceId: 'x', ipAddr: '10.9.0.1', zone: 'z' }));
      const pushed = await Promise.all(streams.map((c) => c.next(30_000)));
      assert.ok(pushed.every((r) => endpoints(r).join() === 'z 10.9.0.1:8080 1'));
      assert.equal(new Set(pushed.map((r) => r.versionInfo)).size, 1, 'one version for one content');
    });
  });
});
