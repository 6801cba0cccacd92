// Generation on the CPU engine: the parity suite's generation cases
// (webgpu/_parity_suite.ts) on this executor — AR decoding with the KV
// cache gives the tfjs model's greedy continuation, after a prompt too, in
// one chunk of rows or several; the first draw at temperature 1 follows the
// model's softmax, with top-k and top-p, and after a prompt (χ², with the
// power against each near miss asserted); masked-diffusion sampling follows
// the exact float64 law of the sampler and its near misses would not; bad
// options refused in one line.

import {
  causalGenerationParity,
  generationErrors,
  maskedGenerationParity,
} from "../webgpu/_parity_suite.ts";
import { cpuExecutor } from "./_test_util.ts";

causalGenerationParity(cpuExecutor);
maskedGenerationParity(cpuExecutor);
generationErrors(cpuExecutor);
