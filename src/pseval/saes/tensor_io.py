"""Read stored SAE tensors straight into the dtype and device they are used in, without intermediate copies.

safetensors files and npz members are read chunk by chunk into tensors allocated once in the target dtype (on a
GPU the chunks go host -> device, so no full host copy is made); torch checkpoints are memory-mapped. Peak memory
of a load is then about the weights' size in the target dtype, plus one chunk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import math
import mmap
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from pseval.errors import ConfigError, MissingResourceError, SAEFormatError
from pseval.saes.formats.checks import check_claimed_size

# The dtypes an SAE may be loaded in (`--dtype`): float32 is exact; the half types halve memory and round.
LOAD_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                                       "float16": torch.float16}
DEFAULT_DTYPE = torch.float32
CHUNK_BYTES = 64 << 20  # bytes read per step when the stored dtype or the device differs from the target's

_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool}
_MAX_HEADER_BYTES = 100 << 20
_MADV_PAGEOUT = 21  # Linux >= 5.4: reclaim the range now (Python's mmap module lacks the constant before 3.12)
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """The torch dtype for a `--dtype` value (None: float32); an unknown name lists the allowed ones."""
    if dtype is None:
        return DEFAULT_DTYPE
    if isinstance(dtype, torch.dtype):
        if dtype in LOAD_DTYPES.values():
            return dtype
        name = str(dtype).removeprefix("torch.")
    else:
        name = str(dtype).removeprefix("torch.")
        if name in LOAD_DTYPES:
            return LOAD_DTYPES[name]
    raise ConfigError(f"SAE dtype {name!r} is not supported; expected one of {', '.join(LOAD_DTYPES)}")


def target_dtype(stored: torch.dtype, dtype: torch.dtype | None) -> torch.dtype:
    """Floating tensors take the requested dtype; integer and boolean ones keep theirs."""
    return dtype if dtype is not None and stored.is_floating_point else stored


def _read_exact(f: IO[bytes], view: memoryview, source: str) -> None:
    """Fill `view` from f, or raise SAEFormatError when the stream ends early (a truncated file)."""
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])  # type: ignore[attr-defined]  # typing.IO lacks readinto; binary streams have it
        if not n:
            raise SAEFormatError(f"{source}: cannot read tensor data (truncated or corrupt?): "
                                 f"{len(view) - done} of {len(view)} bytes missing")
        done += n


def fill_from_stream(f: IO[bytes], out: torch.Tensor, stored: torch.dtype, source: str) -> None:
    """Read out.numel() values of dtype `stored` from f into the contiguous tensor `out` (any dtype or device)."""
    flat = out.view(-1)
    total = flat.numel()
    if total == 0 or out.is_meta:  # a meta tensor (an SAE peeked at for its config) holds no values to read
        return
    direct = stored == out.dtype and out.device.type == "cpu" and isinstance(f, (io.BufferedReader, io.FileIO))
    if direct:  # a plain file in the stored dtype: read straight into the tensor's memory
        _read_exact(f, flat.view(torch.uint8).numpy().data, source)
        return
    size = stored.itemsize
    step = max(1, CHUNK_BYTES // size)
    buf = bytearray(min(step, total) * size)
    for start in range(0, total, step):
        n = min(step, total - start)
        _read_exact(f, memoryview(buf)[: n * size], source)
        flat[start:start + n].copy_(torch.frombuffer(buf, dtype=stored, count=n))


def _safetensors_header(f: IO[bytes], path: Path, file_size: int) -> tuple[dict[str, Any], int]:
    """The parsed header and the offset where tensor data starts; SAEFormatError when it is inconsistent."""
    def bad(why: str) -> SAEFormatError:
        return SAEFormatError(f"{path}: cannot read safetensors (truncated or corrupt?): {why}")

    head = f.read(8)
    if len(head) < 8:
        raise bad(f"file has {file_size} bytes, too short for a header")
    (n,) = struct.unpack("<Q", head)
    if n > min(_MAX_HEADER_BYTES, file_size - 8):
        raise bad(f"header length {n} exceeds the file size {file_size}")
    try:
        header = json.loads(f.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    data_size = file_size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _SAFETENSORS_DTYPES:
            raise bad(f"tensor {name!r} has dtype {info.get('dtype') if isinstance(info, dict) else info!r}; "
                      f"supported: {', '.join(_SAFETENSORS_DTYPES)}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets)):
            raise bad(f"tensor {name!r} has a malformed shape or data_offsets")
        begin, end = offsets
        expected = math.prod(shape) * _SAFETENSORS_DTYPES[info["dtype"]].itemsize
        if not 0 <= begin <= end <= data_size or end - begin != expected:
            raise bad(f"tensor {name!r} spans bytes {begin}..{end} of {data_size} ({expected} expected)")
    return header, 8 + n


def safetensors_index(path: str | Path) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """Name -> (stored dtype, shape) of the tensors in a safetensors file, read from its header only."""
    p = Path(path)
    if not p.is_file():
        raise MissingResourceError(f"{p}: weights file not found")
    with open(p, "rb") as f:
        header, _ = _safetensors_header(f, p, p.stat().st_size)
    return {k: (_SAFETENSORS_DTYPES[v["dtype"]], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


def read_safetensors(path: str | Path, dtype: str | torch.dtype | None = None, device: str | torch.device = "cpu",
                     names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (all, or `names`), floating ones in `dtype` (None: as stored), on `device`."""
    p = Path(path)
    if not p.is_file():
        raise MissingResourceError(f"{p}: weights file not found")
    want = None if dtype is None else resolve_dtype(dtype)
    out: dict[str, torch.Tensor] = {}
    with open(p, "rb") as f:
        header, data_start = _safetensors_header(f, p, p.stat().st_size)
        keys = [k for k in header if k != "__metadata__"] if names is None else names
        for name in keys:
            if name not in header:
                continue
            info = header[name]
            stored = _SAFETENSORS_DTYPES[info["dtype"]]
            t = torch.empty(info["shape"], dtype=target_dtype(stored, want), device=device)
            f.seek(data_start + info["data_offsets"][0])
            fill_from_stream(f, t, stored, str(p))
            out[name] = t
    return out


def _npy_member(zf: zipfile.ZipFile, member: str, want: torch.dtype | None, device: str | torch.device,
                source: str) -> torch.Tensor:
    """One .npy member of an npz, streamed into a tensor; Fortran-ordered arrays come back as transposed views."""
    with zf.open(member) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"npy format version {version} is not supported")
            shape, fortran, np_dtype = read_header(f)
        except ValueError as exc:
            raise SAEFormatError(f"{source}: array {member!r} has no valid .npy header ({exc})") from exc
        if np_dtype.hasobject or np_dtype.byteorder == ">" or np_dtype.kind not in "fiub":
            raise SAEFormatError(f"{source}: array {member!r} has dtype {np_dtype}; expected little-endian numbers "
                                 "(object arrays are never unpickled)")
        stored = torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
        stored_shape = tuple(reversed(shape)) if fortran else tuple(shape)
        # The header's shape is a claim: check it against the member's stored size before allocating for it.
        check_claimed_size(math.prod(shape) * np_dtype.itemsize, zf.getinfo(member).file_size - f.tell(), source,
                           member.removesuffix(".npy"))
        t = torch.empty(stored_shape, dtype=target_dtype(stored, want), device=device)
        fill_from_stream(f, t, stored, f"{source} [{member}]")
    return t.permute(*reversed(range(t.ndim))) if fortran else t


def read_npz(path: str | Path, dtype: str | torch.dtype | None = None, device: str | torch.device = "cpu",
             names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Arrays of an npz file (all, or `names`), floating ones in `dtype` (None: as stored), on `device`."""
    p = Path(path)
    if not p.is_file():
        raise MissingResourceError(f"{p}: not found")
    want = None if dtype is None else resolve_dtype(dtype)
    try:
        with zipfile.ZipFile(p) as zf:
            members = {m.removesuffix(".npy"): m for m in zf.namelist() if m.endswith(".npy")}
            keys = list(members) if names is None else [n for n in names if n in members]
            return {k: _npy_member(zf, members[k], want, device, str(p)) for k in keys}
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise SAEFormatError(f"{p}: cannot read npz (truncated or corrupt?): {exc}") from exc


def npz_names(path: str | Path) -> list[str]:
    """Array names of an npz file, from its zip directory only."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [m.removesuffix(".npy") for m in zf.namelist() if m.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SAEFormatError(f"{path}: cannot read npz (truncated or corrupt?): {exc}") from exc


def load_torch_state(path: str | Path) -> dict[str, Any]:
    """A torch checkpoint's state dict, weights-only (never runs code) and memory-mapped where the file allows."""
    p = Path(path)
    if not p.is_file():
        raise MissingResourceError(f"{p}: not found")
    try:
        try:
            sd = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (pre-zip) checkpoints cannot be mapped: read them whole
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # the weights-only unpickler met an object: never relay torch's advice
        raise SAEFormatError(f"{p}: the file holds code (a pickled object, not only tensors) and is refused; pseval "
                             "never runs code from a weights file") from None
    except Exception as exc:  # torch raises several types for truncated or unsafe files
        reason = " ".join(str(exc).split())[:200]
        raise SAEFormatError(f"{p}: cannot load as a weights-only torch checkpoint: {reason}") from exc
    if not isinstance(sd, dict):
        raise SAEFormatError(f"{p}: expected a state dict, got {type(sd).__name__}")
    return sd


def storage_ordered(t: torch.Tensor) -> torch.Tensor | None:
    """t with its dims permuted into memory order (a transposed view becomes contiguous), or None if it has gaps."""
    strides = t.stride()
    order = sorted(range(t.ndim), key=lambda d: (-strides[d], d))
    v = t.permute(*order)
    return v if v.is_contiguous() else None


def _page_out(t: torch.Tensor) -> None:
    """Best effort: let the kernel drop t's pages from this process (clean memory-mapped ones are simply dropped;
    semantics never change). Frees the RSS a memory-mapped checkpoint holds once its values have been converted."""
    if sys.platform != "linux" or t.device.type != "cpu" or _LIBC is None:
        return
    start, page = t.data_ptr(), mmap.PAGESIZE
    end = start + t.numel() * t.element_size()
    lo, hi = -(-start // page) * page, end // page * page
    if hi > lo:
        _LIBC.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_PAGEOUT)


def place(t: torch.Tensor, dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.Tensor:
    """A loaded tensor in the target dtype (floating ones only) and device; the same tensor when nothing changes.

    A conversion goes chunk by chunk in memory order (a transposed view stays a transposed view of the result), and
    the source pages converted so far are released: peak memory is the result plus one chunk, not both tensors.
    """
    want = None if dtype is None else resolve_dtype(dtype)
    target = target_dtype(t.dtype, want)
    if t.dtype == target and t.device == torch.device(device):
        return t
    src = storage_ordered(t)
    if src is None or t.numel() * t.element_size() <= CHUNK_BYTES:
        return t.to(device=device, dtype=target)
    out = torch.empty(src.shape, dtype=target, device=device)
    flat_src, flat_out = src.view(-1), out.view(-1)
    step = CHUNK_BYTES // t.element_size()
    for i in range(0, flat_src.numel(), step):
        flat_out[i:i + step].copy_(flat_src[i:i + step])
        _page_out(flat_src[i:i + step])
    strides = t.stride()
    order = sorted(range(t.ndim), key=lambda d: (-strides[d], d))
    return out.permute(*sorted(range(t.ndim), key=lambda d: order[d]))
