/** What the probes say about an application, once the thresholds are applied. */
export type Health = 'starting' | 'healthy' | 'unhealthy';

/**
 * Kubernetes-style thresholds: `failureThreshold` consecutive failures make a healthy (or
 * starting) application unhealthy; `successThreshold` consecutive successes make it healthy.
 * The first verdict leaves `starting` as soon as either threshold is reached, so an
 * application that is up at once is UP after `successThreshold` probes.
 */
export class HealthThresholds {
  #health: Health = 'starting';
  #successes = 0;
  #failures = 0;

  constructor(
    readonly failureThreshold: number,
    readonly successThreshold: number,
  ) {}

  get health(): Health {
    return this.#health;
  }

  /** Records one probe result; returns the new health when it changed, else undefined. */
  record(ok: boolean): Health | undefined {
    if (ok) {
      this.#successes++;
      this.#failures = 0;
      if (this.#health !== 'healthy' && this.#successes >= this.successThreshold) return (this.#health = 'healthy');
    } else {
      this.#failures++;
      this.#successes = 0;
      if (this.#health !== 'unhealthy' && this.#failures >= this.failureThreshold) return (this.#health = 'unhealthy');
    }
    return undefined;
  }
}
