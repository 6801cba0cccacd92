// A training checkpoint is the same file whichever engine wrote it: one
// written by tfjs training resumes on the fused engine, and one written by
// the engine resumes on tfjs, each ending where an uninterrupted run on
// either engine ends (within the engines' float32 drift). The test is the
// parity suite's (`crossEngineResume`), run on the CPU engine as well
// (cpu/engine_test.ts).

import { crossEngineResume } from "./_parity_suite.ts";
import { webgpuExecutor } from "./_test_util.ts";

crossEngineResume(webgpuExecutor);
