// watchMetrics across a dropped connection: the client talks to the server through a TCP
// proxy that the test cuts while a long job is streaming points; the iterator reconnects
// and goes on after the last point it yielded, missing and repeating none.

import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, test } from "node:test";

import { Code, ForgeTrainingClient, ForgeTrainingError, JobState, ModelType } from "../src/index.js";
import { classificationCsv, type RunningServer, startServer } from "./server.js";

/** A TCP proxy to `target` that counts its connections and can cut all of them at once. */
class CuttableProxy {
  readonly server: net.Server;
  connections = 0;
  private readonly open = new Set<net.Socket>();

  constructor(target: string) {
    const [host, port] = target.split(":");
    this.server = net.createServer((client) => {
      this.connections += 1;
      const upstream = net.connect(Number(port), host);
      for (const socket of [client, upstream]) {
        this.open.add(socket);
        socket.on("close", () => this.open.delete(socket));
        socket.on("error", () => undefined); // a cut resets both ends
      }
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  cut(): void {
    for (const socket of this.open) {
      socket.resetAndDestroy();
    }
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let server: RunningServer;
let proxy: CuttableProxy;
let client: ForgeTrainingClient;

before(async () => {
  server = await startServer();
  proxy = new CuttableProxy(server.address);
  client = new ForgeTrainingClient(await proxy.listen());
});

after(async () => {
  client?.close();
  await proxy?.close();
  await server?.stop();
});

test("watchMetrics reconnects after a dropped connection without missing or repeating a point", async () => {
  const csv = new TextEncoder().encode(classificationCsv(200));
  const dataset = await client.uploadDataset(csv, { format: "csv", labelColumn: "label" });
  // Far more epochs than the test waits for: the job is still running when the
  // connection drops, and is cancelled once points have arrived after the reconnect.
  const job = await client.startTraining({
    modelType: ModelType.CLASSIFICATION,
    modelConfig: { framework: "sklearn", architecture: "sgd" },
    trainingConfig: { epochs: 10_000, seed: 3n },
    dataConfig: { trainDataset: dataset.name, labelColumn: "label" },
  });

  const sequences: bigint[] = [];
  let cutAt: bigint | undefined;
  let cancelled = false;
  for await (const point of client.watchMetrics(job)) {
    sequences.push(point.sequence);
    if (cutAt === undefined && sequences.length === 3) {
      cutAt = point.sequence;
      proxy.cut();
    } else if (cutAt !== undefined && !cancelled && proxy.connections >= 2 && point.sequence >= cutAt + 3n) {
      // Points already received before the cut come first; cancel once the new connection
      // has delivered more.
      cancelled = true;
      await client.trainer.cancelTraining({ name: job.name });
    }
  }

  assert.ok(cancelled, `no point after the cut; got ${sequences.join(",")}`);
  assert.ok(proxy.connections >= 2, `the watch did not reconnect (${proxy.connections} connection)`);
  // Every point once, in order, from 1: nothing missed or repeated across the reconnect.
  assert.deepEqual(
    sequences,
    sequences.map((_, i) => BigInt(i + 1)),
  );
  const final = await client.getJob(job);
  assert.equal(final.state, JobState.CANCELLED);
  assert.equal(BigInt(sequences.length), final.latestMetrics!.sequence);
});

test("a watch ends with CANCELED when its signal aborts; waitForJob gives up with DEADLINE_EXCEEDED", async () => {
  const dataset = await client.uploadDataset(new TextEncoder().encode(classificationCsv(100)), { format: "csv", labelColumn: "label" });
  const job = await client.startTraining({
    modelType: ModelType.CLASSIFICATION,
    modelConfig: { framework: "sklearn", architecture: "sgd" },
    trainingConfig: { epochs: 10_000, seed: 3n },
    dataConfig: { trainDataset: dataset.name, labelColumn: "label" },
  });
  try {
    await assert.rejects(
      client.waitForJob(job, { timeoutMs: 300 }),
      (e: unknown) => e instanceof ForgeTrainingError && e.code === Code.DeadlineExceeded && /is still JOB_STATE_(PENDING|RUNNING) after 300 ms/.test(e.message),
    );
    const stop = new AbortController();
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const point of client.watchMetrics(job, { signal: stop.signal })) {
          seen = Number(point.sequence);
          if (seen === 2) stop.abort();
        }
      })(),
      (e: unknown) => e instanceof ForgeTrainingError && e.code === Code.Canceled,
    );
    assert.ok(seen >= 2);
  } finally {
    await client.trainer.cancelTraining({ name: job.name });
  }
});
