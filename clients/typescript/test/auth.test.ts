// API keys and projects through the TypeScript SDK, against a real server started with
// --auth api-key: the key goes in `authorization: Bearer`, from the option or from
// FORGE_TRAINING_API_KEY, and `project` picks the project of a key that has several.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";

import { API_KEY_ENV, Code, ForgeTrainingClient, ForgeTrainingError, ModelType } from "../src/index.js";
import { classificationCsv, createApiKey, type RunningServer, startServer } from "./server.js";

let dataDir: string;
let server: RunningServer;
let soloKey: string;
let twoProjectKey: string;
const clients: ForgeTrainingClient[] = [];
const csv = new TextEncoder().encode(classificationCsv(20));

function connect(options: ConstructorParameters<typeof ForgeTrainingClient>[1] = {}): ForgeTrainingClient {
  const client = new ForgeTrainingClient(server.address, options);
  clients.push(client);
  return client;
}

function isCode(code: Code) {
  return (e: unknown) => e instanceof ForgeTrainingError && e.code === code;
}

before(async () => {
  delete process.env[API_KEY_ENV]; // the tests set it where they mean to
  dataDir = await mkdtemp(path.join(tmpdir(), "forge-ts-auth-"));
  soloKey = await createApiKey(dataDir, "ts-solo", { solo: "trainer" });
  twoProjectKey = await createApiKey(dataDir, "ts-two", { alpha: "trainer", beta: "viewer" });
  server = await startServer(["--auth", "api-key"], dataDir);
});

after(async () => {
  for (const client of clients) client.close();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test("a call without a key is UNAUTHENTICATED", async () => {
  await assert.rejects(connect().getJob("anything"), isCode(Code.Unauthenticated));
  await assert.rejects(connect({ apiKey: "ftk_not_a_real_key" }).getJob("anything"), isCode(Code.Unauthenticated));
});

test("the key from the option reaches the key's project, raw clients included", async () => {
  const client = connect({ apiKey: soloKey });
  const dataset = await client.uploadDataset(csv, { format: "csv", datasetId: "mine", labelColumn: "label" });
  assert.equal(dataset.name, "projects/solo/datasets/mine");
  const raw = await client.data.getDataset({ name: "mine" });
  assert.equal(raw.dataset!.rowCount, 20n);
});

test("the key from FORGE_TRAINING_API_KEY is used when no key is given", async () => {
  process.env[API_KEY_ENV] = soloKey;
  try {
    const dataset = await connect().getDataset("mine");
    assert.equal(dataset.name, "projects/solo/datasets/mine");
  } finally {
    delete process.env[API_KEY_ENV];
  }
});

test("project picks one of a key's projects, with that project's role", async () => {
  const alpha = connect({ apiKey: twoProjectKey, project: "alpha" });
  const dataset = await alpha.uploadDataset(csv, { format: "csv", datasetId: "shared", labelColumn: "label" });
  assert.equal(dataset.name, "projects/alpha/datasets/shared");

  const beta = connect({ apiKey: twoProjectKey, project: "beta" });
  // A bare id now means a dataset of beta, where there is none by that id; and the key is
  // only a viewer in beta, so training on one is refused, naming the role it needs.
  await assert.rejects(beta.getDataset("shared"), isCode(Code.NotFound));
  const spec = {
    modelType: ModelType.CLASSIFICATION,
    modelConfig: { framework: "sklearn", architecture: "sgd" },
    trainingConfig: { epochs: 1 },
    dataConfig: { trainDataset: "shared", labelColumn: "label" },
  };
  await assert.rejects(beta.startTraining(spec), (e: unknown) => isCode(Code.PermissionDenied)(e) && /needs trainer/.test(String(e)));
  // The solo key's project is invisible to this key, as if it did not exist.
  await assert.rejects(alpha.getDataset("projects/solo/datasets/mine"), isCode(Code.NotFound));
});
