// The user flow through the TypeScript SDK against a real server on port 0: upload a
// dataset, train a scikit-learn classifier, watch its metrics live, export it as ONNX and
// check the file's sha256; and the errors a user meets on the way.

import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";

import {
  Code,
  ExportFormat,
  ForgeTrainingClient,
  ForgeTrainingError,
  JobState,
  ModelType,
  type TrainingSpec,
} from "../src/index.js";
import { classificationCsv, type RunningServer, sha256, startServer } from "./server.js";

let server: RunningServer;
let client: ForgeTrainingClient;
let work: string;

before(async () => {
  server = await startServer();
  client = new ForgeTrainingClient(server.address);
  work = await mkdtemp(path.join(tmpdir(), "forge-ts-flow-"));
});

after(async () => {
  client?.close();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function logisticRegression(dataset: string, epochs: number): TrainingSpec {
  return {
    modelType: ModelType.CLASSIFICATION,
    // A few solver iterations per epoch, so that every epoch reports a point instead of
    // the solver converging (and the job finishing early) in the first one.
    modelConfig: { framework: "sklearn", architecture: "logistic_regression", hyperparameters: { max_iter: 3 } },
    trainingConfig: { epochs, seed: 7n },
    dataConfig: { trainDataset: dataset, labelColumn: "label" },
  };
}

test("upload a dataset, train, watch the metrics, export ONNX and check its sha256", async () => {
  const csv = new TextEncoder().encode(classificationCsv(200));
  const dataset = await client.uploadDataset(csv, { format: "csv", datasetId: "ts-flow", labelColumn: "label" });
  assert.equal(dataset.name, "projects/default/datasets/ts-flow");
  assert.equal(dataset.rowCount, 200n);
  assert.deepEqual(
    dataset.schema!.columns.map((c) => c.name),
    ["f1", "f2", "f3", "f4", "label"],
  );
  assert.equal((await client.getDataset("ts-flow")).name, dataset.name);

  const started = await client.startTraining(logisticRegression(dataset.name, 3), { trainingJobId: "ts-logreg" });
  assert.equal(started.name, "projects/default/trainingJobs/ts-logreg");

  const points = [];
  for await (const point of client.watchMetrics(started)) {
    points.push(point);
  }
  assert.deepEqual(
    points.map((p) => p.epoch),
    [1, 2, 3],
  );
  assert.deepEqual(
    points.map((p) => p.sequence),
    [1n, 2n, 3n],
  );
  for (const point of points) {
    assert.equal(point.totalEpochs, 3);
    assert.ok(point.trainingLoss! > 0 && point.trainingLoss! < 1, `training loss ${point.trainingLoss}`);
    assert.ok(point.accuracy! > 0.8, `accuracy ${point.accuracy}`);
  }

  const done = await client.waitForJob(started, { timeoutMs: 30_000 });
  assert.equal(done.state, JobState.COMPLETED);
  assert.ok(done.exportFormats.includes(ExportFormat.ONNX));

  const file = path.join(work, "model.onnx");
  const metadata = await client.exportModel(done, "onnx", file);
  const onnx = await readFile(file);
  assert.equal(metadata.format, ExportFormat.ONNX);
  assert.equal(BigInt(onnx.length), metadata.sizeBytes);
  assert.equal(sha256(onnx), metadata.sha256);
  assert.deepEqual(metadata.inputFeatures, ["f1", "f2", "f3", "f4"]);
  assert.deepEqual(metadata.classLabels, ["0", "1"]);
  assert.deepEqual(
    metadata.outputs.map((o) => o.name),
    ["label", "probabilities"],
  );
  // No temporary file is left beside the model.
  assert.deepEqual(await readdir(work), ["model.onnx"]);

  // The metric history as a document.
  const history = JSON.parse(Buffer.from(await client.exportMetrics(done, "json")).toString());
  assert.equal(history.job, done.name);
  assert.deepEqual(history.points.map((p: { epoch: number }) => p.epoch), [1, 2, 3]);
  const rows = Buffer.from(await client.exportMetrics(done.name, "csv")).toString().trim().split("\n");
  assert.equal(rows.length, 4);
  assert.ok(rows[0]!.startsWith("sequence,time,epoch,total_epochs,progress,epoch_seconds,training_loss"));

  // The same bytes in memory, and into a directory under the server's file name.
  const inMemory = await client.exportModelBytes(done.name, ExportFormat.ONNX);
  assert.equal(sha256(inMemory.data), metadata.sha256);
  const dir = await mkdtemp(path.join(work, "dir-"));
  await client.exportModel(done.name, "onnx", dir);
  const [named] = await readdir(dir);
  assert.equal(named, path.basename(metadata.filename));
  assert.equal(sha256(await readFile(path.join(dir, named!))), metadata.sha256);
});

test("upload by path, in many chunks, infers the format from the extension", async () => {
  const file = path.join(work, "rows.csv");
  await writeFile(file, classificationCsv(50, 11));
  // About twenty chunks: the server checks the size and sha256 of them all together.
  const dataset = await client.uploadDataset(file, { labelColumn: "label", chunkSize: 100 });
  assert.equal(dataset.rowCount, 50n);
  await assert.rejects(client.uploadDataset(new Uint8Array([1, 2, 3])), /cannot infer the data format of raw bytes; pass format/);
  await assert.rejects(client.uploadDataset(file, { chunkSize: 2 * 1024 * 1024 }), /chunkSize must be between 1 and 1048576/);
  await assert.rejects(client.uploadDataset(file, { format: "xlsx" }), /unknown data format "xlsx"; valid: csv, parquet, jsonl/);
});

test("watchMetrics from a sequence yields only the later points", async () => {
  const dataset = await client.uploadDataset(new TextEncoder().encode(classificationCsv(100, 3)), { format: "csv", labelColumn: "label" });
  const job = await client.startTraining(logisticRegression(dataset.name, 3));
  await client.waitForJob(job, { timeoutMs: 30_000 });
  const later = [];
  for await (const point of client.watchMetrics(job, { fromSequence: 2n })) {
    later.push(point.sequence);
  }
  assert.deepEqual(later, [3n]);
});

test("a missing job is NOT_FOUND with the request id", async () => {
  const error = await client.getJob("no-such-job").then(
    () => assert.fail("getJob of a missing job succeeded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ForgeTrainingError);
  assert.equal(error.code, Code.NotFound);
  assert.equal(error.codeName, "NOT_FOUND");
  assert.match(error.message, /^NOT_FOUND: .*no-such-job/);
  assert.match(error.requestId, /\S/);

  // A request id of the caller's choosing, sent as a header, comes back in the error.
  const tagged = new ForgeTrainingClient(server.address, { headers: { "x-request-id": "ts-request-1" } });
  try {
    await assert.rejects(tagged.getJob("no-such-job"), (e: unknown) => e instanceof ForgeTrainingError && e.requestId === "ts-request-1");
  } finally {
    tagged.close();
  }
});

test("a bad training spec is INVALID_ARGUMENT naming the field", async () => {
  const spec = logisticRegression("projects/default/datasets/ts-flow", -1);
  const error = await client.startTraining(spec).then(
    () => assert.fail("a negative epoch count was accepted"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ForgeTrainingError);
  assert.equal(error.code, Code.InvalidArgument);
  assert.ok(
    error.fieldViolations.some((v) => v.field === "training_config.epochs"),
    JSON.stringify(error.fieldViolations),
  );
  assert.match(error.message, /^INVALID_ARGUMENT: training_config\.epochs: /);
});

test("waiting for a state a finished job can never reach is FAILED_PRECONDITION", async () => {
  await assert.rejects(
    client.waitForJob("ts-logreg", { states: [JobState.PAUSED] }),
    (e: unknown) => e instanceof ForgeTrainingError && e.code === Code.FailedPrecondition && /ended JOB_STATE_COMPLETED/.test(e.message),
  );
});
