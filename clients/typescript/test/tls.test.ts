// TLS and mutual TLS between the TypeScript SDK and a real server, with certificates made
// here by openssl: a CA, a server certificate for 127.0.0.1 and a client certificate.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { Code, ForgeTrainingClient, ForgeTrainingError } from "../src/index.js";
import { type RunningServer, startServer } from "./server.js";

const run = promisify(execFile);
let pki: string;
const servers: RunningServer[] = [];
const clients: ForgeTrainingClient[] = [];

async function openssl(...args: string[]): Promise<void> {
  await run("openssl", args, { cwd: pki });
}

/** A P-256 key and a certificate for `subject`, signed by the CA, with `extensions` (an openssl extfile). */
async function issue(label: string, subject: string, extensions: string): Promise<void> {
  await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${label}.key`, "-out", `${label}.csr`, "-subj", `/CN=${subject}`);
  await writeFile(path.join(pki, `${label}.ext`), extensions);
  await openssl("x509", "-req", "-in", `${label}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "1", "-out", `${label}.crt`, "-extfile", `${label}.ext`);
}

function file(name: string): string {
  return path.join(pki, name);
}

function connect(address: string, options: ConstructorParameters<typeof ForgeTrainingClient>[1]): ForgeTrainingClient {
  const client = new ForgeTrainingClient(address, { timeoutMs: 10_000, ...options });
  clients.push(client);
  return client;
}

/** NOT_FOUND for a job that does not exist: the call went through and the server answered. */
async function answers(client: ForgeTrainingClient): Promise<void> {
  await assert.rejects(client.getJob("no-such-job"), (e: unknown) => e instanceof ForgeTrainingError && e.code === Code.NotFound);
}

/** The connection fails before any call reaches the server: UNAVAILABLE. */
async function refused(client: ForgeTrainingClient, why: RegExp): Promise<void> {
  await assert.rejects(client.getJob("no-such-job"), (e: unknown) => e instanceof ForgeTrainingError && e.code === Code.Unavailable && why.test(e.message));
}

before(async () => {
  pki = await mkdtemp(path.join(tmpdir(), "forge-ts-pki-"));
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=forge-ts-test-ca", "-days", "1");
  await issue("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  await issue("client", "forge-ts-client", "extendedKeyUsage=clientAuth\n");
});

after(async () => {
  for (const client of clients) client.close();
  for (const server of servers) await server.stop();
  if (pki) await rm(pki, { recursive: true, force: true });
});

test("TLS: the CA given as a file path or as PEM text; plaintext and unknown CAs are refused", async () => {
  const server = await startServer(["--tls-cert", file("server.crt"), "--tls-key", file("server.key")]);
  servers.push(server);
  await answers(connect(server.address, { rootCertificates: file("ca.crt") }));
  await answers(connect(server.address, { rootCertificates: await readFile(file("ca.crt"), "utf8") }));
  await refused(connect(server.address, {}), /no answer from 127\.0\.0\.1:\d+/);
  await refused(connect(server.address, { tls: true }), /certificate/); // the system's CAs do not know ours
});

test("mutual TLS: the server admits a client with a certificate of its CA only", async () => {
  const server = await startServer([
    "--tls-cert", file("server.crt"), "--tls-key", file("server.key"), "--tls-client-ca", file("ca.crt"),
  ]);
  servers.push(server);
  await answers(connect(server.address, {
    rootCertificates: file("ca.crt"), clientCertificate: file("client.crt"), clientKey: file("client.key"),
  }));
  await refused(connect(server.address, { rootCertificates: file("ca.crt") }), /no answer from/);
  assert.throws(
    () => connect(server.address, { rootCertificates: file("ca.crt"), clientCertificate: file("client.crt") }),
    /clientCertificate and clientKey go together/,
  );
  assert.throws(() => connect(server.address, { rootCertificates: file("missing.crt") }), /rootCertificates: .*missing\.crt is neither PEM text nor a readable file/);
});
