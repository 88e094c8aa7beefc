"""The SAE interface every architecture implements: encode, decode, and SAELens-named weights."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from pseval.errors import SAEFormatError
from pseval.saes.config import SAEConfig
from pseval.saes.tensor_io import storage_ordered


class TrainOutput(NamedTuple):
    """What one training forward returns: total loss, its parts, the latents and the reconstruction."""

    loss: torch.Tensor
    mse: torch.Tensor
    sparsity: torch.Tensor
    aux: torch.Tensor
    latents: torch.Tensor
    recon: torch.Tensor


class SAE(nn.Module):
    """Base sparse autoencoder in SAELens' `x @ W` layout: W_enc [d_in, d_sae], W_dec [d_sae, d_in]."""

    architecture: ClassVar[str] = ""
    # The `architecture` written to cfg.json when it differs from the training one (BatchTopK saves as jumprelu).
    export_architecture: ClassVar[str | None] = None
    # Weight names saved in sae_weights.safetensors beyond W_enc/b_enc/W_dec/b_dec.
    extra_weights: ClassVar[tuple[str, ...]] = ()
    # Whether sparsity is set by a number of active latents `k` (TopK kinds) rather than a sparsity coefficient.
    uses_k: ClassVar[bool] = False
    # How the trainer starts b_dec (TrainConfig.b_dec_init's default): B9 measured the geometric median best for TopK
    # (held-out FVU 0.303 against 0.323 from zeros) and zeros best for the L1 SAE (0.269 at L0 211 against 0.298 at
    # L0 373), as dictionary_learning and SAELens start them.
    default_b_dec_init: ClassVar[str] = "geometric_median"
    # Training decodes by gathering the decoder rows of non-zero latents (see `train_matmul`). Only exact where a
    # zero latent carries no gradient back (ReLU, gates, TopK selection); JumpReLU's threshold STE needs it dense.
    sparse_decode: bool = False
    # A buffer (register_buffer), declared so that type checkers see a Tensor rather than Module.__getattr__'s union.
    input_scale: torch.Tensor

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d_in, d_sae = cfg.d_in, cfg.d_sae
        self.W_enc = nn.Parameter(torch.empty(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.empty(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        # Multiplies inputs before encoding and divides outputs after decoding (expected_average_only_in etc.).
        self.register_buffer("input_scale", torch.ones(()), persistent=False)
        if not self.W_enc.is_meta:  # built on the meta device, a loader assigns the weights (see saes.build)
            self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Unit-norm decoder rows, encoder initialised as the decoder's transpose, zero biases."""
        with torch.no_grad():
            w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=generator)
            w /= w.norm(dim=1, keepdim=True).clamp_min(1e-8)
            self.W_dec.copy_(w)
            self.W_enc.copy_(w.T)
            if getattr(self, "b_enc", None) is not None:  # gated SAEs have no b_enc
                self.b_enc.zero_()
            self.b_dec.zero_()

    @property
    def d_in(self) -> int:
        """Input width."""
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        """Number of latents."""
        return self.cfg.d_sae

    def weight_names(self) -> tuple[str, ...]:
        """Names of the tensors in sae_weights.safetensors."""
        return ("W_enc", "b_enc", "W_dec", "b_dec", *self.extra_weights)

    def get_weight(self, name: str) -> torch.Tensor:
        """A saved tensor by its file name."""
        return getattr(self, name)

    @torch.no_grad()
    def set_weight(self, name: str, value: torch.Tensor) -> None:
        """Copy a saved tensor, by its file name, into the existing weight (in the weight's dtype)."""
        w = getattr(self, name)
        w.copy_(value.to(w.dtype))

    def assign_weight(self, name: str, value: torch.Tensor) -> None:
        """Make `value` itself the weight `name` (no copy): how loaders fill an SAE built on the meta device."""
        if name in self._parameters:
            old = self._parameters[name]  # None for a parameter registered empty: the default (trainable) applies
            self._parameters[name] = nn.Parameter(value, requires_grad=True if old is None else old.requires_grad)
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            raise KeyError(f"{type(self).__name__} has no weight {name!r}")

    def materialise_state(self, device: torch.device | str) -> None:
        """Non-weight state (buffers) with its initial values on `device`, after a build on the meta device."""
        self.register_buffer("input_scale", torch.ones((), device=device), persistent=False)

    def _layer_norm(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """OpenAI's / SAELens' `layer_norm` input normalisation: centre, divide by the (unbiased) std + 1e-5."""
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        std = xc.std(dim=-1, keepdim=True)
        return xc / (std + LAYER_NORM_EPS), mu, std

    def _norm_coeff(self, x: torch.Tensor) -> torch.Tensor:
        """SAELens' `constant_norm_rescale` factor: sqrt(d_in) / ||x||, per token."""
        return self.cfg.d_in ** 0.5 / x.norm(dim=-1, keepdim=True)

    def process_input(self, x: torch.Tensor) -> torch.Tensor:
        """Scale (or normalise per token, as cfg.normalize_activations says), then subtract b_dec if configured."""
        x = x.to(self.W_enc.dtype) * self.input_scale
        norm = self.cfg.normalize_activations
        if norm == "layer_norm":
            x = self._layer_norm(x)[0]
        elif norm == "constant_norm_rescale":
            x = x * self._norm_coeff(x)
        return x - self.b_dec if self.cfg.apply_b_dec_to_input else x

    def denormalise_output(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Undo the per-token input normalisation on a reconstruction of x (SAELens' run_time_activation_norm_fn_out).

        layer_norm: x_hat * std + mu, with the std *without* the epsilon, as SAELens and OpenAI both un-normalise.
        """
        norm = self.cfg.normalize_activations
        if norm == "layer_norm":  # scale-invariant: input_scale plays no part
            _, mu, std = self._layer_norm(x.to(self.W_enc.dtype))
            return x_hat * std + mu
        if norm == "constant_norm_rescale":
            return x_hat / self._norm_coeff(x.to(self.W_enc.dtype))
        return x_hat

    def encode_decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents and the reconstruction in the input's units (undoing per-token input normalisation)."""
        z = self.encode(x)
        return z, self.denormalise_output(self.decode(z), x)

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations."""
        return self.process_input(x) @ self.W_enc + self.b_enc

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """The architecture's nonlinearity on pre-activations."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code of x [..., d_in] -> [..., d_sae]."""
        return self.activation(self.pre_acts(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the input's units."""
        return (z @ self.W_dec + self.b_dec) / self.input_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of x."""
        return self.encode_decode(x)[1]

    def train_matmul(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """z @ w in training: the sparse fast path when enabled and z is sparse enough, else the dense reference."""
        if self.sparse_decode and z.ndim == 2:
            head = z[:128]  # rows are shuffled tokens: their density stands for the batch's at 1/8 of the cost
            if int(head.count_nonzero()) < SPARSE_DECODE_MAX_DENSITY * head.numel():
                return sparse_matmul(z, w)
        return z @ w

    def train_decode(self, z: torch.Tensor) -> torch.Tensor:
        """decode(z) through `train_matmul`."""
        return (self.train_matmul(z, self.W_dec) + self.b_dec) / self.input_scale

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """Training loss on a batch; architectures override."""
        raise NotImplementedError(f"{type(self).__name__} cannot be trained by pseval")

    def default_sparsity_coeff(self) -> float:
        """Sparsity coefficient used when the user gives none (0 for architectures with structural sparsity)."""
        return 0.0

    @torch.no_grad()
    def check_weights(self, source: str = "SAE") -> None:
        """Raise SAEFormatError on NaN or infinite weights, naming the tensor.

        One min/max pass per tensor (NaN and inf propagate into it, and it allocates nothing of the tensor's size);
        the bad values are counted, in slices, only when there are some.
        """
        for name in self.weight_names():
            t = self.get_weight(name)
            if t.numel() == 0:
                continue
            flat = storage_ordered(t)  # a transposed view reduced as stored: no hidden contiguous copy
            lo, hi = torch.aminmax(t if flat is None else flat)
            if bool(torch.isfinite(lo)) and bool(torch.isfinite(hi)):
                continue
            rows = max(1, CHECK_CHUNK_ELEMENTS // max(1, t[0].numel())) if t.ndim else 1
            bad = sum(int(c.numel() - torch.isfinite(c).sum()) for c in (t.split(rows) if t.ndim else (t,)))
            raise SAEFormatError(f"{source}: weight {name!r} has {bad} NaN/inf value(s)")

    def finish_training(self, sample: torch.Tensor, batch_size: int) -> None:
        """Called once after the last step with a sample of the (normalised) training data: state that is set from
        the trained weights rather than learned (BatchTopK's threshold). Nothing for most architectures."""

    @torch.no_grad()
    def post_step(self) -> None:
        """Constraints re-applied after every optimiser step (here: unit-norm decoder rows)."""
        self.normalise_decoder()

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Rescale decoder rows to unit norm (the training constraint that stops L1 shrinking latents)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def fold_input_scale(self) -> None:
        """Fold input_scale into the weights so the saved SAE takes raw activations (normalize_activations none)."""
        s = float(self.input_scale)
        if s == 1.0:
            return
        self.W_enc.mul_(s)
        self.b_dec.div_(s)
        self.W_dec.div_(s)
        self.input_scale.fill_(1.0)

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Project out the gradient component that would change decoder-row norms."""
        if self.W_dec.grad is None:
            return
        w = self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
        self.W_dec.grad -= (self.W_dec.grad * w).sum(dim=1, keepdim=True) * w


def module_device(module: nn.Module) -> torch.device:
    """Where a module computes: its first parameter or buffer (CPU for one that holds none, e.g. an identity)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


# layer_norm's epsilon (SAELens and OpenAI: 1e-5, added to the std when normalising, not when un-normalising).
LAYER_NORM_EPS = 1e-5
# Elements per slice when scanning a weight for NaN/inf.
CHECK_CHUNK_ELEMENTS = 1 << 24
# Above this fraction of non-zero latents gathering rows loses to the dense matmul (crossover ~7% on a 2-core CPU).
SPARSE_DECODE_MAX_DENSITY = 0.05


def sparse_matmul(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """z @ w [B, m] x [m, d] summing only the rows of w where z is non-zero; the gradient reaches z only there."""
    rows, cols = z.nonzero(as_tuple=True)  # row-major order: each row's entries are contiguous
    return F.embedding_bag(cols, w, row_offsets(rows, z.shape[0]), per_sample_weights=z[rows, cols].to(w.dtype),
                           mode="sum")


def row_offsets(rows: torch.Tensor, n: int) -> torch.Tensor:
    """Start of each row's entries in a row-sorted list of (row, col) entries: embedding_bag's offsets."""
    offsets = torch.zeros(n, dtype=torch.long, device=rows.device)
    offsets[1:] = torch.bincount(rows, minlength=n).cumsum(0)[:-1]
    return offsets


class _SelectedPreActs(torch.autograd.Function):
    """Pre-activations at chosen (row, col) entries, (x_in @ W_enc + b_enc)[rows, cols], read from the dense `pre`
    computed without a graph; the backward touches only those entries (the idea of sparsify's fused encoder). The
    dense backward would make two [batch, d_sae] matmuls, almost all of whose entries are zero."""

    @staticmethod
    def forward(ctx: Any, x_in: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, rows: torch.Tensor,
                cols: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x_in, W_enc, rows, cols)
        return pre[rows, cols]

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_in, W_enc, rows, cols = ctx.saved_tensors
        g = grads[0].contiguous().to(W_enc.dtype)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:  # row n: sum of g * W_enc[:, col] over its entries (a contiguous copy: 10x faster)
            gx = F.embedding_bag(cols, W_enc.t().contiguous(), row_offsets(rows, x_in.shape[0]),
                                 per_sample_weights=g, mode="sum")
        if ctx.needs_input_grad[1]:  # column col of W_enc gets g * x_in[row]: a sparse [d_sae, batch] @ x_in
            sel = torch.sparse_coo_tensor(torch.stack([cols, rows]), g, (W_enc.shape[1], x_in.shape[0]),
                                          check_invariants=False)
            gw = torch.sparse.mm(sel, x_in.to(W_enc.dtype)).t()
        if ctx.needs_input_grad[2]:
            gb = W_enc.new_zeros(W_enc.shape[1]).index_add_(0, cols, g)
        return gx, gw, gb, None, None, None


def selected_pre_acts(x_in: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, rows: torch.Tensor,
                      cols: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """pre[rows, cols] (pre = x_in @ W_enc + b_enc, computed without a graph; rows sorted) with the gradient of
    computing them from x_in, W_enc and b_enc, in work proportional to the entries rather than to batch x d_sae."""
    out: torch.Tensor = _SelectedPreActs.apply(x_in, W_enc, b_enc, rows, cols, pre)
    return out


def mse_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Squared error summed over d, averaged over tokens (as SAELens 6 and dictionary_learning train)."""
    return (recon - x.to(recon.dtype)).pow(2).sum(-1).mean()


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int, ...], source: str) -> None:
    """Raise SAEFormatError when a weight's shape is not the expected one."""
    if tuple(tensor.shape) != expected:
        raise SAEFormatError(f"{source}: weight {name!r} has shape {tuple(tensor.shape)}, expected {expected}")
