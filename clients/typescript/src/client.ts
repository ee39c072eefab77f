/**
 * A small client for the forge-training service: the user flow (upload a dataset, train,
 * watch the metrics live, wait, export the model) as typed async methods over the
 * generated service clients.
 *
 *     const client = new ForgeTrainingClient("127.0.0.1:50051");
 *     const data = await client.uploadDataset("churn.csv", { labelColumn: "churned" });
 *     const job = await client.startTraining({ ... });
 *     for await (const point of client.watchMetrics(job)) console.log(point.epoch, point.validationLoss);
 *     await client.exportModel(job, "onnx", "model.onnx");
 *     client.close();
 *
 * A failed call throws a {@link ForgeTrainingError}; local mistakes (a bad option, a file
 * that cannot be read or written) throw ordinary errors. Resource arguments take a bare id
 * (`"abc"`), a full resource name (`"projects/default/trainingJobs/abc"`) or any message
 * with a `name` (a Dataset, a TrainingJob); ids and names go to the server unchanged.
 * Everything else is on the raw clients `client.trainer`, `client.data`, `client.pipelines`.
 */

import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { create, type DescEnum, type MessageInitShape } from "@bufbuild/protobuf";
import { type CallOptions, type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { baseUrl, type ConnectionOptions, headersInterceptor, identityHeaders, sessionOptions } from "./connection.js";
import { answeredByServer, Code, ForgeTrainingError, toForgeTrainingError } from "./errors.js";
import { ExportFormat, ExportFormatSchema, JobState, JobStateSchema } from "./gen/forge/training/v1/common_pb.js";
import { DataService, type UploadDatasetRequest, UploadDatasetRequestSchema } from "./gen/forge/training/v1/data_service_pb.js";
import { DataFormat, DataFormatSchema, type Dataset } from "./gen/forge/training/v1/dataset_pb.js";
import type { TrainingMetrics } from "./gen/forge/training/v1/metrics_pb.js";
import type { ExportMetadata } from "./gen/forge/training/v1/model_pb.js";
import { PipelineService } from "./gen/forge/training/v1/pipeline_service_pb.js";
import { MetricsExportFormat, MetricsExportFormatSchema, TrainerService } from "./gen/forge/training/v1/trainer_service_pb.js";
import type { TrainingJob, TrainingRequestSchema } from "./gen/forge/training/v1/training_job_pb.js";

/** The largest chunk the service accepts or sends: 1 MiB. */
export const MAX_CHUNK_SIZE = 1024 * 1024;

/** States a job never leaves. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set([JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]);

/** An id, a full resource name, or a message with a name. */
export type Resource = string | { readonly name: string };

/** A TrainingRequest, or the object literal `create(TrainingRequestSchema, ...)` takes. */
export type TrainingSpec = MessageInitShape<typeof TrainingRequestSchema>;

export interface ClientOptions extends ConnectionOptions {
  /** Deadline of each unary call in milliseconds (0: none). Streams have none. Default 30 s. */
  timeoutMs?: number;
}

export interface UploadOptions {
  /** `csv`, `parquet`, `jsonl` or a DataFormat; inferred from a path's extension. */
  format?: DataFormat | string;
  datasetId?: string;
  labelColumn?: string;
  displayName?: string;
  /** Bytes per message, at most 1 MiB. */
  chunkSize?: number;
}

export interface WatchOptions {
  /** Start after this sequence (the last one you saw). */
  fromSequence?: bigint;
  /** Go on with live points until the job reaches a final state (default true). */
  follow?: boolean;
  /** Reconnects in a row without a new point before giving up (default 10). */
  maxReconnects?: number;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** The states to wait for (default: the final ones). */
  states?: Iterable<JobState>;
  /** Give up after this many milliseconds (default: never). */
  timeoutMs?: number;
  /** Milliseconds between polls (default 200). */
  pollMs?: number;
  signal?: AbortSignal;
}

const EXTENSION_FORMATS: Record<string, DataFormat> = {
  ".csv": DataFormat.CSV,
  ".parquet": DataFormat.PARQUET,
  ".pq": DataFormat.PARQUET,
  ".jsonl": DataFormat.JSONL,
  ".ndjson": DataFormat.JSONL,
};

const EXPORT_SUFFIX: Partial<Record<ExportFormat, string>> = {
  [ExportFormat.ONNX]: ".onnx",
  [ExportFormat.PICKLE]: ".pkl",
  [ExportFormat.SAVEDMODEL]: ".tar",
  [ExportFormat.TORCH]: ".pt",
};

/** Maps "onnx", "ONNX", "EXPORT_FORMAT_ONNX" or the enum number to the number; 0 is refused. */
function enumValue<E extends number>(schema: DescEnum, value: E | string, what: string): E {
  const valid = schema.values.filter((v) => v.number !== 0);
  const found =
    typeof value === "number"
      ? valid.find((v) => v.number === value)
      : valid.find((v) => v.localName.toUpperCase() === value.trim().toUpperCase().replace(/-/g, "_") || v.name === value.trim());
  if (!found) {
    throw new Error(`unknown ${what} ${JSON.stringify(value)}; valid: ${valid.map((v) => v.localName.toLowerCase()).join(", ")}`);
  }
  return found.number as E;
}

/** ExportFormat from "onnx", "pickle", "savedmodel", "torch", "xgboost_json" (any case) or the enum. */
export function exportFormat(value: ExportFormat | string): ExportFormat {
  return enumValue(ExportFormatSchema, value, "export format");
}

/** DataFormat from "csv", "parquet", "jsonl", "image_folder", "text" (any case) or the enum. */
export function dataFormat(value: DataFormat | string): DataFormat {
  return enumValue(DataFormatSchema, value, "data format");
}

function nameOf(resource: Resource): string {
  const name = typeof resource === "string" ? resource : resource?.name;
  if (typeof name !== "string" || !name) {
    throw new TypeError("expected an id, a resource name or a message with a name");
  }
  return name;
}

function stateName(state: JobState): string {
  return JobStateSchema.value[state]?.name ?? String(state);
}

/** A client of the forge-training TrainerService and DataService. Call {@link close} when done. */
export class ForgeTrainingClient {
  /** Raw clients, for RPCs without a method here (they throw ConnectError, not ForgeTrainingError). */
  readonly trainer: Client<typeof TrainerService>;
  readonly data: Client<typeof DataService>;
  readonly pipelines: Client<typeof PipelineService>;
  /** Deadline of each unary call in milliseconds (0: none). */
  timeoutMs: number;
  /** Milliseconds before the n-th consecutive reconnect of a watch: base * 2**(n-1), capped. */
  reconnectBackoffMs = 100;
  reconnectBackoffMaxMs = 2000;

  private readonly sessions: Http2SessionManager;
  private closed = false;

  /**
   * @param address `host:port` of the server, or an `http://` / `https://` URL.
   */
  constructor(
    readonly address: string = "127.0.0.1:50051",
    options: ClientOptions = {},
  ) {
    const url = baseUrl(address, options);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    // Our own session manager, so that close() can end the HTTP/2 connection at once.
    this.sessions = new Http2SessionManager(url, {}, sessionOptions(options));
    const transport = createGrpcTransport({
      baseUrl: url,
      sessionManager: this.sessions,
      interceptors: [headersInterceptor(identityHeaders(options))],
    });
    this.trainer = createClient(TrainerService, transport);
    this.data = createClient(DataService, transport);
    this.pipelines = createClient(PipelineService, transport);
  }

  /** Closes the connection; calls still open end with an error, and watches stop reconnecting. */
  close(): void {
    this.closed = true;
    this.sessions.abort();
  }

  private unary(): CallOptions {
    return { timeoutMs: this.timeoutMs || undefined };
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw error instanceof ConnectError ? this.failure(error) : error;
    }
  }

  /**
   * The ForgeTrainingError for a failed RPC. A call that ended without the server's status,
   * not by a deadline, the caller's abort or close(), lost its connection: UNAVAILABLE, as
   * gRPC names it and the Python SDK reports it, whatever code connect-node gave it.
   */
  private failure(error: ConnectError, signal?: AbortSignal): ForgeTrainingError {
    const converted = toForgeTrainingError(error);
    if (answeredByServer(error) || converted.code === Code.DeadlineExceeded || signal?.aborted || this.closed) {
      return converted;
    }
    return new ForgeTrainingError(Code.Unavailable, `no answer from ${this.address}: ${converted.rawMessage}`, { cause: error });
  }

  // -- datasets ------------------------------------------------------------

  /**
   * Uploads a file (by path) or bytes as a new dataset. The first message carries the size
   * and sha256, which the server checks; the bytes follow in chunks of at most 1 MiB.
   */
  async uploadDataset(source: string | Uint8Array, options: UploadOptions = {}): Promise<Dataset> {
    const chunkSize = options.chunkSize ?? MAX_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
      throw new RangeError(`chunkSize must be between 1 and ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
    }
    let format: DataFormat | undefined;
    if (options.format !== undefined) {
      format = dataFormat(options.format);
    } else if (typeof source === "string") {
      format = EXTENSION_FORMATS[path.extname(source).toLowerCase()];
    }
    if (format === undefined) {
      const what = typeof source === "string" ? ` of ${JSON.stringify(source)}` : " of raw bytes";
      throw new Error(`cannot infer the data format${what}; pass format: one of csv, parquet, jsonl`);
    }

    let size: bigint;
    let sha256: string;
    let chunks: () => AsyncIterable<Uint8Array>;
    if (typeof source === "string") {
      ({ size, sha256 } = await hashFile(source));
      chunks = () => createReadStream(source, { highWaterMark: chunkSize });
    } else {
      const bytes = source;
      size = BigInt(bytes.length);
      sha256 = createHash("sha256").update(bytes).digest("hex");
      chunks = async function* () {
        for (let start = 0; start < bytes.length; start += chunkSize) {
          yield bytes.subarray(start, start + chunkSize);
        }
      };
    }
    const metadata = {
      datasetId: options.datasetId ?? "",
      displayName: options.displayName ?? "",
      labelColumn: options.labelColumn ?? "",
      format,
      sizeBytes: size,
      sha256,
    };
    async function* requests(): AsyncIterable<UploadDatasetRequest> {
      yield create(UploadDatasetRequestSchema, { part: { case: "metadata", value: metadata } });
      for await (const chunk of chunks()) {
        if (chunk.length) {
          yield create(UploadDatasetRequestSchema, { part: { case: "chunk", value: chunk } });
        }
      }
    }
    const response = await this.call(() => this.data.uploadDataset(requests()));
    return response.dataset!;
  }

  /** Gets a dataset with its schema, statistics and lineage. */
  async getDataset(name: Resource): Promise<Dataset> {
    const response = await this.call(() => this.data.getDataset({ name: nameOf(name) }, this.unary()));
    return response.dataset!;
  }

  // -- training jobs ---------------------------------------------------------

  /** Starts a job; returns it PENDING. */
  async startTraining(spec: TrainingSpec, options: { trainingJobId?: string } = {}): Promise<TrainingJob> {
    const request = { trainingJobId: options.trainingJobId ?? "", spec };
    const response = await this.call(() => this.trainer.startTraining(request, this.unary()));
    return response.trainingJob!;
  }

  /** Gets a training job. */
  async getJob(name: Resource): Promise<TrainingJob> {
    const response = await this.call(() => this.trainer.getTrainingJob({ name: nameOf(name) }, this.unary()));
    return response.trainingJob!;
  }

  /**
   * Polls a job until its state is in `states` (default: a final state). Throws
   * DEADLINE_EXCEEDED after `timeoutMs`, and FAILED_PRECONDITION when the job reaches a
   * final state that is not in `states`, since it can never leave it.
   */
  async waitForJob(name: Resource, options: WaitOptions = {}): Promise<TrainingJob> {
    const resource = nameOf(name);
    const wanted = new Set(options.states ?? FINAL_STATES);
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const pollMs = options.pollMs ?? 200;
    for (;;) {
      const job = await this.getJob(resource);
      if (wanted.has(job.state)) {
        return job;
      }
      if (FINAL_STATES.has(job.state)) {
        const names = [...wanted].map(stateName).sort().join(", ");
        throw new ForgeTrainingError(Code.FailedPrecondition, `job ${resource} ended ${stateName(job.state)} while waiting for ${names}`);
      }
      let wait = pollMs;
      if (deadline !== undefined) {
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new ForgeTrainingError(Code.DeadlineExceeded, `job ${resource} is still ${stateName(job.state)} after ${options.timeoutMs} ms`);
        }
        wait = Math.min(wait, left);
      }
      await this.sleep(wait, options.signal);
    }
  }

  /**
   * A job's metric points after `fromSequence`, one per epoch. With `follow` (the default)
   * it goes on with live points until the job reaches a final state. A dropped stream
   * (UNAVAILABLE, or an end before a final state while following) is reopened after the
   * last point yielded, so no point is missed or repeated.
   */
  async *watchMetrics(name: Resource, options: WatchOptions = {}): AsyncGenerator<TrainingMetrics> {
    const resource = nameOf(name);
    const follow = options.follow ?? true;
    const maxReconnects = options.maxReconnects ?? 10;
    let last = options.fromSequence ?? 0n;
    let failures = 0;
    for (;;) {
      let state = JobState.UNSPECIFIED;
      let dropped: unknown;
      try {
        const request = { name: resource, fromSequence: last, follow };
        for await (const response of this.trainer.watchTrainingMetrics(request, { signal: options.signal })) {
          if (response.jobState) {
            state = response.jobState;
          }
          for (const point of response.points) {
            if (point.sequence && point.sequence <= last) {
              continue; // already yielded before a reconnect
            }
            last = point.sequence || last;
            failures = 0;
            yield point;
          }
        }
      } catch (error) {
        if (!(error instanceof ConnectError)) {
          throw error;
        }
        const failure = this.failure(error, options.signal);
        if (failure.code !== Code.Unavailable) {
          throw failure;
        }
        dropped = failure;
      }
      if (dropped === undefined && (!follow || FINAL_STATES.has(state))) {
        return;
      }
      if (this.closed) {
        throw new ForgeTrainingError(Code.Canceled, `the client was closed while watching the metrics of ${resource}`);
      }
      failures += 1;
      if (failures > maxReconnects) {
        throw (
          dropped ??
          new ForgeTrainingError(
            Code.Unavailable,
            `metric stream of ${resource} ended ${failures} times in a row before the job reached a final state ` +
              `(last state ${stateName(state)}, last sequence ${last})`,
          )
        );
      }
      await this.sleep(Math.min(this.reconnectBackoffMs * 2 ** (failures - 1), this.reconnectBackoffMaxMs), options.signal);
    }
  }

  // -- models ----------------------------------------------------------------

  /**
   * Downloads a completed job's (or model version's) model into `target`. The bytes go to
   * a temporary file beside it that is renamed at the end, once the size, the sha256 and
   * every chunk's offset match the stream's metadata; otherwise the temporary file is
   * removed and DATA_LOSS thrown. When `target` is a directory the file is named after the
   * server's suggested file name. Returns the export's metadata.
   */
  async exportModel(name: Resource, format: ExportFormat | string, target: string): Promise<ExportMetadata> {
    const intoDir = await stat(target).then(
      (s) => s.isDirectory(),
      () => false,
    );
    const tmp = path.join(intoDir ? target : path.dirname(target), `.export-${randomUUID()}.part`);
    const file = await open(tmp, "wx");
    try {
      const metadata = await this.receiveExport(name, format, async (chunk) => {
        await file.write(chunk);
      });
      await file.sync();
      await file.close();
      const destination = intoDir
        ? path.join(target, path.basename(metadata.filename) || `model${EXPORT_SUFFIX[metadata.format] ?? ""}`)
        : target;
      await rename(tmp, destination);
      return metadata;
    } finally {
      await file.close().catch(() => undefined); // already closed on success
      await rm(tmp, { force: true });
    }
  }

  /**
   * A job's whole metric history as one document: "json" (`{job, format_version, points}`)
   * or "csv" (a header, then a row per point; extra metrics as `extra.<name>` columns).
   */
  async exportMetrics(name: Resource, format: MetricsExportFormat | string = "json"): Promise<Uint8Array> {
    const request = { name: nameOf(name), format: enumValue(MetricsExportFormatSchema, format, "metrics export format") };
    const chunks: Uint8Array[] = [];
    await this.call(async () => {
      for await (const response of this.trainer.exportTrainingMetrics(request)) {
        chunks.push(response.data);
      }
    });
    return Buffer.concat(chunks);
  }

  /** Downloads a model into memory, checked like {@link exportModel}. */
  async exportModelBytes(name: Resource, format: ExportFormat | string): Promise<{ metadata: ExportMetadata; data: Uint8Array }> {
    const chunks: Uint8Array[] = [];
    const metadata = await this.receiveExport(name, format, async (chunk) => {
      chunks.push(chunk);
    });
    return { metadata, data: Buffer.concat(chunks) };
  }

  /** One ExportModel stream into `write`, checking that the metadata comes first and that the bytes are the artifact it describes. */
  private async receiveExport(name: Resource, format: ExportFormat | string, write: (chunk: Uint8Array) => Promise<void>): Promise<ExportMetadata> {
    const resource = nameOf(name);
    const request = { name: resource, format: exportFormat(format) };
    const hasher = createHash("sha256");
    let metadata: ExportMetadata | undefined;
    let written = 0n;
    const corrupt = (what: string) => new ForgeTrainingError(Code.DataLoss, `export of ${resource} is corrupt: ${what}`);
    await this.call(async () => {
      for await (const response of this.trainer.exportModel(request)) {
        if (response.metadata) {
          if (metadata) {
            throw corrupt("metadata sent twice");
          }
          metadata = response.metadata;
        } else if (!metadata) {
          throw corrupt("the first message carries no metadata");
        }
        if (response.data.length) {
          if (response.offset !== written) {
            throw corrupt(`chunk at offset ${response.offset}, expected ${written}`);
          }
          await write(response.data);
          hasher.update(response.data);
          written += BigInt(response.data.length);
        }
      }
    });
    if (!metadata) {
      throw corrupt("the stream was empty");
    }
    if (written !== metadata.sizeBytes) {
      throw corrupt(`received ${written} bytes, expected ${metadata.sizeBytes}`);
    }
    const digest = hasher.digest("hex");
    if (digest !== metadata.sha256.trim().toLowerCase()) {
      throw corrupt(`sha256 ${digest} does not match ${metadata.sha256}`);
    }
    return metadata;
  }

  private async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, undefined, { signal });
    } catch (error) {
      throw toForgeTrainingError(error);
    }
  }
}

async function hashFile(file: string): Promise<{ size: bigint; sha256: string }> {
  const hasher = createHash("sha256");
  let size = 0n;
  for await (const chunk of createReadStream(file, { highWaterMark: MAX_CHUNK_SIZE })) {
    hasher.update(chunk as Buffer);
    size += BigInt((chunk as Buffer).length);
  }
  return { size, sha256: hasher.digest("hex") };
}
