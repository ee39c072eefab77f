// The package's public surface: the client, its errors and options, and every message,
// enum and service of forge.training.v1 (generated in src/gen by `make generate-typescript`).
export { ForgeTrainingClient, FINAL_STATES, MAX_CHUNK_SIZE, dataFormat, exportFormat } from "./client.js";
export type { ClientOptions, Resource, TrainingSpec, UploadOptions, WaitOptions, WatchOptions } from "./client.js";
export { API_KEY_ENV, PROJECT_HEADER } from "./connection.js";
export type { ConnectionOptions, Pem } from "./connection.js";
export { Code, ForgeTrainingError, codeName, toForgeTrainingError } from "./errors.js";
export type { FieldViolation } from "./errors.js";
export * from "./gen/forge/training/v1/alert_pb.js";
export * from "./gen/forge/training/v1/common_pb.js";
export * from "./gen/forge/training/v1/data_service_pb.js";
export * from "./gen/forge/training/v1/dataset_pb.js";
export * from "./gen/forge/training/v1/metrics_pb.js";
export * from "./gen/forge/training/v1/model_pb.js";
export * from "./gen/forge/training/v1/pipeline_pb.js";
export * from "./gen/forge/training/v1/pipeline_service_pb.js";
export * from "./gen/forge/training/v1/trainer_service_pb.js";
export * from "./gen/forge/training/v1/training_job_pb.js";
export * from "./gen/forge/training/v1/tuning_job_pb.js";
