// Masked-diffusion sampling on the WebGPU engine: the parity suite's
// masked cases (webgpu/_parity_suite.ts) on this executor — ancestral with
// and without the logits cache, confidence-based, semi-autoregressive
// blocks with top-p, the reveal schedule on a time-stamp model, infilling —
// against the exact float64 law of the sampler, with the power against each
// near miss asserted; one sync per batch.
//
// Rows: lavapipe's sampling time grows with them (500 rows of blocks of 2
// draw in ~8 s, row by row; 1,000 ancestral ones in ~7 s), so each case draws the fewest rows that keep
// its power (the suite's lawPower, asserted ≥ 0.99 at the count drawn)
// against every near miss it names, with a margin; the CPU engine's tests
// keep the suite's defaults. Power at the counts below (default count's in
// brackets), measured with SAMPLING_REPORT=1:
// - ancestral, cached and no cache: 1,000 rows, kept (temperature 0.9:
//   0.9987; reveal halved: 0.9993); 750 would give 0.975.
// - confidence: 800 [1,000] (temperature 0.9: 0.9984; 750 gives 0.9972).
// - blocks of 2, top-p 0.9: 250 [500] (temperature 0.9: 1.0000, 0.9970 at
//   200; top-p off: 1.0000).
// - time-stamped, ancestral and confidence: 150 [400] (reveal halved,
//   reveal one step late, the model's time one step late: 1.0000 each; the
//   closest, the model's time late under ancestral, is 0.9970 at 80 rows).
// - infilling: 1,200 [1,500] (temperature 0.9: 0.9981).

import { maskedGenerationParity } from "./_parity_suite.ts";
import { webgpuExecutor } from "./_test_util.ts";

maskedGenerationParity(webgpuExecutor, {
  rows: { confidence: 800, blocks: 250, stamped: 150, infilling: 1200 },
});
