import { Counter, Gauge } from 'prom-client';
import { LabeledHistogram } from './metrics.js';
import type { ReplicationTask } from '../replication/link.js';
import type { Replicator } from '../replication/replicator.js';
import type { Metrics } from './metrics.js';

// Fine below 25 ms, where a healthy cluster lives; 0.1 s is a bound so the p99 target reads exactly.
const LAG_BUCKETS = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Per-peer replication series, read from the dispatchers at scrape time, plus the lag
 * histogram (origin applied → this node applied) fed by the replication service.
 * Returns the lag observer to hand to that service.
 */
export function addReplicationMetrics(metrics: Metrics, replicator: Replicator): (action: ReplicationTask['action'], seconds: number) => void {
  const registers = [metrics.registry];
  type PeerStats = ReturnType<Replicator['peers']>[number];
  const perPeer = (name: string, help: string, read: (p: PeerStats) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const peer of replicator.peers()) this.set({ peer: peer.peer }, read(peer));
      },
    });
  };
  /** A counter read from the dispatcher's own monotonic count at scrape time. */
  const perPeerTotal = (name: string, help: string, read: (p: PeerStats) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        for (const peer of replicator.peers()) this.inc({ peer: peer.peer }, read(peer));
      },
    });
  };
  perPeer('roster_peer_connected', '1 while the Replicate stream to the peer is open.', (p) => (p.connected ? 1 : 0));
  perPeer('roster_peer_queued_tasks', 'Tasks waiting for the peer.', (p) => p.queueDepth);
  perPeer('roster_peer_in_flight_tasks', 'Tasks sent to the peer and not yet answered.', (p) => p.inFlight);
  perPeerTotal('roster_peer_batches_sent_total', 'Batches sent to the peer.', (p) => p.batchesSent);
  perPeerTotal('roster_peer_tasks_sent_total', 'Tasks sent to the peer.', (p) => p.tasksSent);
  perPeerTotal('roster_peer_tasks_dropped_total', 'Tasks dropped because the queue was full.', (p) => p.dropped);
  perPeerTotal('roster_peer_tasks_expired_total', 'Tasks that expired before they could be sent.', (p) => p.expired);
  perPeerTotal('roster_peer_tasks_poisoned_total', 'Tasks dropped after being in flight on three broken streams in a row.', (p) => p.poisoned);
  perPeerTotal('roster_peer_reconnects_total', 'Times the stream to the peer opened again after it had been open.', (p) => p.reconnects);
  perPeerTotal('roster_peer_conflicts_total', 'Newer records the peer handed back.', (p) => p.conflicts);
  new Gauge({
    name: 'roster_replication_ready',
    help: '1 once start-up sync is over and reads are served.',
    registers,
    collect() {
      this.set(replicator.ready ? 1 : 0);
    },
  });
  const lag = new LabeledHistogram({
    name: 'roster_replication_lag_seconds',
    help: 'From a write applied at its origin to the same write applied here, by action (wall clocks: skew between hosts adds to it).',
    label: 'action',
    buckets: LAG_BUCKETS,
    registers,
  });
  // One series per action, found once (a task is observed per replicated heartbeat).
  const byAction = { register: lag.series('register'), heartbeat: lag.series('heartbeat'), cancel: lag.series('cancel') };
  return (action, seconds) => byAction[action].observe(seconds);
}
