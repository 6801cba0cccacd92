"""The transformers side of the Hugging Face interop tests (tests/hf_test.ts).

    hf_peer.py run REQUESTS.json   # a JSON list of requests; prints a JSON list of replies

One interpreter serves them all (importing torch and transformers takes
seconds). A request is {"op": ..., ...}:

  logits  {"dir", "ids": [[...]], "out", "t"?: [...], "prompt"?: n, "new"?: n, "text"?: str,
           "dtype"?: "float32"}
      Loads DIR as transformers would for a user: the class named in
      config.json's architectures with from_pretrained(DIR) and no other
      argument, and AutoTokenizer.from_pretrained(DIR) (both with
      trust_remote_code=True for the project's denoiser). Writes the
      logits of `ids` (float32, little-endian, row-major [B, T, V]) to `out`;
      with `prompt`, the greedy continuation of ids[0][:prompt] by `new`
      tokens (generate(do_sample=False)); with `text`, its ids and decoding;
      with `dtype`, the weights are loaded in that dtype (dtype=...), e.g.
      float32 for a float16 checkpoint.
  next  {"dir", "ids": [[...]], "out"}
      A causal model loaded as for `logits`, its generation_config.json
      applied: generate(ids, max_new_tokens=1, do_sample=False) with
      output_scores, and the log-softmax of the processed scores of that one
      step (float32 [B, V], suppressed ids at -inf) written to `out`; the
      reply holds generation_config's eos_token_id and suppress_tokens.
  make_gpt2  {"dir", "n_layer"?, "n_embd"?, "n_head"?, "n_positions"?, "seed",
              "dtype": "float32"|"float16"|"bfloat16",
              "format": "safetensors"|"bin", "old_names"?: bool, "eot"?: float}
      Builds GPT2LMHeadModel(GPT2Config(...)) (the 124M configuration but
      for the sizes given) with random weights — nothing is downloaded — and
      saves it: save_pretrained, or a torch.save'd state dict in
      pytorch_model.bin (with old_names: GPT2Model's names without
      `transformer.`, and the attn.bias / attn.masked_bias buffers of
      checkpoints of that era). With `eot`, <|endoftext|> (50256) gets a logit
      about `eot` above the others everywhere, as a trained GPT-2 gives it at
      a document's end: ln_f's weight is scaled by 0.1, its bias becomes a
      unit vector u and the tied row of 50256 gains eot · u.
"""

import json
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel


def logits(req):
    with open(f"{req['dir']}/config.json") as f:
        arch = json.load(f)["architectures"][0]
    if arch == "D3PMForMaskedLM":
        model = AutoModelForMaskedLM.from_pretrained(req["dir"], trust_remote_code=True)
        auto = type(model).__name__
    else:
        extra = {"dtype": getattr(torch, req["dtype"])} if "dtype" in req else {}
        model = getattr(transformers, arch).from_pretrained(req["dir"], **extra)
        auto = type(AutoModelForCausalLM.from_pretrained(req["dir"])).__name__
    model.eval()
    # transformers reads a directory's model config before its tokenizer: a
    # denoiser's names modeling_d3pm.py, so its tokenizer too is loaded with
    # trust_remote_code=True. A causal model's loads with no argument.
    remote = {"trust_remote_code": True} if arch == "D3PMForMaskedLM" else {}
    tokenizer = AutoTokenizer.from_pretrained(req["dir"], **remote)
    ids = torch.tensor(req["ids"], dtype=torch.long)
    kwargs = {"t": torch.tensor(req["t"], dtype=torch.float32)} if "t" in req else {}
    with torch.no_grad():
        out = model(ids, **kwargs).logits.float().contiguous()
    with open(req["out"], "wb") as f:
        f.write(out.numpy().astype("<f4").tobytes())
    reply = {
        "class": type(model).__name__,
        "auto_class": auto,
        "tokenizer": type(tokenizer).__name__,
        "tokenizer_ids": len(tokenizer),
        "shape": list(out.shape),
    }
    if "prompt" in req:
        prompt = ids[:1, : req["prompt"]]
        with torch.no_grad():
            gen = model.generate(prompt, max_new_tokens=req["new"], do_sample=False)
        reply["greedy"] = gen[0, req["prompt"]:].tolist()
    if "text" in req:
        encoded = tokenizer(req["text"])["input_ids"]
        reply["encoded"] = encoded
        reply["decoded"] = tokenizer.decode(encoded)
    return reply


def next_token(req):
    with open(f"{req['dir']}/config.json") as f:
        arch = json.load(f)["architectures"][0]
    model = getattr(transformers, arch).from_pretrained(req["dir"]).eval()
    ids = torch.tensor(req["ids"], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=1,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
    scores = torch.log_softmax(out.scores[0].float(), dim=-1).contiguous()
    with open(req["out"], "wb") as f:
        f.write(scores.numpy().astype("<f4").tobytes())
    config = model.generation_config
    return {
        "shape": list(scores.shape),
        "eos_token_id": config.eos_token_id,
        "suppress_tokens": config.suppress_tokens,
    }


def make_gpt2(req):
    torch.manual_seed(req["seed"])
    shape = ("n_layer", "n_embd", "n_head", "n_positions")
    config = GPT2Config(**{k: req[k] for k in shape if k in req})
    model = GPT2LMHeadModel(config).eval()
    if "eot" in req:
        with torch.no_grad():
            u = torch.randn(config.n_embd)
            u /= u.norm()
            model.transformer.ln_f.weight.mul_(0.1)
            model.transformer.ln_f.bias.copy_(u)
            model.transformer.wte.weight[50256] += req["eot"] * u
    dtype = getattr(torch, req["dtype"])
    model = model.to(dtype)
    if req["format"] == "safetensors":
        model.save_pretrained(req["dir"])
    else:
        import os

        os.makedirs(req["dir"], exist_ok=True)
        config.save_pretrained(req["dir"])
        state = model.state_dict()
        if req.get("old_names"):
            state = {k.removeprefix("transformer."): v for k, v in state.items()}
            for i in range(config.n_layer):
                n = config.n_positions
                state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
                state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        torch.save(state, f"{req['dir']}/pytorch_model.bin")
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        requests = json.load(f)
    ops = {"logits": logits, "next": next_token, "make_gpt2": make_gpt2}
    print(json.dumps([ops[r["op"]](r) for r in requests]))
