// Token authentication in call metadata: the client side adds it to every call, the server compares it in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";

const HEADER = "authorization";
const SCHEME = "Bearer ";

/** Why a call's metadata is refused, or undefined when it may proceed (always, when no token is set). */
export type Authenticator = (metadata: grpc.Metadata) => string | undefined;

export function tokenAuthenticator(token: string | undefined): Authenticator {
  if (!token) return () => undefined;
  // Hashing both sides makes the compared buffers equal in length, so the comparison's time says nothing about the token.
  const want = createHash("sha256").update(token).digest();
  return (metadata) => {
    const value = metadata.get(HEADER)[0];
    if (typeof value !== "string" || !value.startsWith(SCHEME)) return "this head requires a token (--token or ORION_TOKEN)";
    const got = createHash("sha256").update(value.slice(SCHEME.length)).digest();
    return timingSafeEqual(got, want) ? undefined : "wrong token (check --token or ORION_TOKEN)";
  };
}

/** Adds the token to the metadata of every call made through a client built with it. */
export function tokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(HEADER, SCHEME + token);
        next(metadata, listener);
      },
    });
}
