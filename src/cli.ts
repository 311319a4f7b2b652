/**
 * Command-line entry: `node src/cli.ts [options]` (see --help). Exit codes: 0 after a clean stop
 * (SIGTERM/SIGINT), 1 on a runtime failure, 2 on bad configuration. SIGHUP reopens output files.
 */
import { startCollector } from "./app.ts";
import { HelpRequested, loadConfig } from "./config/index.ts";
import type { Config } from "./config/options.ts";
import { ConfigError } from "./core/errors.ts";
import { createLogger } from "./core/log.ts";

function fail(code: number, message: string): never {
  process.stderr.write(`clarion-collector: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let sub = process.argv[2];
  // `help` alone is --help; `help decode|top|tail` is that command's --help.
  if (sub === "help") {
    const of = process.argv[3];
    process.argv.splice(
      2,
      process.argv.length,
      ...(of === "decode" || of === "top" || of === "tail" ? [of, "--help"] : ["--help"]),
    );
    sub = process.argv[2];
  }
  if (sub === "decode") {
    const { runDecode } = await import("./commands/decode.ts");
    process.exitCode = await runDecode(process.argv.slice(3));
    return;
  }
  if (sub === "top") {
    const { runTopCommand } = await import("./commands/top.ts");
    process.exitCode = await runTopCommand(process.argv.slice(3));
    return;
  }
  if (sub === "tail") {
    const { runTailCommand } = await import("./commands/tail.ts");
    process.exitCode = await runTailCommand(process.argv.slice(3));
    return;
  }
  let config: Config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.text);
      process.exit(0);
    }
    if (err instanceof ConfigError) fail(2, err.message);
    throw err;
  }
  const log = createLogger({ level: config.logLevel });
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    log.fatal({ err }, "unhandled rejection");
    process.exit(1);
  });

  let collector: Awaited<ReturnType<typeof startCollector>>;
  try {
    collector = await startCollector(config, { logger: log });
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal({ key: err.key }, err.message);
      fail(2, err.message);
    }
    log.fatal({ err }, "cannot start");
    process.exit(1);
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, "second signal while stopping: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutdown requested");
    collector.stop().then(
      () => {
        // stdout may carry jsonl:-; let it drain before exiting.
        process.stdout.write("", () => process.exit(0));
      },
      (err: unknown) => {
        log.fatal({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reopening outputs");
    void collector.reopen();
  });
}

await main();
