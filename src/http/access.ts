import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { outsideScope, type AccessPolicy, type Decision, type Presented, type Role } from '../security/access.js';
import { certificateNames } from '../security/tls-material.js';

/** What an HTTP request needs: `open`, or roles (and the app it touches, for app-scoped `register`). */
export type RouteNeed = 'open' | { readonly anyOf: readonly Role[]; readonly app?: string };

const EUREKA_APPS = /^\/eureka(?:\/v2)?\/apps\/([^/]+)(?:\/([^/]+))?$/;

/**
 * The roles of every request on the HTTP port, one table for every face, so a face added
 * later is closed by default: reads need `read`, writes need `operate` unless listed here.
 * Health and metrics stay open (probes and scrapers carry no credential; neither shows a
 * secret). Eureka's register and heartbeat need `register`, its cancel `register` or
 * `operate`, each within a register credential's apps; its status and metadata overrides
 * need `operate`, as on gRPC.
 */
export function routeNeed(method: string, path: string): RouteNeed {
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') return 'open';
  if (method === 'GET' || method === 'HEAD') return { anyOf: ['read'] };
  const eureka = EUREKA_APPS.exec(path);
  if (eureka) {
    const app = safeDecode(eureka[1]!);
    const withId = eureka[2] !== undefined;
    if (method === 'POST' && !withId) return { anyOf: ['register'], app };
    if (method === 'PUT' && withId) return { anyOf: ['register'], app };
    if (method === 'DELETE' && withId) return { anyOf: ['register', 'operate'], app };
  }
  return { anyOf: ['operate'] };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * `Authorization: Bearer <token>`, or Basic with the token as password (what Eureka clients
 * and browsers send: `http://user:TOKEN@host/eureka/`), and a client certificate the TLS
 * layer verified.
 */
export function presentedBy(req: IncomingMessage): Presented {
  const header = req.headers.authorization;
  let token: string | undefined;
  if (header !== undefined) {
    const bearer = /^Bearer\s+(.+)$/i.exec(header);
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
    if (bearer) token = bearer[1];
    else if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      token = decoded.slice(decoded.indexOf(':') + 1);
    } else token = header;
  }
  const socket = req.socket as Partial<TLSSocket>;
  let names: string[] | undefined;
  if (socket.authorized === true && typeof socket.getPeerCertificate === 'function') {
    const cert = socket.getPeerCertificate();
    if (cert?.raw) names = certificateNames(cert.subject?.CN as string | undefined, cert.subjectaltname);
  }
  return { ...(token !== undefined ? { token } : {}), ...(names ? { certificateNames: names } : {}) };
}

/** The decision for one request: roles first, then the app a `register` credential may touch. */
export function decideRequest(policy: AccessPolicy, req: IncomingMessage, method: string, path: string): Decision | undefined {
  const need = routeNeed(method, path);
  if (need === 'open') return undefined;
  const action = `${method} ${path}`;
  const decision = policy.decide(presentedBy(req), { action, anyOf: need.anyOf });
  if (!decision.allowed || need.app === undefined) return decision;
  return outsideScope(decision, action, need.app) ?? decision;
}
