import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { outsideScope, type AccessPolicy, type Presented, type Role } from '../security/access.js';
import { certificateNames } from '../security/tls-material.js';
import type { ConnectionGate } from './connections.js';

/** What a method needs: `open` (health), or roles, plus where a message names the apps it touches. */
export type MethodNeed = 'open' | { readonly anyOf: readonly Role[]; readonly appsOf?: (message: unknown) => string[] };

type Fields = { app?: unknown; instance?: { app?: unknown }; heartbeats?: Array<{ app?: unknown }> };
const asFields = (message: unknown): Fields => (typeof message === 'object' && message !== null ? (message as Fields) : {});
const str = (value: unknown): string[] => (typeof value === 'string' && value !== '' ? [value] : []);

const ownApp = (message: unknown): string[] => str(asFields(message).app);
const read: MethodNeed = { anyOf: ['read'] };
const operate: MethodNeed = { anyOf: ['operate'] };
const replicate: MethodNeed = { anyOf: ['replicate'] };

/**
 * Every method served on the gRPC port and the roles that may call it. A method missing
 * here needs `operate` (closed by default); test/security checks that every served method
 * is listed.
 */
export const METHOD_NEEDS: Readonly<Record<string, MethodNeed>> = {
  '/roster.v1.RegistryService/Register': { anyOf: ['register'], appsOf: (m) => str(asFields(m).instance?.app) },
  '/roster.v1.RegistryService/Heartbeat': { anyOf: ['register'], appsOf: ownApp },
  '/roster.v1.RegistryService/Heartbeats': { anyOf: ['register'], appsOf: (m) => (asFields(m).heartbeats ?? []).flatMap((h) => str(h.app)) },
  // `register` cancels within its apps; `operate` cancels anything.
  '/roster.v1.RegistryService/Cancel': { anyOf: ['register', 'operate'], appsOf: ownApp },
  '/roster.v1.RegistryService/SetStatusOverride': operate,
  '/roster.v1.RegistryService/ClearStatusOverride': operate,
  '/roster.v1.RegistryService/UpdateMetadata': operate,
  '/roster.v1.RegistryService/GetInstance': read,
  '/roster.v1.RegistryService/ListApplications': read,
  '/roster.v1.RegistryService/GetApplication': read,
  '/roster.v1.RegistryService/ListByVip': read,
  '/roster.v1.RegistryService/GetDelta': read,
  '/roster.v1.RegistryService/Watch': read,
  '/roster.v1.ReplicationService/Replicate': replicate,
  '/roster.v1.ReplicationService/Snapshot': replicate,
  '/roster.v1.ReplicationService/Digest': replicate,
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources': read,
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources': read,
  // Load balancers and Kubernetes probe health without credentials.
  '/grpc.health.v1.Health/Check': 'open',
  '/grpc.health.v1.Health/Watch': 'open',
  '/grpc.health.v1.Health/List': 'open',
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': read,
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': read,
};

const UNLISTED: MethodNeed = operate;

/** The need of a method path. */
export function needOf(path: string): MethodNeed {
  return METHOD_NEEDS[path] ?? UNLISTED;
}

/** Why a call was refused before reaching its handler, for the metrics. */
export type RefusalReason = 'unauthenticated' | 'permission_denied' | 'call_limit';

export interface GuardOptions {
  /** The policy in force now (it changes when the credentials file is reloaded). */
  readonly policy: () => AccessPolicy;
  /** Counts calls per connection and in total; absent: no call caps. */
  readonly gate?: ConnectionGate;
  readonly onRefused?: (method: string, reason: RefusalReason) => void;
  readonly logger: Logger;
}

/** The method name alone, for messages: `/roster.v1.RegistryService/Register` → `Register`. */
const actionOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

/** Who is calling, as the transport knows it; `certificate` is read only when a policy needs it. */
export interface Caller {
  /** The connection the call arrived on (as the gate counts it). */
  readonly connection: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined; readonly peer?: string };
  /** `address:port`, for logs. */
  peer(): string;
  /** The `authorization` header, if any. */
  readonly authorization: string | undefined;
  /** The client certificate the TLS layer verified, if any. */
  certificate(): { readonly subject?: { readonly CN?: unknown }; readonly subjectaltname?: string } | undefined;
}

/** Why a call or one of its messages is refused: the status to answer with, and the reason for the metrics. */
export interface Refusal {
  readonly ok: false;
  readonly code: grpc.status;
  readonly details: string;
}

/** An admitted call: `release` once it is over (idempotent); `check` each message it carries. */
export interface Admitted {
  readonly ok: true;
  release(): void;
  check(message: unknown): Refusal | undefined;
}

/** Bearer token from `authorization`, names of a certificate the TLS layer verified. */
function presentedBy(caller: Caller): Presented {
  const header = caller.authorization;
  const token = header !== undefined ? (/^Bearer\s+(.+)$/i.exec(header)?.[1] ?? header) : undefined;
  const cert = caller.certificate();
  const names = cert ? certificateNames(cert.subject?.CN as string | undefined, cert.subjectaltname) : undefined;
  return { ...(token !== undefined ? { token } : {}), ...(names ? { certificateNames: names } : {}) };
}

const NO_RELEASE = (): void => undefined;
const NO_CHECK = (): undefined => undefined;

/**
 * The one place calls are admitted, whichever way they arrive (grpc-js' interceptor below, or
 * the unary fast path): call caps first, then who the caller is and whether its roles allow
 * the method, then (for app-scoped `register` credentials) the apps each message touches. A
 * refused call or message never reaches the handler, so it changes nothing.
 */
export class CallGuard {
  readonly #options: GuardOptions;
  readonly #log: Logger;

  constructor(options: GuardOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'guard' });
  }

  admit(method: string, caller: Caller): Admitted | Refusal {
    const need = needOf(method);
    let release = NO_RELEASE;
    if (this.#options.gate) {
      const admission = this.#options.gate.admitCall(caller.connection);
      if (!admission.ok) return this.#refuse(method, caller, grpc.status.RESOURCE_EXHAUSTED, admission.message, 'call_limit');
      release = admission.release;
    }
    const policy = this.#options.policy();
    // An open policy allows everything: nothing presented needs hashing or parsing.
    if (need === 'open' || policy.open) return { ok: true, release, check: NO_CHECK };
    const decision = policy.decide(presentedBy(caller), { action: actionOf(method), anyOf: need.anyOf });
    if (!decision.allowed) {
      release();
      const unauthenticated = decision.code === 'unauthenticated';
      return this.#refuse(method, caller, unauthenticated ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED, decision.message, decision.code);
    }
    const { appsOf } = need;
    if (appsOf === undefined || decision.apps === undefined) return { ok: true, release, check: NO_CHECK };
    return {
      ok: true,
      release,
      check: (message) => {
        for (const app of appsOf(message)) {
          const refusal = outsideScope(decision, actionOf(method), app);
          if (refusal && !refusal.allowed) return this.#refuse(method, caller, grpc.status.PERMISSION_DENIED, refusal.message, 'permission_denied');
        }
        return undefined;
      },
    };
  }

  #refuse(method: string, caller: Caller, code: grpc.status, details: string, reason: RefusalReason): Refusal {
    this.#options.onRefused?.(method, reason);
    if (reason !== 'call_limit') this.#log.debug({ method, peer: caller.peer(), reason }, 'call refused');
    return { ok: false, code, details };
  }
}

/** {@link CallGuard} as a grpc-js interceptor. */
export function guard(calls: CallGuard): grpc.ServerInterceptor {
  return (descriptor, call) => {
    let admitted: Admitted | undefined;
    const refuse = (refusal: Refusal): void => {
      admitted?.release();
      intercepted.sendStatus({ code: refusal.code, details: refusal.details });
    };
    const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            const header = metadata.get('authorization')[0];
            const outcome = calls.admit(descriptor.path, {
              connection: call.getConnectionInfo(),
              peer: () => call.getPeer(),
              authorization: typeof header === 'string' ? header : undefined,
              certificate: () => call.getAuthContext().sslPeerCertificate,
            });
            if (!outcome.ok) return refuse(outcome);
            admitted = outcome;
            forward(metadata);
          },
          onReceiveMessage: (message, deliver) => {
            const refusal = admitted?.check(message);
            if (refusal) return refuse(refusal);
            deliver(message);
          },
          onCancel: () => admitted?.release(),
        }),
      sendStatus: (status, next) => {
        admitted?.release();
        next(status);
      },
    });
    return intercepted;
  };
}
