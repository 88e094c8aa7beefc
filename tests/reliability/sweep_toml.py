"""The small valid sweep config the reliability tests edit one field at a time."""

SWEEP_TOML = """\
name = "study"
model = "minilm"
device = "cpu"
seed = 0

[activations]
corpus = "wordnet-definitions"
train_tokens = 3000
heldout_tokens = 500
context_size = 64

[train]
lr = 0.001
batch_size = 128

[[grid]]
hooks = ["blocks.0.hook_resid_post"]
architectures = ["topk", "standard"]
expansions = [2]
k = [8]
sparsity_coeff = { standard = [2.0] }
identity = true

[eval]
datasets = ["jsonl:pairs.jsonl"]
readouts = ["template"]
multi_token = "drop"
protocol = "pseval"
balance = "reference"
max_pairs = 60
loss_recovered_tokens = 0
"""
