# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Comparison: one budget, every technique
#
# Notebooks 01–03 each studied one technique. This one asks the practical question: **you have a trained dense
# network and a device that only fits a tenth of it — which route gives the best small model?**
#
# All routes start from the same dense LeNet-300-100 of notebook 00 (266,610 parameters) and must end with about
# **25,000 parameters** (≈ 9%), trained for the same number of epochs:
#
# | route | what happens |
# |---|---|
# | **A. small net from scratch** | a 784-30-30-10 MLP (24,790 parameters) trained on the labels: the reference |
# | **B. hard pruning** | remove 90% of fc1's neurons and 70% of fc2's from the dense model (→ 784-30-30-10), fine-tune |
# | **C. soft pruning** | mask 90.7% of the dense model's weights by global magnitude (the same number of non-zeros), fine-tune with the masks |
# | **D. distillation** | train the 784-30-30-10 MLP on the dense model's soft targets (the dense model is the teacher) |
# | **E. hard pruning + distillation** | route B, but fine-tuned on the dense model's soft targets |
#
# You will see which routes win on accuracy, which on speed, and which on bytes — and why the answer depends on the
# hardware. Every route is run with three seeds, because the differences are a few dozen test errors.
#
# **Prerequisites:** notebooks 00–03 (this one reuses their tested functions).
# **Time:** about 20 minutes of reading; it computes for about 1.5 minutes on a 2-core laptop CPU.

# %%
# On Colab, or anywhere the course package is missing: install it from the course repository, then fetch MNIST and
# Fashion-MNIST once (torchvision's download; offline, a message says where to put the files instead).
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_utils") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "course-utils @ git+https://github.com/nn-compression-course/nn-compression-course"], check=True)
    importlib.invalidate_caches()
    importlib.import_module("course_utils.data").prepare()

# %% tags=["parameters"]
# Parameters: an instructor can change these.
DATASET = "mnist"          # or "fashion-mnist"
EPOCHS = 5                 # training epochs of every route (fine-tuning or training from scratch)
SEEDS = (0, 1, 2)          # every route is repeated with these seeds
WIDTH = 30                 # hidden width of the small network: 784-WIDTH-WIDTH-10
LEARNING_RATES = (1e-3, 3e-3, 1e-2)   # candidates for every route, chosen on the validation split with seed 0
TEMPERATURE, ALPHA = 4.0, 0.9    # distillation settings (notebook 03 explores them)

# %%
import copy

import matplotlib.pyplot as plt
import torch

import course_utils as cu

cu.train.set_seed(0)
data = cu.data.load_dataset(DATASET)
print(f"CPU threads used by PyTorch: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The starting point and the budget
#
# The dense baseline comes from the cache that notebook 00 filled (or is trained now if this notebook runs alone).
# The budget is the parameter count of the small network that routes A, B, D and E end with.

# %%
dense = cu.baselines.lenet300_100(data)
dense_row = cu.metrics.summary(dense, data, name="dense LeNet-300-100")

# %% tags=["nbval-check-output"]
small = cu.models.mlp(hidden=(WIDTH, WIDTH))
budget = cu.metrics.count_parameters(small)
dense_weights = sum(layer.weight.numel() for layer in cu.models.prunable_layers(dense).values())
small_weights = sum(layer.weight.numel() for layer in cu.models.prunable_layers(small).values())
soft_amount = 1 - small_weights / dense_weights
print(f"dense: {cu.metrics.count_parameters(dense):,} parameters; budget: {budget:,} parameters "
      f"({budget / cu.metrics.count_parameters(dense):.1%} of dense)")
print(f"route C keeps the same number of weights, {small_weights:,}: it masks {soft_amount:.2%} of the dense weights")


# %% [markdown]
# ### Exercise: how wide can the small network be?
#
# For a two-hidden-layer MLP 784-h-h-10, write a function that returns the largest width `h` whose parameter count
# (weights and biases) fits a budget. With it you could size the small network for any device.

# %% tags=["exercise"]
def hidden_for_budget(budget):
    ...  # your code here


# %%
cu.checks.comparison.hidden_for_budget(hidden_for_budget)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def hidden_for_budget(budget):
#     h = 0
#     while 784 * (h + 1) + (h + 1) + (h + 1) ** 2 + (h + 1) + 10 * (h + 1) + 10 <= budget:
#         h += 1
#     return h
# ```
# </details>
#
# ## 2. The five routes
#
# Each route is one function of a seed and a learning rate that returns the trained small model. They only call the
# course's tested functions: `cu.hard_pruning.prune_neurons`, `cu.masks.magnitude_prune`, `cu.distill.distill`
# and the one training loop, `cu.train.fit`, with the same epochs, batch size and schedule.

# %%
TRAINING = dict(batch_size=128, schedule="cosine")
teacher = copy.deepcopy(dense)   # distillation freezes its teacher; routes B and C still start from `dense`

def from_scratch(seed, lr):
    cu.train.set_seed(seed)
    model = cu.models.mlp(hidden=(WIDTH, WIDTH))
    cu.train.fit(model, data, EPOCHS, lr=lr, seed=seed, **TRAINING)
    return model

def hard_pruned(seed, lr, distil=False):
    model = cu.hard_pruning.prune_neurons(dense, {"fc1": 1 - WIDTH / 300, "fc2": 1 - WIDTH / 100}, criterion="l1")
    if distil:   # route E: the same fine-tuning, on the dense model's soft targets
        cu.distill.distill(model, teacher, data, EPOCHS, temperature=TEMPERATURE, alpha=ALPHA, lr=lr, seed=seed, **TRAINING)
    else:
        cu.train.fit(model, data, EPOCHS, lr=lr, seed=seed, **TRAINING)
    return model

def soft_pruned(seed, lr):
    model = cu.masks.magnitude_prune(copy.deepcopy(dense), soft_amount, scope="global")
    cu.train.fit(model, data, EPOCHS, lr=lr, seed=seed, **TRAINING)   # the masks keep the pruned weights at zero
    return model

def distilled(seed, lr):
    cu.train.set_seed(seed)
    model = cu.models.mlp(hidden=(WIDTH, WIDTH))
    cu.distill.distill(model, teacher, data, EPOCHS, temperature=TEMPERATURE, alpha=ALPHA, lr=lr, seed=seed, **TRAINING)
    return model

routes = {
    "A. scratch": from_scratch,
    "B. hard pruning": hard_pruned,
    "C. soft pruning": soft_pruned,
    "D. distillation": distilled,
    "E. hard + distillation": lambda seed, lr: hard_pruned(seed, lr, distil=True),
}

# %% [markdown]
# The learning rate is a *decision*: a small network trained from scratch wants a larger step than a pruned network
# being fine-tuned. So each route tries every candidate with seed 0 and keeps the one with the best **validation**
# accuracy, before any route is compared on the test split.

# %%
chosen_lr, seed0_model = {}, {}
for name, route in routes.items():
    trials = {lr: route(0, lr) for lr in LEARNING_RATES}
    val_acc = {lr: cu.train.evaluate(model, data.val).accuracy for lr, model in trials.items()}
    chosen_lr[name] = max(val_acc, key=val_acc.get)
    seed0_model[name] = trials[chosen_lr[name]]
    print(f"{name:<24} " + "   ".join(f"lr {lr:g}: {acc:.2%}" for lr, acc in val_acc.items())
          + f"   -> lr {chosen_lr[name]:g}")

# %% [markdown]
# Now every route, three times. Only the final models' *test* errors are reported; nothing below feeds back into a
# choice.

# %%
models = {name: [seed0_model[name]] + [route(seed, chosen_lr[name]) for seed in SEEDS[1:]]
          for name, route in routes.items()}
errors = {name: [cu.train.count_errors(m, data.test) for m in runs] for name, runs in models.items()}
dense_errors = dense_row["test_errors"]
cu.metrics.table([{"route": name, "test errors per seed": errs, "mean": sum(errs) / len(errs),
                   "minus dense": sum(errs) / len(errs) - dense_errors} for name, errs in errors.items()])

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
names = list(errors)
for i, name in enumerate(names):
    ax.scatter([i] * len(errors[name]), errors[name], color="tab:blue", alpha=0.6)
    ax.hlines(sum(errors[name]) / len(errors[name]), i - 0.25, i + 0.25, color="tab:blue")
ax.axhline(dense_errors, color="gray", linestyle="--", label=f"dense LeNet-300-100 ({dense_errors})")
ax.set_xticks(range(len(names)), names, rotation=15)
ax.set_ylabel("test errors out of 10,000")
ax.set_title(f"~{budget:,} parameters, {EPOCHS} epochs each: one dot per seed, line = mean")
ax.legend()
plt.tight_layout()
plt.show()


# %% [markdown]
# Four comparisons matter. The cell below computes each difference of mean test errors and says whether it is larger
# than the seed-to-seed spread (the largest range of the two routes): a difference inside that spread is not evidence.

# %%
questions = [("B. hard pruning", "A. scratch"),               # does starting from the trained model help?
             ("C. soft pruning", "B. hard pruning"),          # same non-zeros: scattered weights or whole neurons?
             ("D. distillation", "A. scratch"),               # soft targets instead of labels for a small net
             ("E. hard + distillation", "B. hard pruning")]   # soft targets while fine-tuning a pruned net
cu.metrics.table([cu.metrics.seed_comparison(errors[a], errors[b], (a, b)) for a, b in questions],
                 ["comparison", "mean_a", "mean_b", "difference", "seed_spread", "verdict"])

# %% [markdown]
# Why such differences can arise:
#
# * Routes B, C and E **start from the trained dense model** and inherit its training; routes A and D start from random
#   weights and get only the same few epochs.
# * **Soft pruning** (C) keeps the full network's *shape*: its surviving weights may sit anywhere among the 300 and 100
#   neurons, a much richer choice than 30 whole neurons per layer; section 3 shows what it pays for that in speed.
# * **Distillation** (D, E) replaces one-hot labels by the teacher's soft targets; notebook 03 measured in detail how
#   the benefit depends on the student's size and the teacher.
#
# ## 3. What each model costs
#
# Accuracy is one column. The others decide whether the small model fits the device and the latency budget: one
# `cu.metrics.summary` row per route (seed 0), beside the dense model.

# %%
rows = [dense_row] + [cu.metrics.summary(runs[0], data, name=name) for name, runs in models.items()]
cu.metrics.table(rows, columns=["model", "test_acc", "test_errors", "params", "nonzero_params", "macs",
                                "size_bytes", "size_compressed_bytes", "latency_ms_b1", "latency_ms_b256", "threads"])

# %% [markdown]
# The soft-pruned model (C) has the budget's number of **non-zero** weights but the dense model's **shape**: its MACs,
# raw file size and latency are the dense model's. Its zeros pay off only in a compressed or sparse file, as
# notebook 02 showed. Here is that saving for route C:

# %%
soft = models["C. soft pruning"][0]
stored = cu.sparse.storage(soft)
small_size = cu.metrics.state_dict_size(models["B. hard pruning"][0])
print(f"route C saved dense: {stored['dense_bytes'] / 1024:,.0f} KiB raw, {stored['dense_compressed_bytes'] / 1024:,.0f} KiB compressed")
print(f"route C saved as CSR (values + column indices): {stored['csr_bytes'] / 1024:,.0f} KiB raw, "
      f"{stored['csr_compressed_bytes'] / 1024:,.0f} KiB compressed")
print(f"route B (a genuinely small dense network): {small_size.raw / 1024:,.0f} KiB raw")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for row in rows:
    for ax, key, label in [(axes[0], "size_compressed_bytes", "compressed size (KiB)"),
                           (axes[1], "latency_ms_b256", "latency at batch 256 (ms)")]:
        x = row[key] / 1024 if key.endswith("bytes") else row[key]
        ax.scatter(x, row["test_errors"], s=40)
        ax.annotate(row["model"], (x, row["test_errors"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("test errors (seed 0)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
axes[0].set_title("errors against bytes")
axes[1].set_title(f"errors against time ({rows[0]['threads']} threads)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Models down and to the left are better on both axes. On a CPU with dense kernels, only the routes that produce a
# genuinely small network (A, B, D, E) move left on the time axis; route C moves left on the bytes axis only.
#
# ## 4. Which technique when
#
# The measurements of this notebook and notebooks 01–03 add up to a short guide:
#
# | you need | choose | why (where it was measured) |
# |---|---|---|
# | lower latency on ordinary hardware (CPU, GPU without sparse kernels) | **hard pruning** (structured), fine-tuned, ideally with distillation | fewer neurons and channels mean fewer MACs in dense kernels (01, and section 3 here) |
# | the smallest download or flash footprint | **soft pruning** + sparse or compressed storage | many more weights can be zeroed than neurons removed for the same accuracy (02) |
# | the best accuracy from a fixed small architecture, with a strong teacher and time to train | **distillation** into that architecture (after hard pruning, if the architecture comes from the big model) | in 03 it removed about a quarter of the 2×800 student's test errors; it helped less as the student shrank and needed longer training for the 2×30 one; here, with a weaker teacher and 5 epochs, route D did worse than labels alone and route E gained nothing beyond the seed spread (section 2). It costs nothing at inference |
# | a different architecture than the big model (e.g. an MLP from a CNN) | **distillation** | pruning can only shrink the network you have; distillation trains any student (03) |
# | no training budget at all | neither works well | every route above needed retraining; one-shot pruning without retraining falls off a cliff (01, 02) |
#
# The techniques are not rivals: deployment pipelines chain them — prune, fine-tune with a teacher, then quantize
# (Han et al. 2016, *Deep Compression*) — and each step removes a different kind of redundancy.
#
# ## Summary
#
# * For the same ~25,000-parameter budget, the five routes differ by the amounts printed in section 2; only differences
#   larger than the seed-to-seed spread count.
# * Bytes, MACs and milliseconds tell different stories: soft pruning saves bytes, hard pruning and small dense students
#   save time.
# * Distillation costs a teacher's forward passes during training (here computed once) and nothing at inference, and it
#   can be added to any route that trains a small network; whether it pays depends on the teacher, the student's size
#   and the training time: for this 30-unit student, 5 epochs and the dense LeNet-300-100 as teacher it did not pay
#   (section 2), for the larger students of notebook 03 it did.
