import * as grpc from '@grpc/grpc-js';

/**
 * Statuses grpc-js sends by itself as INTERNAL although the client sent bad input, matched by
 * their details (grpc-js 1.14: server-interceptors.ts). INTERNAL tells a client the server is
 * broken and is worth retrying; these requests will fail the same way every time.
 */
const CLIENT_FAULTS: ReadonlyArray<{ readonly details: RegExp; readonly say: (details: string) => string }> = [
  { details: /^Failed to decompress message$/, say: () => 'request message could not be decompressed with its grpc-encoding' },
  { details: /^Invalid grpc-timeout value/, say: (details) => `grpc-timeout: ${details.replace(/^Invalid grpc-timeout value /, 'not a valid timeout: ')}` },
];

/**
 * Answers INVALID_ARGUMENT where grpc-js would answer INTERNAL for a client's fault (a corrupt
 * compressed message, a malformed `grpc-timeout` header). grpc-js sends those statuses from its
 * innermost call object, calling its own `sendStatus`, so no interceptor's responder sees them:
 * this one replaces `sendStatus` on that object, and must therefore be the first interceptor.
 * It passes that object on unwrapped (grpc-js only chains what an interceptor returns), so
 * the next interceptor is handed grpc-js' own call too.
 */
export function clientFaultsAsInvalidArgument(): grpc.ServerInterceptor {
  return (_descriptor, call) => {
    const send = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      if (status.code !== grpc.status.INTERNAL || status.details === undefined) return send(status);
      const details = status.details;
      const fault = CLIENT_FAULTS.find((f) => f.details.test(details));
      send(fault ? { ...status, code: grpc.status.INVALID_ARGUMENT, details: fault.say(details) } : status);
    };
    return call as grpc.ServerInterceptingCall;
  };
}
