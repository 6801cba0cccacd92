// deno task bench:order-bound — how loose is the D3PM's bound? A finished
// run's D3PM scored as an any-order autoregressive model: for each test
// block, the likelihood under --orders uniformly random generation orders
// (one token revealed per pass). Their mean is the continuous-time ELBO the
// experiment reports; the log of their mean likelihood (importance-weighted
// over orders) bounds the NLL of the same denoiser generating one token at a
// time, and is tighter. One JSON line per order count: both, and the gain
// with its paired standard error across blocks.
import { prng } from "@d3pm/core";
import { readCommandLine, runCli, UsageError } from "@d3pm/cli";
import { orderBounds, orderNlls } from "@d3pm/diffusion";
import {
  ConfigError,
  D3PM,
  loadTrained,
  placeModel,
  prepareRunData,
  processStagger,
  RunFolder,
} from "@d3pm/experiment";

const args = readCommandLine(Deno.args, {
  command: "deno task bench:order-bound",
  summary:
    `Scores a finished run's D3PM (seed --seed) on its first --blocks test
blocks under uniformly random generation orders (one forward pass per token
and order) and prints, for each count in --orders, one JSON line: the mean over
orders (the continuous-time ELBO), the importance-weighted bound over the
orders (the NLL of the denoiser generating one token at a time in a uniform
order: tighter), the gain, and the spread of a block's NLL across orders.
Costs blocks × max(orders) × block length forward passes: about a second per
block and order at the tiny preset on 2 cores.`,
  options: {
    run: {
      kind: "string",
      value: "DIR",
      default: "runs/latest",
      help: "a finished run folder with a D3PM",
    },
    seed: {
      kind: "integer",
      min: 0,
      help: "which seed's model (default: the run's first seed)",
    },
    blocks: {
      kind: "integer",
      min: 1,
      max: 4096,
      default: 8,
      help: "test blocks scored (the first ones)",
    },
    orders: {
      kind: "string",
      value: "K,K,...",
      default: "1,4,16",
      help: "order counts to report (each a prefix of the largest's draws)",
    },
    engine: {
      kind: "choice",
      choices: ["auto", "cpu", "webgpu", "tfjs"],
      default: "auto",
      help: "where the denoiser runs",
    },
  },
}, {
  usageExit: 2,
  check: ({ values }) => {
    const ks = values.orders.split(",").map(Number);
    if (
      !ks.every((k) => Number.isInteger(k) && k >= 1 && k <= 4096) ||
      new Set(ks).size !== ks.length
    ) {
      throw new UsageError(
        `Option --orders: "${values.orders}" is not a list of distinct integers in 1..4096`,
      );
    }
  },
}).values;

// A bad run folder, seed or model is one `error: …` line, not a stack trace.
await runCli(async () => {
  const ks = args.orders.split(",").map(Number).sort((a, b) => a - b);
  const run = await loadTrained(args.run, { seed: args.seed, model: D3PM });
  // No --seed: the run's first seed, as evaluate and sample take it.
  const seed = args.seed ?? run.config.firstSeed ?? 0;
  if (processStagger(run.process) > 0) {
    run.model.dispose();
    throw new ConfigError(
      `Cannot bench ${args.run}: its D3PM's masking is staggered, and its random orders are uniform, and a staggered process's bound averages over the orders its clocks favour`,
    );
  }
  // The files at its --data must be those it trained on (data.json).
  const data = await prepareRunData(run.config, new RunFolder(args.run));
  const blocks = Math.min(args.blocks, data.test.count);
  const L = data.test.length;
  const x0 = {
    tokens: Int32Array.from(data.test.data.subarray(0, blocks * L)),
    batchSize: blocks,
    length: L,
  };
  const placed = await placeModel(run.model, args.engine);
  const K = ks.at(-1)!;
  const start = performance.now();
  let m;
  try {
    m = await orderNlls(placed.model, x0, {
      maskId: data.specials.mask,
      orders: K,
      prng: prng(seed).fork("order-bound"),
      padId: data.specials.pad,
      onRow: (done, total) =>
        console.error(
          `block ${done}/${total} (${
            ((performance.now() - start) / 1000).toFixed(0)
          } s)`,
        ),
    });
  } finally {
    placed.dispose();
  }
  const seconds = (performance.now() - start) / 1000;
  for (const k of ks) {
    // The first k orders of each block.
    const nll = new Float64Array(blocks * k);
    for (let r = 0; r < blocks; r++) {
      nll.set(m.nll.subarray(r * K, r * K + k), r * k);
    }
    const b = orderBounds({ nll, orders: k, counts: m.counts });
    console.log(JSON.stringify({
      run: args.run,
      seed: seed,
      engine: placed.engine,
      blocks,
      orders: k,
      elbo_nats: +b.elbo.nats.toFixed(4),
      elbo_stderr: +b.elbo.stderr.toFixed(4),
      importance_nats: +b.importance.nats.toFixed(4),
      importance_stderr: +b.importance.stderr.toFixed(4),
      gain_nats: +b.gain.nats.toFixed(4),
      gain_stderr: +b.gain.stderr.toFixed(4),
      gain_bits: +(b.gain.nats / Math.LN2).toFixed(4),
      order_spread_nats_per_block: +b.orderSpread.toFixed(3),
      normal_limit_gain_nats: k > 1 ? +b.normalLimitGain.toFixed(4) : null,
      seconds_all_orders: +seconds.toFixed(1),
    }));
  }
}, { usageExit: 2 });
Deno.exit(0); // the CPU engine's workers would keep the process alive
