"""SAE objects a researcher already holds, scored as they are: pseval SAEs, SAELens `SAE`s, SAEBench custom SAEs,
dictionary_learning dictionaries, sparsify `SparseCoder`s, and any module with `encode(x) -> codes`.

The libraries are never imported: an object is recognised by the package its class (or a base class) comes from,
its own `encode` computes the codes, and its tensors and config are read where they are. The hook and the
activation convention come from the object's config; where it has none they must be given (`hook=`,
`convention=`), never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

import torch
import torch.nn as nn

from pseval.errors import ConfigError, SAEFormatError
from pseval.saes.base import SAE, module_device
from pseval.saes.code_checks import check_codes
from pseval.saes.config import NORMALISATIONS, SAEConfig, SAEMetadata
from pseval.saes.conventions import (
    CONVENTIONS,
    DEFAULT_SOURCES,
    HF,
    OPTION,
    SOURCE_OPTION,
    convention_of,
    saelens_convention,
)
from pseval.saes.fingerprint import module_fingerprint, tensors_fingerprint
from pseval.saes.formats.saelens import config_from_legacy, is_v6

# dictionary_learning class names -> the architecture names SAELens and pseval use.
_DL_ARCHITECTURES = {"AutoEncoder": "standard", "AutoEncoderNew": "standard", "AutoEncoderTopK": "topk",
                     "BatchTopKSAE": "batchtopk", "MatryoshkaBatchTopKSAE": "matryoshka_batchtopk",
                     "GatedAutoEncoder": "gated", "JumpReluAutoEncoder": "jumprelu", "IdentityDict": "identity"}


def object_kind(obj: Any) -> str:
    """Which adapter reads an object: the library its class or a base class comes from, else `module` for any
    object with a callable `encode`."""
    if isinstance(obj, SAE):
        return "pseval"
    packages = {c.__module__.split(".")[0] for c in type(obj).__mro__}
    for package, kind in (("sae_lens", "saelens"), ("sae_bench", "saebench"),
                          ("dictionary_learning", "dictionary_learning"), ("sparsify", "sparsify")):
        if package in packages:
            return kind
    if callable(getattr(obj, "encode", None)):
        return "module"
    raise SAEFormatError(f"cannot score a {type(obj).__module__}.{type(obj).__qualname__}: expected an SAE spec or "
                         "path, a pseval SAE, a SAELens SAE, a dictionary_learning dictionary, a sparsify "
                         "SparseCoder, or a module with encode(x) -> codes")


def _dense_codes(out: Any, d_sae: int) -> torch.Tensor:
    """An encode's output as dense codes [n, d_sae]: a tensor, sparsify's (top_acts, top_indices, ...) or a tuple
    whose first item is the codes."""
    if isinstance(out, torch.Tensor):
        return out
    acts, idx = getattr(out, "top_acts", None), getattr(out, "top_indices", None)
    if isinstance(acts, torch.Tensor) and isinstance(idx, torch.Tensor):
        dense = torch.zeros((*acts.shape[:-1], d_sae), dtype=acts.dtype, device=acts.device)
        return dense.scatter_(-1, idx.long(), acts)
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise SAEFormatError(f"encode returned a {type(out).__name__}; expected a tensor of codes [n, d_sae] or "
                         "sparsify's (top_acts, top_indices)")


def _probe_width(obj: Any, d_in: int) -> int:
    """The code width of a module that states none: its encode of one zero vector."""
    probe = torch.zeros((1, d_in), dtype=_float_dtype(obj) or torch.float32,
                        device=module_device(obj) if isinstance(obj, nn.Module) else "cpu")
    with torch.no_grad():
        out = obj.encode(probe)
    pre = getattr(out, "pre_acts", None)
    if isinstance(out, torch.Tensor) or (isinstance(out, (tuple, list)) and isinstance(out[0], torch.Tensor)
                                         and getattr(out, "top_indices", None) is None):
        return int((out if isinstance(out, torch.Tensor) else out[0]).shape[-1])
    if isinstance(pre, torch.Tensor):
        return int(pre.shape[-1])
    raise SAEFormatError(f"{type(obj).__name__}: encode returns top-k codes and the module states no width; give it "
                         "a d_sae attribute")


def _float_dtype(obj: Any) -> torch.dtype | None:
    """The dtype of the object's first floating-point tensor: its encode is fed that."""
    if isinstance(obj, nn.Module):
        for t in (*obj.parameters(), *obj.buffers()):
            if t.is_floating_point():
                return t.dtype
    return None


class ObjectSAE(SAE):
    """Another library's SAE object behind pseval's SAE interface: its own `encode`, its weights read in place
    (W_enc [d_in, d_sae], W_dec [d_sae, d_in] as SAELens names them; None where the object has none)."""

    inner: Any  # the foreign object, duck-typed (an nn.Module or not): its encode and weights are read as found

    def __init__(self, obj: Any, cfg: SAEConfig, feed: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 decode: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        nn.Module.__init__(self)  # not SAE.__init__: the object owns its weights
        self.cfg = cfg
        self.architecture = cfg.architecture  # type: ignore[misc]  # per object, not per class
        if isinstance(obj, nn.Module):
            self.inner = obj  # registered, so .to() and the device follow the object
        else:
            self.__dict__["inner"] = obj
        self._feed = feed or (lambda x: x)
        self._decode = decode

    # Read on each access: a view such as encoder.weight.T would go stale when the object moves device.
    @property
    def W_enc(self) -> torch.Tensor | None:  # type: ignore[override]  # a foreign SAE may lack the matrix: None
        """The object's encoder matrix [d_in, d_sae], or None."""
        return object_weights(self.inner, self.cfg.d_in)[0]

    @property
    def W_dec(self) -> torch.Tensor | None:  # type: ignore[override]  # a foreign SAE may lack the matrix: None
        """The object's decoder matrix [d_sae, d_in], or None."""
        return object_weights(self.inner, self.cfg.d_in)[1]

    def weight_names(self) -> tuple[str, ...]:
        """The object's tensors, by their state-dict names."""
        return tuple(self.inner.state_dict()) if isinstance(self.inner, nn.Module) else ()

    def get_weight(self, name: str) -> torch.Tensor:
        """A tensor of the object by its state-dict name."""
        return self.inner.state_dict()[name]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The object's own encode on x (cast to the object's dtype and device), as dense float32 codes."""
        x = x.to(module_device(self.inner) if isinstance(self.inner, nn.Module) else x.device)
        x = x.to(_float_dtype(self.inner) or x.dtype)
        with torch.no_grad():
            z = _dense_codes(self.inner.encode(self._feed(x)), self.cfg.d_sae)
        return check_codes(z, tuple(x.shape[:-1]), self.cfg.d_sae, type(self.inner).__name__).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The object's reconstruction from dense codes (where it has a decoder)."""
        if self._decode is None:
            raise SAEFormatError(f"{type(self.inner).__name__} has no decode(codes): reconstruction and loss "
                                 "recovered need one")
        with torch.no_grad():
            return self._decode(z.to(_float_dtype(self.inner) or z.dtype)).float()

    def encode_decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and reconstruction; the object undoes its own input normalisation."""
        z = self.encode(x)
        return z, self.decode(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of x."""
        return self.encode_decode(x)[1]

    def check_weights(self, source: str = "SAE") -> None:
        """Raise SAEFormatError on NaN or infinite weights, naming the tensor."""
        for name, t in (self.inner.state_dict().items() if isinstance(self.inner, nn.Module) else ()):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise SAEFormatError(f"{source}: weight {name!r} has {int((~torch.isfinite(t)).sum())} NaN/inf "
                                     "value(s)")


@dataclass
class AdaptedSAE:
    """An SAE ready for the pipeline: pseval's interface, where it is read, and what identifies it."""

    sae: SAE
    name: str
    hook: str
    source: str
    fingerprint: str


def _config_dict(cfg: Any) -> dict[str, Any]:
    """A library config object as a plain dict (its own to_dict where it has one)."""
    if cfg is None:
        return {}
    if callable(getattr(cfg, "to_dict", None)):
        return dict(cfg.to_dict())
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    return {k: v for k, v in vars(cfg).items() if not k.startswith("_")}


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of a config dict (dtypes, devices and other objects as strings)."""
    def conv(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return str(v)
    return {str(k): conv(v) for k, v in d.items()}


def _int(v: Any) -> int | None:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return int(v.item())
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _scalar_attrs(obj: Any) -> dict[str, Any]:
    """Public int/float/str/bool attributes: hyperparameters such as k that a state dict does not hold."""
    return {k: v for k, v in sorted(vars(obj).items()) if not k.startswith("_") and k != "training"
            and isinstance(v, (bool, int, float, str))}


def _need_hook(kind: str, obj: Any, hook: str | None) -> str:
    if hook is None:
        raise ConfigError(f"hook: a {type(obj).__name__} ({kind}) does not record the hook point it was trained on; "
                          "pass hook= (SAEBench config: hook_name), e.g. "
                          "hook='blocks.3.hook_resid_post'")
    return hook


def _check_convention(convention: str, where: str) -> str:
    if convention not in CONVENTIONS:
        raise ConfigError(f"{where}={convention!r}; expected one of {', '.join(CONVENTIONS)}")
    return convention


def _saelens(obj: Any) -> tuple[SAEConfig, dict[str, Any]]:
    """pseval's config of a SAELens SAE (v6: `cfg.metadata`; earlier: a flat cfg), and SAELens' own dict."""
    raw = _plain(_config_dict(obj.cfg))
    if "architecture" not in raw:
        arch = getattr(obj.cfg, "architecture", None)
        raw["architecture"] = arch() if callable(arch) else arch
    if is_v6(raw):
        meta_raw = raw["metadata"]
        known = {f.name for f in fields(SAEConfig)} - {"metadata", "extra"}
        base = {k: raw[k] for k in known if k in raw and raw[k] is not None}
        extra = {k: v for k, v in raw.items() if k not in known and k != "metadata"}
        if base.get("normalize_activations") not in NORMALISATIONS:  # the object normalises itself; keep its value
            extra["normalize_activations"] = base.pop("normalize_activations", None)
        cfg = SAEConfig(**base, metadata=SAEMetadata.from_dict(meta_raw), extra=extra)
        kwargs = meta_raw.get("model_from_pretrained_kwargs")
    else:
        cfg = config_from_legacy(raw)
        meta_raw = cfg.metadata.to_dict()
        kwargs = raw.get("model_from_pretrained_kwargs")
    cfg.metadata.extra["activation_convention"], cfg.metadata.extra["activation_convention_source"] = \
        saelens_convention(meta_raw, kwargs, raw)
    cfg.metadata.extra["source_format"] = "saelens_object"
    return cfg, raw


def object_weights(obj: Any, d_in: int | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """W_enc [d_in, d_sae] and W_dec [d_sae, d_in] of an object: `W_enc`/`W_dec` as SAELens lays them out, else
    nn.Linear `encoder`/`decoder` weights transposed; a `W_dec` stored [d_in, d_sae] is transposed when d_in says so."""
    def tensor(name: str) -> torch.Tensor | None:
        t = getattr(obj, name, None)
        return t if isinstance(t, torch.Tensor) and t.ndim == 2 else None

    def linear(name: str) -> torch.Tensor | None:
        w = getattr(getattr(obj, name, None), "weight", None)
        return w.T if isinstance(w, torch.Tensor) and w.ndim == 2 else None

    w_enc = tensor("W_enc")
    w_enc = w_enc if w_enc is not None else linear("encoder")
    w_dec = tensor("W_dec")
    w_dec = w_dec if w_dec is not None else linear("decoder")
    if d_in is not None:
        if w_enc is not None and w_enc.shape[0] != d_in and w_enc.shape[1] == d_in:
            w_enc = w_enc.T
        if w_dec is not None and w_dec.shape[1] != d_in and w_dec.shape[0] == d_in:
            w_dec = w_dec.T
    return w_enc, w_dec


def _width(obj: Any, cfg: Any, names: tuple[str, ...]) -> int | None:
    for holder in (obj, cfg):
        for n in names:
            v = _int(getattr(holder, n, None)) if holder is not None else None
            if v:
                return v
    return None


def adapt_sae(obj: Any, hook: str | None = None, name: str | None = None, convention: str | None = None,
              model_convention: str = HF, hook_width: Callable[[str], int] | None = None) -> AdaptedSAE:
    """pseval's view of an SAE object: its config, hook, activation convention, weights and fingerprint.

    `hook` overrides the hook the object records (and is required where it records none). `convention` is the
    activation convention of a plain module (`model_convention` by default: it is fed what the model gives); for
    library objects it comes from their config and `convention` may only confirm it. `hook_width(hook)` gives a
    hook's width for a module that states no d_in.
    """
    kind = object_kind(obj)
    label = name or type(obj).__name__
    source = f"{kind} object {type(obj).__module__}.{type(obj).__qualname__}"
    if convention is not None:
        _check_convention(convention, "convention")
    if kind == "pseval":
        if convention is not None and convention != convention_of(obj):
            raise ConfigError(f"convention={convention!r}, but {label} records {convention_of(obj)!r}")
        at = hook or _need_hook("pseval SAE", obj, obj.cfg.metadata.hook_name)
        return AdaptedSAE(obj, label, at, source, tensors_fingerprint(obj))

    feed: Callable[[torch.Tensor], torch.Tensor] | None = None
    decode = getattr(obj, "decode", None)
    if kind == "saelens":
        cfg, raw = _saelens(obj)
        # hook_z SAEs flatten [..., n_heads, d_head] themselves: give them one head of the full width.
        if getattr(obj, "hook_z_reshaping_mode", False):
            feed = lambda x: x.unsqueeze(-2)  # noqa: E731
        fp_config = {k: v for k, v in raw.items() if k != "metadata"}
    elif kind == "saebench":
        c = obj.cfg
        raw = _plain(_config_dict(c))
        arch = raw.get("architecture") or type(obj).__name__
        # SAEBench runs every model through TransformerLens without weight processing: Hugging Face activations.
        meta = SAEMetadata(model_name=raw.get("model_name"), hook_name=raw.get("hook_name"),
                           hook_head_index=raw.get("hook_head_index"),
                           extra={"activation_convention": HF, "source_format": "saebench_object"})
        cfg = SAEConfig(architecture=str(arch), d_in=int(raw["d_in"]), d_sae=int(raw["d_sae"]), metadata=meta,
                        extra={k: v for k, v in raw.items() if k in ("activation_fn_str", "activation_fn_kwargs")})
        fp_config = {**raw, **_scalar_attrs(obj)}
    elif kind == "dictionary_learning":
        cls = type(obj).__name__
        d_in = _width(obj, None, ("activation_dim",))
        d_sae = _width(obj, None, ("dict_size",))
        if d_in is None or d_sae is None:
            raise SAEFormatError(f"{cls}: a dictionary_learning dictionary has activation_dim and dict_size")
        k = _int(getattr(obj, "k", None))
        # dictionary_learning trains on Hugging Face modules through nnsight.
        meta = SAEMetadata(extra={"activation_convention": HF, "source_format": "dictionary_learning_object",
                                  "dict_class": cls})
        cfg = SAEConfig(architecture=_DL_ARCHITECTURES.get(cls, cls), d_in=d_in, d_sae=d_sae,
                        k=k if k is not None and 0 < k <= d_sae else None, metadata=meta)
        fp_config = _scalar_attrs(obj)
    elif kind == "sparsify":
        c = obj.cfg
        raw = _plain(_config_dict(c))
        d_in = _width(obj, None, ("d_in",))
        d_sae = _width(obj, c, ("num_latents",))
        if d_in is None or d_sae is None:
            raise SAEFormatError(f"{type(obj).__name__}: a sparsify SparseCoder has d_in and num_latents")
        if raw.get("transcode"):  # as pseval's sparsify reader: it predicts another module's output
            raise SAEFormatError(f"{type(obj).__name__}: cfg.transcode is true (a transcoder is not an SAE)")
        meta = SAEMetadata(extra={"activation_convention": HF, "source_format": "sparsify_object"})
        k = _int(raw.get("k"))
        cfg = SAEConfig(architecture=str(raw.get("activation", "topk")), d_in=d_in, d_sae=d_sae,
                        k=k if k is not None and 0 < k <= d_sae else None, metadata=meta,
                        extra={k_: v for k_, v in raw.items() if k_ != "k"})
        fp_config = {**raw, "d_in": d_in}
        w_dec = getattr(obj, "W_dec", None)
        b_dec = getattr(obj, "b_dec", None)
        # sparsify decodes (top_acts, top_indices); a dense code decodes the same through W_dec.
        decode = (lambda z: z @ w_dec + b_dec) if w_dec is not None and b_dec is not None else None
    else:
        c = getattr(obj, "cfg", None)
        meta_c = getattr(c, "metadata", None)
        recorded = next((h for h in (getattr(meta_c, "hook_name", None), getattr(c, "hook_name", None),
                                     getattr(obj, "hook_name", None)) if isinstance(h, str)), None)
        at = hook or _need_hook("module", obj, recorded)
        d_in = _width(obj, c, ("d_in", "activation_dim"))
        w_enc, _ = object_weights(obj, d_in)
        if d_in is None and w_enc is not None:
            d_in = int(w_enc.shape[0])
        if d_in is None:
            if hook_width is None:
                raise ConfigError(f"{type(obj).__name__}: its input width is unknown (no d_in, activation_dim or "
                                  "W_enc) and no model was given to measure the hook's")
            d_in = hook_width(at)
        d_sae = _width(obj, c, ("d_sae", "dict_size", "num_latents")) or (
            int(w_enc.shape[1]) if w_enc is not None else _probe_width(obj, d_in))
        # A plain module is fed what the model gives unless told otherwise.
        meta = SAEMetadata(hook_name=at, extra={"activation_convention": convention or model_convention,
                                                "source_format": "module_object"})
        cfg = SAEConfig(architecture=type(obj).__name__, d_in=d_in, d_sae=d_sae, metadata=meta)
        fp_config = _scalar_attrs(obj)

    implied = cfg.metadata.extra["activation_convention"]
    if implied is None and convention is None:  # nothing decides: refuse (never guess)
        raise ConfigError(f"{label}: its {kind} config does not say whether it was trained on TransformerLens-"
                          f"processed (tl_centered) or raw (hf) activations; pass {OPTION}")
    if implied is None or (convention is not None and convention != implied
                           and cfg.metadata.extra.get("activation_convention_source") in DEFAULT_SOURCES):
        cfg.metadata.extra["activation_convention"], cfg.metadata.extra["activation_convention_source"] = \
            convention, SOURCE_OPTION
    elif convention is not None and convention != implied:
        raise ConfigError(f"convention={convention!r}, but {label}'s {kind} config implies {implied!r}; set it in "
                          "the object's config instead (SAELens: cfg.metadata.activation_convention)")
    given_at = hook or cfg.metadata.hook_name
    at = _need_hook(kind, obj, None) if given_at is None else given_at
    if cfg.metadata.hook_name is None:
        cfg.metadata.hook_name = at
    w_enc, w_dec = object_weights(obj, cfg.d_in)
    for wname, w, shape in (("W_enc", w_enc, (cfg.d_in, cfg.d_sae)), ("W_dec", w_dec, (cfg.d_sae, cfg.d_in))):
        if w is not None and tuple(w.shape) != shape:
            raise SAEFormatError(f"{label}: {wname} has shape {tuple(w.shape)}, expected {shape} for d_in={cfg.d_in}, "
                                 f"d_sae={cfg.d_sae}")
    sae = ObjectSAE(obj, cfg, feed, decode if callable(decode) else None)
    fingerprint = module_fingerprint(obj, {"kind": kind, **fp_config})
    return AdaptedSAE(sae, label, at, source, fingerprint)
