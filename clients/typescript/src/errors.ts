/**
 * Errors of the forge-training SDK.
 *
 * Every failed call reaches the caller as a {@link ForgeTrainingError}: the gRPC status
 * code, the server's message, and what the server put in the `google.rpc.Status` it sends
 * in `grpc-status-details-bin`: the `google.rpc.BadRequest` field violations (which field,
 * what is wrong) and the `google.rpc.RequestInfo` request id to quote in a bug report.
 */

import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, RequestInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { Code };

/** One entry of a `google.rpc.BadRequest`: which field, what is wrong, and why. */
export interface FieldViolation {
  /** The field's path in the request, e.g. `training_config.epochs`. */
  field: string;
  description: string;
  /** An UPPER_SNAKE reason, e.g. `OUT_OF_RANGE`; empty when the server gave none. */
  reason: string;
}

/** The canonical gRPC name of a code: `Code.NotFound` gives `"NOT_FOUND"`. */
export function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  return name ? name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() : `CODE_${code}`;
}

/** A failed call to the forge-training service. */
export class ForgeTrainingError extends Error {
  override readonly name = "ForgeTrainingError";
  /** The gRPC status code (`Code.NotFound`, ...). */
  readonly code: Code;
  /** The server's (or the SDK's) message, without the code in front. */
  readonly rawMessage: string;
  /** The field violations of the status's `google.rpc.BadRequest`; empty when none. */
  readonly fieldViolations: readonly FieldViolation[];
  /** The request id the server logged the call under (`google.rpc.RequestInfo`); empty when none. */
  readonly requestId: string;

  constructor(
    code: Code,
    message: string,
    options: { fieldViolations?: FieldViolation[]; requestId?: string; cause?: unknown } = {},
  ) {
    const fieldViolations = options.fieldViolations ?? [];
    // Like the Python SDK: the violations say more than the summary message when there are any.
    const text = fieldViolations.length
      ? fieldViolations.map((v) => (v.field ? `${v.field}: ${v.description}` : v.description)).join("; ")
      : message || "(no message)";
    super(`${codeName(code)}: ${text.split(/\s+/).join(" ").trim()}`, { cause: options.cause });
    this.code = code;
    this.rawMessage = message;
    this.fieldViolations = fieldViolations;
    this.requestId = options.requestId ?? "";
  }

  /** The canonical gRPC name of {@link code}, e.g. `"NOT_FOUND"`. */
  get codeName(): string {
    return codeName(this.code);
  }
}

/**
 * Any error thrown by a call (a ConnectError from the transport, an abort, a socket error)
 * as a ForgeTrainingError, with the details the server attached.
 */
export function toForgeTrainingError(reason: unknown): ForgeTrainingError {
  if (reason instanceof ForgeTrainingError) {
    return reason;
  }
  const error = ConnectError.from(reason);
  const fieldViolations = error
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })));
  const requestId = error.findDetails(RequestInfoSchema)[0]?.requestId ?? "";
  return new ForgeTrainingError(error.code, error.rawMessage, { fieldViolations, requestId, cause: reason });
}

/**
 * Whether the server answered the call with a status (`grpc-status`), as opposed to the
 * call ending without one: a connection refused, dropped or torn down, a failed TLS
 * handshake, a deadline or abort on this side. connect-node gives those codes that depend
 * on when the failure lands (ABORTED for ECONNRESET, CANCELED for a torn-down HTTP/2
 * session, INTERNAL for a bad certificate); only the missing status is reliable.
 */
export function answeredByServer(error: ConnectError): boolean {
  return error.metadata.has("grpc-status");
}
