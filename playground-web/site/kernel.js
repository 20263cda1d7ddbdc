// The playground's real kernel: boots the i386 Linux guest of
// `cargo xtask guest-kernel` in the v86 x86 emulator and runs lvsdr's lab in
// it, in the browser tab or under node.
//
// The guest's /init is the lvsdr binary itself (harness/src/serial.rs); it
// reads one JSON job per line from the first serial port and answers in
// frames, which this module finds among the kernel's own console output:
//
//   @@LVSDR READY <kernel release>
//   @@LVSDR PROGRESS <text>
//   @@LVSDR RESULT <n>\n<n bytes of JSON>\n@@LVSDR END
//
// Nothing is fetched but the files it is given (no CDN, no network device in
// the guest). Usage:
//
//   import { boot } from "./kernel.js";
//   const kernel = await boot(files("kernel/"), { onProgress: (stage, detail) => ... });
//   const result = await kernel.lab(topologyToml);   // {code, stdout, text, reports, progress, ms}
//   const again = await kernel.lab(otherToml);       // the same booted machine
//   kernel.destroy();

/** The guest's kernel command line: the serial console, and our init's serial mode. */
export const CMDLINE = "console=ttyS0 quiet loglevel=1 LVSDR_SERIAL=1";

const MARKER = "@@LVSDR ";

/** The files under a base URL (or folder), as `cargo xtask guest-kernel` lays them out. */
export function files(base) {
  const at = (name) => (base.endsWith("/") ? base : base + "/") + name;
  return {
    libv86: at("libv86.mjs"),
    wasm: at("v86.wasm"),
    bios: at("bios.bin"),
    vgabios: at("vgabios.bin"),
    bzimage: at("bzImage"),
    initrd: at("initrd.gz"),
  };
}

const isNode = typeof process !== "undefined" && !!(process.versions && process.versions.node);

/** The bytes of a file: an ArrayBuffer or a typed array as they are, else a URL
 * (fetched) or, under node, a path. */
async function load(source) {
  if (source instanceof ArrayBuffer) return source;
  if (ArrayBuffer.isView(source)) {
    return source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength);
  }
  const s = String(source);
  if (isNode && !/^https?:/.test(s)) {
    const { readFile } = await import("node:fs/promises");
    const b = await readFile(s.startsWith("file:") ? new URL(s) : s);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  }
  const response = await fetch(s);
  if (!response.ok) throw new Error(`${s}: ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

/** Gunzips `buffer` if it is gzip (the initrd): the browser's or node's native
 * inflate takes milliseconds, the guest kernel's takes seconds under emulation. */
async function gunzip(buffer) {
  const head = new Uint8Array(buffer, 0, Math.min(2, buffer.byteLength));
  if (head[0] !== 0x1f || head[1] !== 0x8b || typeof DecompressionStream === "undefined") return buffer;
  const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** How to import libv86.mjs: a URL as is, a node path as a file: URL. */
async function importModule(source) {
  let s = String(source);
  if (isNode && !/^(https?|file|data):/.test(s)) {
    const { pathToFileURL } = await import("node:url");
    s = pathToFileURL(s).href;
  }
  return import(s);
}

/**
 * Boots the guest. `sources` names libv86, wasm, bios, vgabios, bzimage and
 * initrd (URLs, paths under node, or bytes). `options.onProgress(stage, detail)`
 * hears "downloading", "booting", "kernel" (up, with its release), "running"
 * "progress" (a line from the lab) and "stuck" (where the guest waits, when a
 * job runs long); `options.onConsole(line)` hears the kernel's other console
 * lines. Resolves once the guest is ready for jobs.
 */
export async function boot(sources, options = {}) {
  const onProgress = options.onProgress || (() => {});
  const timeoutMs = options.bootTimeoutMs || 120_000;
  const started = performance.now();
  onProgress("downloading", "");
  const names = ["wasm", "bios", "vgabios", "bzimage", "initrd"];
  const [module, ...buffers] = await Promise.all([
    importModule(sources.libv86),
    ...names.map((n) => (sources[n] === undefined ? Promise.resolve(undefined) : load(sources[n]))),
  ]);
  const bytes = Object.fromEntries(names.map((n, i) => [n, buffers[i]]));
  bytes.initrd = await gunzip(bytes.initrd);
  const V86 = module.V86 || module.default;
  const downloadedMs = performance.now() - started;
  onProgress("booting", "");
  const emulator = new V86({
    wasm_fn: async (imports) => (await WebAssembly.instantiate(bytes.wasm, imports)).instance.exports,
    memory_size: options.memoryBytes || 128 * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: { buffer: bytes.bios },
    vga_bios: bytes.vgabios ? { buffer: bytes.vgabios } : undefined,
    bzimage: { buffer: bytes.bzimage },
    initrd: { buffer: bytes.initrd },
    cmdline: options.cmdline || CMDLINE,
    fastboot: true,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    screen_dummy: true,
  });
  const guest = new Guest(emulator, onProgress, options.onConsole || (() => {}));
  const release = await guest.ready(timeoutMs);
  const bootMs = performance.now() - started - downloadedMs;
  onProgress("kernel", release);
  guest.release = release;
  guest.timings = { downloadMs: Math.round(downloadedMs), bootMs: Math.round(bootMs) };
  return guest;
}

/** The lab's JSON reports. A frame's `at_ns` (nanoseconds since 1970) is past
 * what a double holds exactly: where the engine hands a reviver the number's
 * source text, it stays exact as a string. */
function parseReports(text) {
  return JSON.parse(text, (key, value, context) => (key === "at_ns" && context && typeof context.source === "string" ? context.source : value));
}

class Guest {
  constructor(emulator, onProgress, onConsole) {
    this.emulator = emulator;
    this.onProgress = onProgress;
    this.onConsole = onConsole;
    this.pending = []; // bytes of the current line
    this.tail = []; // the last console lines, for errors
    this.frame = null; // {length, bytes} while reading a result
    this.waiters = { ready: null, result: null };
    this.busy = Promise.resolve();
    this.decoder = new TextDecoder();
    emulator.add_listener("serial0-output-byte", (byte) => this.byte(byte));
  }

  byte(b) {
    if (this.frame) {
      this.frame.bytes.push(b);
      if (this.frame.bytes.length === this.frame.length) {
        const text = this.decoder.decode(new Uint8Array(this.frame.bytes));
        this.frame = null;
        const w = this.waiters.result;
        this.waiters.result = null;
        if (w) {
          try {
            w.resolve(JSON.parse(text));
          } catch (e) {
            w.reject(new Error(`the guest's result does not parse: ${e.message}`));
          }
        }
      }
      return;
    }
    if (b !== 10) {
      this.pending.push(b);
      return;
    }
    const line = this.decoder.decode(new Uint8Array(this.pending)).replace(/\r$/, "");
    this.pending = [];
    this.line(line);
  }

  line(line) {
    const at = line.indexOf(MARKER);
    if (at < 0) {
      this.onConsole(line);
      if (line.trim()) {
        this.tail.push(line);
        if (this.tail.length > 30) this.tail.shift();
      }
      return;
    }
    const frame = line.slice(at + MARKER.length);
    const space = frame.indexOf(" ");
    const kind = space < 0 ? frame : frame.slice(0, space);
    const rest = space < 0 ? "" : frame.slice(space + 1);
    if (kind === "READY") {
      const w = this.waiters.ready;
      this.waiters.ready = null;
      if (w) w.resolve(rest);
    } else if (kind === "PROGRESS") {
      this.onProgress("progress", rest);
    } else if (kind === "RESULT") {
      const length = Number(rest);
      this.frame = { length, bytes: [] };
    } else if (kind === "STUCK") {
      // A job running long: where each guest thread waits.
      this.onProgress("stuck", rest);
      this.tail.push(line);
    } else if (kind === "FATAL") {
      const error = new Error(`the guest could not start: ${rest}`);
      for (const k of ["ready", "result"]) {
        if (this.waiters[k]) this.waiters[k].reject(error);
        this.waiters[k] = null;
      }
    }
  }

  wait(kind, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters[kind] = null;
        reject(new Error(`${what} within ${timeoutMs / 1000} s. Last console lines:\n${this.tail.join("\n")}`));
      }, timeoutMs);
      this.waiters[kind] = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  ready(timeoutMs) {
    return this.wait("ready", timeoutMs, "the guest kernel did not come up");
  }

  /** Runs one job (a `GuestTask` as JSON: `{"lab": {...}}` or `{"exec": {...}}`).
   * Jobs run one at a time, in the same booted machine. */
  run(task, options = {}) {
    const timeoutMs = options.timeoutMs || 120_000;
    const job = this.busy.then(async () => {
      const started = performance.now();
      this.onProgress("running", "");
      const answer = this.wait("result", timeoutMs, "the lab did not finish");
      const line = new TextEncoder().encode(JSON.stringify(task) + "\n");
      this.emulator.serial_send_bytes(0, line);
      const result = await answer;
      result.wallMs = Math.round(performance.now() - started);
      if (task.lab) {
        try {
          result.reports = parseReports(result.stdout);
        } catch {
          result.reports = null;
        }
      }
      return result;
    });
    this.busy = job.catch(() => {});
    return job;
  }

  /** Runs the lab for one topology (canonical TOML, as `lvsdr` writes it) with
   * the CLI's defaults: 8 connections per service, one client, applied over
   * netlink. Each report carries the frames captured on every leg (its
   * `frames`, as `lvsdr lab --pcap` has them) unless `options.frames` is false. */
  lab(toml, options = {}) {
    return this.run(
      {
        // The harness's RunOptions; a field left out takes its default.
        lab: {
          topologies: [toml],
          options: {
            connections: options.connections || 8,
            clients: options.clients || 1,
            parallel: 1,
            apply: "netlink",
            verify: { ipvs_stats: !!options.ipvsStats, frames: options.frames !== false },
            failover: null,
          },
        },
      },
      options,
    );
  }

  destroy() {
    return this.emulator.destroy();
  }
}
