// The compiled kernels of a device: shader modules, pipeline layouts and
// compute pipelines, built once per device and shared by every engine on it
// (pipelines have no destroy; per-engine copies lived until V8's GC, which
// GPU objects put under no pressure: 23 pipelines and ~30 MB RSS per micro
// engine on lavapipe). A pipeline is found by its bind-group layout (the
// device's own, from `_recorder.ts`'s `readOnlyLayout`), its entry point and
// its whole WGSL text — everything baked into the code, so two shapes or
// options that differ in a constant never share one. Bind groups name an
// engine's buffers and stay the engine's. Private.

interface DeviceKernels {
  /** By WGSL text. */
  modules: Map<string, GPUShaderModule>;
  layouts: Map<GPUBindGroupLayout, GPUPipelineLayout>;
  /** By bind-group layout, then entry point and WGSL text. */
  pipelines: Map<GPUBindGroupLayout, Map<string, GPUComputePipeline>>;
}

const kernels = new WeakMap<GPUDevice, DeviceKernels>();

/**
 * The compute pipeline of `code` on `layout` (a one-group layout of this
 * device), compiled on the first call per device and shared after.
 *
 * @param device The device.
 * @param code The WGSL module.
 * @param layout The bind-group layout of group 0.
 * @param options The entry point (`main`) and a label for the first build.
 * @returns The pipeline.
 */
export function devicePipeline(
  device: GPUDevice,
  code: string,
  layout: GPUBindGroupLayout,
  options: { entryPoint?: string; label?: string } = {},
): GPUComputePipeline {
  let k = kernels.get(device);
  if (!k) {
    k = { modules: new Map(), layouts: new Map(), pipelines: new Map() };
    kernels.set(device, k);
  }
  const entryPoint = options.entryPoint ?? "main";
  let onLayout = k.pipelines.get(layout);
  if (!onLayout) k.pipelines.set(layout, onLayout = new Map());
  const key = `${entryPoint}\n${code}`;
  let pipeline = onLayout.get(key);
  if (!pipeline) {
    let module = k.modules.get(code);
    if (!module) {
      module = device.createShaderModule({ code, label: options.label });
      k.modules.set(code, module);
    }
    let pipelineLayout = k.layouts.get(layout);
    if (!pipelineLayout) {
      pipelineLayout = device.createPipelineLayout({
        bindGroupLayouts: [layout],
      });
      k.layouts.set(layout, pipelineLayout);
    }
    pipeline = device.createComputePipeline({
      layout: pipelineLayout,
      compute: { module, entryPoint },
      label: options.label,
    });
    onLayout.set(key, pipeline);
  }
  return pipeline;
}
