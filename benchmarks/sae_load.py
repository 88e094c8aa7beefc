"""B8-load helpers: write wide synthetic SAEs without holding them in memory, and measure one load per process.

    python benchmarks/sae_load.py write FORMAT DIR D_IN D_SAE      (saelens | gemma_scope | dictionary_learning)
    python benchmarks/sae_load.py measure PATH DTYPE               (prints one JSON line)
    python benchmarks/sae_load.py score SAE DATA                   (pseval eval in this process; one JSON line)

The measuring process imports only torch and pseval.saes, so its peak RSS is the loader's plus a fixed base.
"""

from __future__ import annotations

import json
import resource
import struct
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

CHUNK_ROWS = 4096  # rows of random weights generated and written at a time


def _random_rows(rows: int, cols: int, seed: int, positive: bool = False):
    """Yield float32 byte chunks of a [rows, cols] random matrix (scaled like a trained SAE's weights)."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, rows, CHUNK_ROWS):
        n = min(CHUNK_ROWS, rows - start)
        t = torch.randn(n, cols, generator=g) * (cols ** -0.5)
        yield (t.abs() if positive else t).numpy().tobytes()


def _tensors(fmt: str, d: int, m: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Name -> (shape, positive) in the format's own layout."""
    if fmt == "dictionary_learning":  # AutoEncoder: nn.Linear layout, the loader transposes
        return {"bias": ((d,), False), "encoder.weight": ((m, d), False), "encoder.bias": ((m,), False),
                "decoder.weight": ((d, m), False)}
    return {"W_enc": ((d, m), False), "b_enc": ((m,), False), "W_dec": ((m, d), False), "b_dec": ((d,), False),
            "threshold": ((m,), True)}


def _stream(shape: tuple[int, ...], positive: bool, seed: int):
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    return _random_rows(rows, cols, seed, positive)


def write_saelens(out: Path, d: int, m: int, cfg: dict | None = None) -> None:
    """cfg.json + sae_weights.safetensors (JumpReLU unless `cfg` says otherwise), the tensor bytes streamed to
    disk."""
    out.mkdir(parents=True, exist_ok=True)
    specs = _tensors("saelens", d, m)
    if cfg is not None and cfg["architecture"] != "jumprelu":
        specs.pop("threshold")
    header, offset = {}, 0
    for name, (shape, _) in specs.items():
        n = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(out / "sae_weights.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for seed, (shape, positive) in enumerate(specs.values()):
            for chunk in _stream(shape, positive, seed):
                f.write(chunk)
    (out / "cfg.json").write_text(json.dumps(cfg or {
        "architecture": "jumprelu", "d_in": d, "d_sae": m, "dtype": "float32", "apply_b_dec_to_input": False,
        "normalize_activations": "none", "metadata": {"model_name": "gemma-2-2b",
                                                      "hook_name": "blocks.12.hook_resid_post"}}))


def write_minilm_topk(out: Path, d: int, m: int) -> None:
    """A TopK SAE for MiniLM's blocks.3.hook_resid_post (B8's scoring half)."""
    write_saelens(out, d, m, {"architecture": "topk", "d_in": d, "d_sae": m, "k": 32, "dtype": "float32",
                              "apply_b_dec_to_input": True, "normalize_activations": "none",
                              # raw activations (MiniLM from transformers): the convention pseval must not guess
                              "metadata": {"model_name": "minilm", "hook_name": "blocks.3.hook_resid_post",
                                           "model_from_pretrained_kwargs": {"center_writing_weights": False}}})


def write_gemma_scope(out: Path, d: int, m: int) -> None:
    """params.npz, each array's .npy member streamed into the zip."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "params.npz", "w", zipfile.ZIP_STORED) as zf:
        for seed, (name, (shape, positive)) in enumerate(_tensors("gemma_scope", d, m).items()):
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
                for chunk in _stream(shape, positive, seed):
                    f.write(chunk)


def write_dictionary_learning(out: Path, d: int, m: int) -> None:
    """trainer folder with ae.pt (torch.save needs the tensors in memory: this writer process holds them)."""
    out.mkdir(parents=True, exist_ok=True)
    sd = {}
    for seed, (name, (shape, positive)) in enumerate(_tensors("dictionary_learning", d, m).items()):
        buf = b"".join(_stream(shape, positive, seed))
        sd[name] = torch.frombuffer(bytearray(buf), dtype=torch.float32).reshape(shape)
        del buf
    torch.save(sd, out / "ae.pt")
    (out / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder", "activation_dim": d,
                                                             "dict_size": m, "layer": 3, "lm_name": "gpt2",
                                                             "submodule_name": "resid_post_layer_3"}}))


WRITERS = {"saelens": write_saelens, "gemma_scope": write_gemma_scope, "dictionary_learning": write_dictionary_learning,
           "minilm_topk": write_minilm_topk}


def _rss_mib() -> float:
    """Current resident set size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(path: str, dtype: str) -> dict:
    """Load one SAE; peak RSS over the weights' bytes, and the part of it the load added."""
    from pseval.saes.formats.detect import load_any

    before = _rss_mib()
    t = time.perf_counter()
    kwargs = {} if dtype == "default" else {"dtype": dtype}
    sae = load_any(path, **kwargs)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    weight_mib = sum(sae.get_weight(n).nbytes for n in sae.weight_names()) / 2**20
    return {"path": path, "dtype": str(sae.W_enc.dtype).removeprefix("torch."), "seconds": seconds,
            "weights_mib": weight_mib, "rss_before_load_mib": before, "peak_rss_mib": peak,
            "after_load_rss_mib": _rss_mib(), "peak_over_weights": peak / weight_mib,
            "load_added_over_weights": (peak - before) / weight_mib}


def score(sae: str, data: str) -> dict:
    """`pseval eval` of one SAE (or `identity`) in this process: its peak RSS and time."""
    from pseval.cli import main

    t = time.perf_counter()
    main(["eval", "--sae", sae, "--data", data, "--hook", "blocks.3.hook_resid_post"], standalone_mode=False)
    return {"sae": sae, "seconds": time.perf_counter() - t,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    if sys.argv[1] == "write":
        WRITERS[sys.argv[2]](Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "score":
        print(json.dumps(score(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
