// Masked-diffusion sampling on the WebGPU engine: the parity suite's
// masked cases (webgpu/_parity_suite.ts) on this executor — ancestral with
// and without the logits cache, confidence-based, semi-autoregressive
// blocks with top-p, the reveal schedule on a time-stamp model, infilling —
// against the exact float64 law of the sampler, with the power against each
// near miss asserted; one sync per batch.

import { maskedGenerationParity } from "./_parity_suite.ts";
import { webgpuExecutor } from "./_test_util.ts";

maskedGenerationParity(webgpuExecutor);
