"""Many SAEs from one `--sae` value: globs over folders, SAELens release regexes, list files; and the weightless
peek that plans and checks them before any is loaded."""

from __future__ import annotations

import pytest
import torch

from pseval.errors import ConfigError, DataFormatError, MissingResourceError
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.loading import load_sae, peek_sae, weight_bytes
from pseval.saes.selection import expand_spec, expand_specs, match_ids, saelens_saes
from pseval.saes.topk import TopKSAE


def _sae(folder, d_sae: int = 32, hook: str = "blocks.1.hook_resid_post") -> str:
    save_sae(TopKSAE(SAEConfig("topk", 16, d_sae, k=4, metadata=SAEMetadata(hook_name=hook))), folder)
    return str(folder)


@pytest.fixture
def tree(tmp_path):
    """saes/{l1/w32, l1/w64, l3/w32} and a folder with no SAE in it."""
    made = [_sae(tmp_path / "saes" / "l1" / "w64", 64), _sae(tmp_path / "saes" / "l3" / "w32"),
            _sae(tmp_path / "saes" / "l1" / "w32")]
    (tmp_path / "saes" / "notes").mkdir()
    (tmp_path / "saes" / "notes" / "readme.txt").write_text("not an SAE")
    return tmp_path, sorted(made)


def test_glob_selects_every_sae_folder_sorted_once(tree):
    root, made = tree
    assert expand_spec(f"{root}/saes/**") == made
    assert expand_spec(f"{root}/saes/**/") == made  # folders only: the same SAEs
    assert expand_spec(f"{root}/saes/l1/*") == made[:2]
    # An explicit path and a glob naming it again: each SAE once, in the order first named.
    assert expand_specs([made[2], f"{root}/saes/**", "identity"]) == [made[2], *made[:2], "identity"]


def test_glob_matching_nothing_names_the_pattern(tree):
    root, _ = tree
    with pytest.raises(ConfigError, match=r"saes/nothing\*.*matches no SAE"):
        expand_spec(f"{root}/saes/nothing*")
    with pytest.raises(ConfigError, match=r"saes/not\*: the pattern matches no SAE"):  # a folder, but no SAE
        expand_spec(f"{root}/saes/not*")


def test_list_file_skips_comments_resolves_relative_paths_and_names_bad_lines(tree):
    root, made = tree
    lst = root / "saes.txt"
    lst.write_text(f"# the release\n\nsaes/l3/w32   # one folder\n{root}/saes/l1/*\nidentity\n")
    assert expand_spec(f"@{lst}") == [made[2], *made[:2], "identity"]
    lst.write_text("saes/l3/w32\n# fine so far\nsaes/missing\n")
    with pytest.raises(DataFormatError, match=r"saes\.txt, line 3: .*saes/missing"):
        expand_spec(f"@{lst}")
    lst.write_text("saes/l9/*\n")
    with pytest.raises(DataFormatError, match=r"saes\.txt, line 1: .*matches no SAE"):
        expand_spec(f"@{lst}")
    lst.write_text(f"@{lst}\n")
    with pytest.raises(DataFormatError, match="line 1: .*cannot name another list file"):
        expand_spec(f"@{lst}")
    lst.write_text("# nothing\n\n")
    with pytest.raises(DataFormatError, match="lists no SAE"):
        expand_spec(f"@{lst}")
    with pytest.raises(MissingResourceError, match="no such list file"):
        expand_spec(f"@{root / 'absent.txt'}")


IDS = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.10.hook_resid_pre", "blocks.11.hook_resid_post"]


def test_release_regex_matches_ids_in_full():
    assert match_ids("s", r"blocks\.1\..*", IDS) == ["blocks.1.hook_resid_pre"]  # not blocks.10 or blocks.11
    assert match_ids("s", r"blocks\.1[01]?\..*_pre", IDS) == ["blocks.1.hook_resid_pre", "blocks.10.hook_resid_pre"]
    with pytest.raises(ConfigError, match=r"saelens:r/blocks\\\.9\.\*: the pattern .* matches no SAE id"):
        match_ids("saelens:r/blocks\\.9.*", r"blocks\.9.*", IDS)
    with pytest.raises(ConfigError, match="not a regular expression"):
        match_ids("s", "blocks.(", IDS)


def test_release_regex_without_sae_lens_says_what_is_missing():
    try:
        import sae_lens  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("sae_lens is installed here: tests/integrations covers the release directory")
    with pytest.raises(MissingResourceError, match="needs the optional `sae_lens` package"):
        saelens_saes("saelens:gpt2-small-res-jb/blocks\\.[0-3]\\..*")
    # A plain id is left to the loader, which knows the release or says what is missing.
    assert saelens_saes("saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre") == \
        ["saelens:gpt2-small-res-jb/blocks.8.hook_resid_pre"]


def test_peek_reads_config_and_shapes_but_no_weights(tmp_path):
    folder = _sae(tmp_path / "sae", 48, "blocks.3.hook_resid_post")
    peek = peek_sae(folder)
    real = load_sae(folder)
    assert all(t.is_meta for t in peek.parameters())
    assert peek.cfg.metadata.hook_name == "blocks.3.hook_resid_post" and (peek.d_in, peek.d_sae) == (16, 48)
    assert peek.cfg.metadata.extra == real.cfg.metadata.extra  # the convention decided as a load decides it
    # W_enc, W_dec 16 x 48, b_enc 48, b_dec 16 and the input-scale scalar, float32
    assert weight_bytes(peek) == weight_bytes(real) == (2 * 16 * 48 + 48 + 16 + 1) * 4
    assert weight_bytes(peek_sae(folder, torch.bfloat16)) == (2 * 16 * 48 + 48 + 16) * 2 + 4  # the scale stays fp32
