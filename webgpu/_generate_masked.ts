// Masked-diffusion generation on the engine: the masked plan of a (B, L) —
// a forward plan whose passes are indirect dispatches a gate kernel can
// skip (_masked.ts) — and the generation that records one call's gates and
// draws and runs every step in one command buffer. Private.

import type { Generation, MaskedGenerationOptions } from "@d3pm/core";
import { MAX_SUPPRESS } from "./_decode.ts";
import { checkMasked } from "./_generation_checks.ts";
import { planInts, timeFeatures } from "./_layout.ts";
import { GATE, type MaskedInts, maskedInts, selectSource } from "./_masked.ts";
import type { Dispatch } from "./_recorder.ts";
import { type DrawSettings, recordDraw } from "./_draw.ts";
import {
  dispatchAll,
  dispatchAllIndirect,
  type EngineState,
  fail,
  type Plan,
  USAGE_STORAGE,
} from "./_state.ts";

/** Masked plans kept. */
const PLANS = 2;

interface MaskedPlan {
  plan: Plan;
  state: MaskedInts;
  /** The passes a step may skip: forward, head, suppress. */
  gated: Dispatch[];
  /** Their indirect arguments as recorded (x, y, 1 each)… */
  template: GPUBuffer;
  /** …and as the gate leaves them (zeros when the step is skipped). */
  args: GPUBuffer;
  /** Per position, the probability of its drawn token (confidence). */
  confidence: GPUBuffer;
  /**
   * The block's masked positions, as the gate lists them (the count, then
   * the positions); the ancestral draw over whole rows draws just those,
   * with the arguments the gate writes after the gated passes' in `args`.
   */
  list: GPUBuffer;
  owned: GPUBuffer[];
}

function buildMaskedPlan(
  s: EngineState,
  batch: number,
  length: number,
): MaskedPlan {
  const n = batch * length, v = s.config.vocabSize;
  const state = maskedInts(planInts(n).size, n, MAX_SUPPRESS);
  const plan = s.buildPlan(batch, length, "forward", 0xffffffff, state.size);
  const rec = s.recorder(plan.act, plan.intBuf, plan.logits!);
  rec.begin("suppress");
  rec.suppress(n, v, { buf: "logits", off: 0 }, state.suppress);
  const { lists, uniform } = s.finish(rec);
  const suppress = lists.get("suppress")!;
  const gated = [
    ...plan.lists.get("forward")!,
    ...plan.lists.get("head")!,
    ...suppress,
  ];
  const words = new Uint32Array(gated.length * 3);
  gated.forEach((d, i) => words.set([d.x, d.y, 1], 3 * i));
  const template = s.buffer(words.byteLength);
  s.device.queue.writeBuffer(template, 0, words);
  // INDIRECT; 3 more words: the listed draw's.
  const args = s.buffer(words.byteLength + 12, USAGE_STORAGE | 0x100);
  const confidence = s.buffer(n * 4);
  const list = s.buffer((n + 1) * 4);
  return {
    plan,
    state,
    gated,
    template,
    args,
    confidence,
    list,
    owned: [...plan.owned, template, args, confidence, list, uniform],
  };
}

// The options checked: the draw settings, block length and suppress list.
function check(
  s: EngineState,
  o: MaskedGenerationOptions,
): { draw: DrawSettings; blockLength: number; suppress: Int32Array } {
  const c = s.config;
  const checked = checkMasked(
    c,
    o,
    { maxBatch: 65535, maxLength: Math.min(c.contextLength, 3072) },
    fail,
  );
  if (o.prompt !== undefined) s.checkIds(o.prompt, "prompt");
  const suppress = Int32Array.of(checked.suppress.length, ...checked.suppress);
  return { ...checked, suppress };
}

// This call's gates and draws, recorded once (one uniform block each):
// lists `gate:<block>:<step>` and `draw:<block>:<step>`.
function recordCall(
  s: EngineState,
  mp: MaskedPlan,
  o: MaskedGenerationOptions,
  draw: DrawSettings,
  blocks: [number, number][],
  listed: boolean,
): { lists: Map<string, Dispatch[]>; uniform: GPUBuffer } {
  const { plan, state } = mp;
  const { batchSize: b, length: l, maskId } = o;
  const v = s.config.vocabSize, steps = o.steps.length;
  const tokens = plan.ints.tokens;
  const rec = s.recorder(plan.act, plan.intBuf);
  blocks.forEach(([s0, s1], bi) => {
    o.steps.forEach(({ reveal }, k) => {
      const last = k === steps - 1 && o.revealAllAtEnd !== false;
      rec.begin(`gate:${bi}:${k}`);
      rec.kernel(
        "gate",
        () => GATE,
        [
          b,
          l,
          tokens,
          maskId,
          s0,
          s1,
          k === 0 ? 1 : 0,
          state.count,
          mp.gated.length * 3,
          o.cache ? 1 : 0,
          state.passes,
        ],
        1,
        1,
        { 2: mp.list, 4: mp.template, 5: mp.args },
      );
      rec.begin(`draw:${bi}:${k}`);
      // A whole-row block is one dispatch over all B·L positions (the
      // ancestral one over the listed masked positions only); a narrower
      // one, one dispatch per row.
      const whole = s0 === 0 && s1 === l;
      for (let r = 0; r < (whole ? 1 : b); r++) {
        const at = r * l + s0;
        const common = {
          logitsOffset: at * v,
          rows: whole ? b * l : s1 - s0,
          stream: ((bi * steps + k) * b + r) >>> 0,
        };
        if (o.strategy === "ancestral") {
          recordDraw(rec, s.config, plan.logits!, draw, {
            ...common,
            outputOffset: tokens + at,
            gate: {
              maskId,
              reveal: last ? 1 : reveal,
              currentOffset: tokens + at,
            },
            ...(listed ? { list: mp.list } : {}),
          });
        } else {
          recordDraw(rec, s.config, plan.logits!, draw, {
            ...common,
            outputOffset: state.proposals + at,
            gate: { maskId, reveal: 1, currentOffset: tokens + at },
            confidence: { buffer: mp.confidence, offset: at },
          });
        }
      }
      if (o.strategy === "confidence") {
        rec.kernel(
          `select:${l}`,
          () => selectSource(l),
          [
            l,
            tokens,
            state.proposals,
            maskId,
            s0,
            s1,
            { f: last ? 1 : reveal },
            last ? 1 : 0,
            0,
          ],
          b,
          1,
          { 3: mp.confidence },
        );
      }
    });
  });
  return s.finish(rec);
}

/** Masked-diffusion sampling (see `WebGpuTransformer.generateMasked`). */
export async function generateMasked(
  s: EngineState,
  o: MaskedGenerationOptions,
): Promise<Generation> {
  s.check();
  const c = s.config;
  const { draw, blockLength, suppress } = check(s, o);
  const { batchSize: b, length: l, maskId } = o;
  const mp = s.plans<MaskedPlan>("masked", PLANS).get(
    `${b}x${l}`,
    () => buildMaskedPlan(s, b, l),
  );
  const { plan, state } = mp;
  const n = b * l;
  const ints = new Int32Array(state.proposals + n);
  if (o.prompt) ints.set(o.prompt, plan.ints.tokens);
  else ints.fill(maskId, plan.ints.tokens, plan.ints.tokens + n);
  ints[state.count] = -1;
  ints.set(suppress, state.suppress);
  s.device.queue.writeBuffer(plan.intBuf, 0, ints);
  const blocks: [number, number][] = [];
  for (let s0 = 0; s0 < l; s0 += blockLength) {
    blocks.push([s0, Math.min(l, s0 + blockLength)]);
  }
  // One block of the whole row: its ancestral draw reads the gate's list
  // of masked positions (recorded so, and dispatched indirectly).
  const listed = o.strategy === "ancestral" && blocks.length === 1;
  const { lists, uniform } = recordCall(s, mp, o, draw, blocks, listed);
  const steps = o.steps.length, dt = c.dTime;
  let times: GPUBuffer | null = null;
  try {
    if (c.timeConditioning) {
      const table = new Float32Array(steps * b * dt);
      o.steps.forEach(({ t }, k) =>
        table.set(timeFeatures(new Float32Array(b).fill(t), dt), k * b * dt)
      );
      times = s.buffer(table.byteLength);
      s.device.queue.writeBuffer(times, 0, table);
    }
    const encoder = s.device.createCommandEncoder();
    const start0 = performance.now();
    let count = 0;
    blocks.forEach((_, bi) => {
      for (let k = 0; k < steps; k++) {
        if (times) {
          encoder.copyBufferToBuffer(
            times,
            k * b * dt * 4,
            plan.act,
            plan.arena.tfeat * 4,
            b * dt * 4,
          );
        }
        const pass = encoder.beginComputePass();
        count += dispatchAll(pass, lists.get(`gate:${bi}:${k}`)!);
        count += dispatchAllIndirect(pass, mp.gated, mp.args, (i) => 12 * i);
        const draws = lists.get(`draw:${bi}:${k}`)!;
        // The listed draw's arguments follow the gated passes' in args.
        count += listed
          ? dispatchAllIndirect(
            pass,
            draws,
            mp.args,
            () => 12 * mp.gated.length,
          )
          : dispatchAll(pass, draws);
        pass.end();
      }
    });
    const { ints: out, syncs } = await s.readInts(
      encoder,
      { start: start0, count },
      plan.intBuf,
      0,
      state.passes + 1,
    );
    return {
      tokens: out.slice(plan.ints.tokens, plan.ints.tokens + n),
      forwardPasses: out[state.passes],
      syncs,
    };
  } finally {
    s.destroy(uniform, times);
  }
}
