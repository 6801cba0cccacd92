# The denoiser of d3pm-deno (discrete diffusion vs autoregressive language
# models, https://jsr.io/@d3pm) for PyTorch and transformers, exported beside
# its weights by `deno task export`. Load it with
#
#     from transformers import AutoModelForMaskedLM, AutoTokenizer
#     model = AutoModelForMaskedLM.from_pretrained(DIR, trust_remote_code=True)
#     tokenizer = AutoTokenizer.from_pretrained(DIR)
#     logits = model(input_ids, t=t).logits          # [B, T, vocab]
#
# `t` is the diffusion time in [0, 1] per row ([B]), needed only when
# `config.time_conditioning` is true; the mask token is `config.mask_token_id`.
# The network is a pre-LayerNorm Transformer with bidirectional attention,
# GELU (tanh approximation), learned or rotary ("rotate half", base 10000)
# positions, an optional ALiBi prior, adaLN time conditioning and a head
# tied to the token embedding. Weights keep the project's names; linear
# weights are stored [in, out] as GPT-2's Conv1D. MIT License.

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput


class D3PMConfig(PretrainedConfig):
    model_type = "d3pm"

    def __init__(
        self,
        vocab_size=260,
        n_positions=128,
        n_embd=128,
        n_layer=4,
        n_head=4,
        n_inner=512,
        positions="rotary",
        time_conditioning=False,
        d_time=128,
        alibi=0.0,
        alibi_mode="symmetric",
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        mask_token_id=None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_inner = n_inner
        self.positions = positions
        self.time_conditioning = time_conditioning
        self.d_time = d_time
        self.alibi = alibi
        self.alibi_mode = alibi_mode
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_token_id = mask_token_id
        super().__init__(**kwargs)


class Linear(nn.Module):
    """x @ weight + bias with weight [in, out] (GPT-2's Conv1D layout)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(
            *x.shape[:-1], self.weight.shape[1]
        )


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


def rope_tables(length, head_dim, device):
    # In float64, then float32, as the project computes them.
    half = head_dim // 2
    j = torch.arange(half, dtype=torch.float64)
    freq = torch.pow(torch.tensor(10000.0, dtype=torch.float64), -2 * j / head_dim)
    angle = torch.arange(length, dtype=torch.float64)[:, None] * freq[None, :]
    cos = torch.cat([angle.cos(), angle.cos()], dim=-1).float().to(device)
    sin = torch.cat([angle.sin(), angle.sin()], dim=-1).float().to(device)
    return cos, sin


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def alibi_bias(length, n_head, slope, mode, device):
    """The ALiBi penalty [H, T, T]: head h lowers a key |i − j| away by
    slope · 2^(−8h/H) · |i − j|; with mode "neighbours", heads 0 and 1
    measure the distance from i − 1 and i + 1 with the full slope."""
    i = torch.arange(length, dtype=torch.float64)[:, None]
    j = torch.arange(length, dtype=torch.float64)[None, :]
    rows = []
    for h in range(n_head):
        neighbour = mode == "neighbours" and h < 2
        m = slope if neighbour else slope * 2 ** (-8 * h / n_head)
        centre = (-1 if h == 0 else 1) if neighbour else 0
        rows.append(-m * (j - i - centre).abs())
    return torch.stack(rows).float().to(device)


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = Linear(config.n_embd, config.n_embd)

    def forward(self, h, rope, bias):
        b, t, d = h.shape
        hd = d // self.n_head
        q, k, v = self.c_attn(h).split(d, dim=-1)  # 3 × [B, T, d]

        def heads(z):
            return z.view(b, t, self.n_head, hd).transpose(1, 2)  # [B, H, T, hd]

        q, k, v = heads(q * (1 / math.sqrt(hd))), heads(k), heads(v)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        scores = q @ k.transpose(-1, -2)  # [B, H, T, T]; every key visible
        if bias is not None:
            scores = scores + bias
        y = scores.softmax(dim=-1) @ v  # [B, H, T, hd]
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = Linear(config.n_embd, config.n_inner)
        self.c_proj = Linear(config.n_inner, config.n_embd)

    def forward(self, h):
        return self.c_proj(F.gelu(self.c_fc(h), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        eps = config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps)
        self.mlp = Mlp(config)
        if config.time_conditioning:
            self.ada = Linear(config.d_time, 6 * config.n_embd)

    def forward(self, x, rope, bias, cond):
        mods = self.ada(cond).chunk(6, dim=-1) if cond is not None else None
        h = self.ln_1(x)
        if mods:
            h = modulate(h, mods[0], mods[1])
        a = self.attn(h, rope, bias)
        if mods:
            a = a * (1 + mods[2][:, None, :])
        x = x + a
        h = self.ln_2(x)
        if mods:
            h = modulate(h, mods[3], mods[4])
        m = self.mlp(h)
        if mods:
            m = m * (1 + mods[5][:, None, :])
        return x + m


class FinalNorm(nn.Module):
    """The last LayerNorm; with time conditioning, shifted and scaled by t."""

    def __init__(self, config):
        super().__init__()
        self.eps = config.layer_norm_epsilon
        self.weight = nn.Parameter(torch.ones(config.n_embd))
        self.bias = nn.Parameter(torch.zeros(config.n_embd))
        if config.time_conditioning:
            self.ada = Linear(config.d_time, 2 * config.n_embd)

    def forward(self, x, cond):
        h = F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)
        if cond is not None:
            shift, scale = self.ada(cond).chunk(2, dim=-1)
            h = modulate(h, shift, scale)
        return h


class TimeMlp(nn.Module):
    def __init__(self, d_time):
        super().__init__()
        self.c_fc = Linear(d_time, d_time)
        self.c_proj = Linear(d_time, d_time)


class TimeEmbedding(nn.Module):
    """SiLU(MLP(sinusoidal(1000 t))): what every adaLN projection reads."""

    def __init__(self, d_time):
        super().__init__()
        self.d_time = d_time
        self.mlp = TimeMlp(d_time)

    def forward(self, t):
        half = self.d_time // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = (t.float() * 1000)[:, None] * freqs.to(t.device)[None, :]
        feats = torch.cat([args.cos(), args.sin()], dim=-1)  # [B, d_time]
        hidden = F.silu(self.mlp.c_fc(feats))
        return F.silu(self.mlp.c_proj(hidden))


class D3PMForMaskedLM(PreTrainedModel):
    """The denoiser: logits [B, T, vocab] for every position of a partly
    masked sequence, `forward(input_ids, t=None)`."""

    config_class = D3PMConfig
    base_model_prefix = "d3pm"
    _no_split_modules = ["Block"]

    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = FinalNorm(config)
        if config.time_conditioning:
            self.time = TimeEmbedding(config.d_time)
        self.post_init()

    def _init_weights(self, module):
        # Every weight comes from the checkpoint; a fresh model starts at GPT-2's scale.
        if isinstance(module, (nn.Embedding, Linear)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, Linear):
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.wte

    def forward(self, input_ids, t=None, attention_mask=None, **kwargs):
        """Logits for every position. `t` ([B] in [0, 1]) is required when the
        model is time-conditioned. `attention_mask` is not used: the
        project's denoisers see whole blocks."""
        config = self.config
        b, length = input_ids.shape
        if length > config.n_positions:
            raise ValueError(f"sequences of at most {config.n_positions} tokens, got {length}")
        x = self.wte(input_ids)  # [B, T, d]
        if config.positions == "learned":
            x = x + self.wpe.weight[:length]
        cond = None
        if config.time_conditioning:
            if t is None:
                raise ValueError("this denoiser is time-conditioned: pass t of shape [B]")
            t = torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
            cond = self.time(t)  # [B, d_time]
        rope = rope_tables(length, config.n_embd // config.n_head, x.device) if config.positions == "rotary" else None
        bias = alibi_bias(length, config.n_head, config.alibi, config.alibi_mode, x.device) if config.alibi else None
        for block in self.h:
            x = block(x, rope, bias, cond)
        h = self.ln_f(x, cond)
        return MaskedLMOutput(logits=h @ self.wte.weight.T)
