// Generation on the WebGPU engine: the parity suite's AR cases
// (webgpu/_parity_suite.ts) on this executor — decoding with the KV cache on
// the GPU gives the tfjs model's greedy continuation, after a prompt too
// (teacher-forced on the GPU, kept verbatim), in one command buffer and one
// sync, leaving no buffer behind; the first draw at temperature 1 follows
// the model's softmax, with top-k and top-p, and after a prompt; bad options
// of either generator refused in one line.

import { causalGenerationParity, generationErrors } from "./_parity_suite.ts";
import { webgpuExecutor } from "./_test_util.ts";

causalGenerationParity(webgpuExecutor);
generationErrors(webgpuExecutor);
