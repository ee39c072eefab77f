/**
 * A real forge-training server for the tests: the repository's Python server on port 0 in a
 * temporary data directory, as a subprocess.
 *
 * The Python interpreter is FORGE_TRAINING_PYTHON, or the repository's .venv (what `make
 * test` installs), found relative to this file.
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// Compiled to clients/typescript/dist/test/server.js: four levels below the repository root.
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export function python(): string {
  const configured = process.env.FORGE_TRAINING_PYTHON;
  if (configured) {
    return configured;
  }
  const venv = path.join(REPO_ROOT, ".venv", "bin", "python");
  if (!existsSync(venv)) {
    throw new Error(`no Python server environment at ${venv}: run \`make venv\` in the repository root, or set FORGE_TRAINING_PYTHON`);
  }
  return venv;
}

export interface RunningServer {
  /** `127.0.0.1:PORT` */
  address: string;
  dataDir: string;
  /** What the server logged so far (for failure messages). */
  log(): string;
  /** SIGTERM, wait for the exit, remove the data directory. */
  stop(): Promise<void>;
}

const STARTUP_MS = 60_000;

/** Starts `python -m server serve` on 127.0.0.1:0 with `args`, in `dataDir` (default: a new temporary one). */
export async function startServer(args: string[] = [], dataDir?: string): Promise<RunningServer> {
  const dir = dataDir ?? (await mkdtemp(path.join(tmpdir(), "forge-ts-")));
  const child = spawn(
    python(),
    ["-m", "server", "serve", "--address", "127.0.0.1:0", "--data-dir", dir, "--shutdown-grace", "1", ...args],
    { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr!.setEncoding("utf8");
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(`no "serving on" line within ${STARTUP_MS} ms`), STARTUP_MS);
    function fail(why: string) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`the forge-training server did not start: ${why}\n${log}`));
    }
    child.stderr!.on("data", (text: string) => {
      log += text;
      const match = /serving on (127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on("error", (error) => fail(String(error)));
    child.on("exit", (code, signal) => fail(`it exited (${signal ?? code})`));
  });
  return {
    address,
    dataDir: dir,
    log: () => log,
    stop: async () => {
      await stopProcess(child);
      if (dataDir === undefined) {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(killer);
}

/** `forge-training keys create` in `dataDir`; returns the key it prints. */
export async function createApiKey(dataDir: string, name: string, roles: Record<string, string>): Promise<string> {
  const roleArgs = Object.entries(roles).flatMap(([project, role]) => ["--role", `${project}=${role}`]);
  const { stdout } = await promisify(execFile)(
    python(),
    ["-m", "server", "keys", "--data-dir", dataDir, "create", "--name", name, ...roleArgs],
    { cwd: REPO_ROOT },
  );
  return stdout.trim();
}

/**
 * A small binary classification CSV: `rows` rows of four numeric features from a seeded
 * generator, and a label that a linear model can learn from them.
 */
export function classificationCsv(rows = 200, seed = 7): string {
  let state = seed;
  const uniform = () => {
    // A 32-bit LCG: the same rows on every run, without a dependency.
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const lines = ["f1,f2,f3,f4,label"];
  for (let i = 0; i < rows; i += 1) {
    const f = [0, 1, 2, 3].map(() => Number((uniform() * 4 - 2).toFixed(4)));
    const label = f[0]! + 0.5 * f[1]! - f[2]! > 0 ? 1 : 0;
    lines.push([...f, label].join(","));
  }
  return lines.join("\n") + "\n";
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
