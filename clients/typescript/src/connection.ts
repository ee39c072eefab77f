/**
 * Opening a gRPC (HTTP/2) transport to a forge-training server: TLS (mutual TLS with a
 * client certificate) and the metadata every call carries (the API key and the default
 * project), the same as the Python SDK's connection module.
 *
 * The metadata is added by an interceptor of the transport, so the raw service clients
 * of a ForgeTrainingClient (`client.trainer`, `client.data`, `client.pipelines`) carry the
 * key as well.
 */

import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";

import type { Interceptor } from "@connectrpc/connect";

export const API_KEY_ENV = "FORGE_TRAINING_API_KEY";
export const PROJECT_HEADER = "x-forge-project";

/** PEM as bytes, as PEM text, or as the path of a file holding it. */
export type Pem = string | Uint8Array;

export interface ConnectionOptions {
  /**
   * The API key of a server started with `--auth api-key` (`forge-training keys create`
   * makes one); default: the FORGE_TRAINING_API_KEY environment variable. Sent as
   * `authorization: Bearer <key>` with every call.
   */
  apiKey?: string;
  /** The project bare ids mean (`x-forge-project`); a key of a single project needs none. */
  project?: string;
  /** Connect with TLS, trusting the system's CAs (implied by the three options below). */
  tls?: boolean;
  /** The CA that signed the server's certificate. */
  rootCertificates?: Pem;
  /** This client's certificate and key, for a server that requires mutual TLS. */
  clientCertificate?: Pem;
  clientKey?: Pem;
  /** More headers sent with every call, e.g. `{"x-request-id": "..."}`. */
  headers?: Record<string, string>;
}

function pem(value: Pem | undefined, what: string): Buffer | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== "string") {
    return Buffer.from(value);
  }
  if (value.trimStart().startsWith("-----BEGIN")) {
    return Buffer.from(value);
  }
  try {
    return readFileSync(value);
  } catch (error) {
    throw new Error(`${what}: ${value} is neither PEM text nor a readable file`, { cause: error });
  }
}

/** Whether the options ask for TLS: `tls`, or any certificate. */
export function usesTls(options: ConnectionOptions): boolean {
  return Boolean(options.tls || options.rootCertificates || options.clientCertificate || options.clientKey);
}

/** The base URL of `address`: `host:port` (scheme from the TLS options) or a full http(s) URL. */
export function baseUrl(address: string, options: ConnectionOptions): string {
  if (/^https?:\/\//.test(address)) {
    if (address.startsWith("http://") && usesTls(options)) {
      throw new Error(`address ${address} is plaintext http:// but TLS options are set; use https:// or host:port`);
    }
    return address;
  }
  if (!/^[^/\s]+:\d+$/.test(address)) {
    throw new Error(`address must be host:port or an http(s):// URL, got ${JSON.stringify(address)}`);
  }
  return `${usesTls(options) ? "https" : "http"}://${address}`;
}

/** The HTTP/2 session options: the CA and, for mutual TLS, this client's certificate and key. */
export function sessionOptions(options: ConnectionOptions): http2.SecureClientSessionOptions {
  if (Boolean(options.clientCertificate) !== Boolean(options.clientKey)) {
    throw new Error("clientCertificate and clientKey go together (mutual TLS): give both or neither");
  }
  const tls: http2.SecureClientSessionOptions = {};
  const ca = pem(options.rootCertificates, "rootCertificates");
  const cert = pem(options.clientCertificate, "clientCertificate");
  const key = pem(options.clientKey, "clientKey");
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return tls;
}

/** The headers every call carries: the API key (option, else FORGE_TRAINING_API_KEY), the project, the extras. */
export function identityHeaders(options: ConnectionOptions): [string, string][] {
  const apiKey = options.apiKey ?? process.env[API_KEY_ENV] ?? "";
  const headers: [string, string][] = Object.entries(options.headers ?? {});
  if (apiKey) {
    headers.push(["authorization", `Bearer ${apiKey}`]);
  }
  if (options.project) {
    headers.push([PROJECT_HEADER, options.project]);
  }
  return headers;
}

/** An interceptor that sets fixed headers on every call, streams included. */
export function headersInterceptor(headers: [string, string][]): Interceptor {
  return (next) => async (request) => {
    for (const [key, value] of headers) {
      request.header.set(key, value);
    }
    return next(request);
  };
}
