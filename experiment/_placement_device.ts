// placeModel's WebGPU device: one per process, requested on the first
// placement and shared by every placed model (a device costs ~4 MB and a
// thread until GC, and its compiled kernels serve every model on it: 20
// place/dispose cycles with a device each grew RSS 176 → 697 MB before GC).
// It is reference-counted over the placements that hold it: when the last
// is released it is destroyed after an idle delay (an unref'd timer, so it
// never keeps a process alive), with the kernels compiled for it, unless a
// placement takes it again before then — sequential reloads reuse one
// device while an idle server frees it. A lost or destroyed device, or a
// failed request, is dropped so that the next placement requests a new one.
// Private.

import { type EngineDevice, requestEngineDevice } from "@d3pm/webgpu";

/** One hold on the shared device; `release` is idempotent. */
export interface DeviceLease {
  /** The device, its adapter's label and whether that is software. */
  found: EngineDevice;
  /** Give the hold back (a second call does nothing). */
  release(): void;
}

interface Shared {
  requested: Promise<EngineDevice>;
  holds: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * The process's shared device for placed models.
 *
 * @example Two holds share one device; it is destroyed once idle
 * ```ts
 * import { DevicePool } from "./_placement_device.ts";
 * import type { EngineDevice } from "@d3pm/webgpu";
 * import { assertEquals, assertStrictEquals } from "@std/assert";
 * let destroyed = 0, made = 0;
 * const fake = () => {
 *   made++;
 *   const device = { destroy: () => destroyed++, lost: new Promise(() => {}) };
 *   return Promise.resolve({ device, label: "fake", software: true } as unknown as EngineDevice);
 * };
 * const pool = new DevicePool({ idleMs: 10, request: fake });
 * const a = await pool.acquire(), b = await pool.acquire();
 * assertStrictEquals(a.found, b.found);
 * a.release();
 * a.release(); // once only
 * assertEquals(pool.holds, 1);
 * b.release();
 * await new Promise((r) => setTimeout(r, 50));
 * assertEquals([made, destroyed, pool.holds], [1, 1, 0]);
 * ```
 */
export class DevicePool {
  /** Milliseconds an unheld device waits for a placement before it is destroyed. */
  idleMs: number;
  #request: () => Promise<EngineDevice>;
  #shared: Shared | null = null;

  /**
   * @param options `idleMs` (default 5,000) and the device request (default
   *   `requestEngineDevice`).
   */
  constructor(
    options: {
      idleMs?: number;
      request?: () => Promise<EngineDevice>;
    } = {},
  ) {
    this.idleMs = options.idleMs ?? 5_000;
    this.#request = options.request ?? requestEngineDevice;
  }

  /** Holds on the current shared device (0 when there is none). */
  get holds(): number {
    return this.#shared?.holds ?? 0;
  }

  /** Take a hold on the shared device, requesting one when there is none. */
  async acquire(): Promise<DeviceLease> {
    if (!this.#shared) {
      const requested = this.#request();
      const entry: Shared = { requested, holds: 0, timer: null };
      const drop = () => {
        if (this.#shared === entry) this.#shared = null;
      };
      this.#shared = entry;
      requested.then(({ device }) => device.lost.then(drop), drop);
    }
    const entry = this.#shared;
    entry.holds++;
    if (entry.timer !== null) {
      clearTimeout(entry.timer);
      entry.timer = null;
    }
    let found: EngineDevice;
    try {
      found = await entry.requested;
    } catch (e) {
      entry.holds--;
      throw e;
    }
    let held = true;
    return {
      found,
      release: () => {
        if (!held) return;
        held = false;
        if (--entry.holds === 0) this.#idle(entry, found.device);
      },
    };
  }

  // The last hold is gone: destroy the device after idleMs unless a
  // placement takes it again (a dropped one, lost or replaced, at once).
  #idle(entry: Shared, device: GPUDevice): void {
    if (this.#shared !== entry) {
      device.destroy();
      return;
    }
    const timer = setTimeout(() => {
      entry.timer = null;
      if (entry.holds > 0) return;
      if (this.#shared === entry) this.#shared = null;
      device.destroy();
    }, this.idleMs);
    Deno.unrefTimer(timer);
    entry.timer = timer;
  }
}

/**
 * placeModel's pool (tests set its `idleMs`).
 *
 * @example
 * ```ts
 * import { placementDevices } from "./_placement_device.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(placementDevices.idleMs, 5_000);
 * ```
 */
export const placementDevices: DevicePool = new DevicePool();
