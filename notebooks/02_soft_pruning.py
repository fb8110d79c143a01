# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Soft pruning: masks, schedules, and what zeros buy
#
# Notebook 01 pruned *hard*: it removed whole neurons, and the network got smaller. Here we prune *soft*: we set
# weights to zero and leave them in the model. In the article's words, hard pruning deletes the pruned neurons and
# connections for good, while soft pruning sets them to zero but keeps them in the model.
#
# You will learn
#
# 1. how a **mask** works, by hand and with PyTorch's `torch.nn.utils.prune` (`weight_orig`, `weight_mask`, the
#    forward pre-hook), and why a masked weight stays at zero while the network trains;
# 2. **layer-wise against global** magnitude pruning, from 0 to 99% zeros, before and after a short fine-tuning;
# 3. to **reproduce Han et al. (2015)** on LeNet-300-100: at most 8% of the weights left for at most 0.1 point
#    more test error, their Tables 1 and 2 beside our numbers;
# 4. how the **schedule** matters: one-shot pruning, Han's prune-and-retrain iterations and Zhu & Gupta's cubic
#    schedule, with the same final sparsity and the same training;
# 5. the article's **evaluate-and-restore loop** with masks and its L2 penalty, through the same code as notebook 01;
# 6. **soft filter pruning** (He et al. 2018) on LeNet-5: zeroed filters that keep learning and can come back;
# 7. **what zeros buy, and what they don't**: file size, sparse (CSR) kernels and latency.
#
# **Prerequisites:** notebook 00 (the dense LeNet-300-100, `cu.train.fit`); notebook 01 for the comparison at the end.
# **Time:** about 3 minutes to run on a laptop CPU (2 cores), 45 minutes to read and do the exercises.

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
DATASET = "mnist"        # or "fashion-mnist"
SEED = 0
SWEEP = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)  # sparsities of the one-shot sweep
SWEEP_TRAIN_SIZE = 5000  # training images for the one fine-tuning epoch of the sweep
HAN_KEEP = 0.08          # fraction of the weights left (Han et al. kept 8.2%)
HAN_STEPS = 3            # prune-then-retrain iterations
HAN_EPOCHS = 4           # retraining epochs after each pruning
HAN_LR = 1e-3            # Adam, decayed to zero within each retraining (cosine)
COMPARE_SEEDS = (0, 1)        # one-shot vs Han vs cubic, each run once per seed...
COMPARE_TRAIN_SIZE = 15000    # ...on this many training images, 1 epoch per step
RESTORE_TRAIN_SIZE = 5000     # the article's loop fine-tunes each trial on this many images
SFP_AMOUNT = 0.5              # fraction of the filters of each conv layer zeroed by soft filter pruning
SFP_EPOCHS = 3                # epochs of SGD with momentum (as He et al.), pruning after each...
SFP_TRAIN_SIZE = 10000        # ...on this many training images
SFP_LR = 0.05
SFP_SEEDS = (0, 1)

# %%
import copy
from collections import OrderedDict

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn.utils import prune

import course_utils as cu

cu.train.set_seed(SEED)
data = cu.data.load_dataset(DATASET)
print(f"{DATASET}: {len(data.train):,} training, {len(data.val):,} validation, {len(data.test):,} test images")
print(f"PyTorch threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. A mask, by hand
#
# The article's recipe for soft pruning: train a network, set the pruned weights to zero, check the accuracy,
# restore the weights if it fell, repeat. Its code for this shrinks the weights of `fc1` a little and never keeps them
# at zero; the very next optimiser step gives every weight a gradient again. What keeps a weight at zero is a
# **mask**: a tensor of 0s and 1s the same shape as the weight, multiplied in at every forward pass.
#
# The most common rule for choosing the zeros is **magnitude**: the weights closest to zero matter least. (LeCun,
# Denker & Solla's *Optimal Brain Damage*, 1990, estimated each weight's importance from second derivatives instead;
# magnitude is cheaper and works well.) To zero a
# fraction `amount` of a matrix, find the k-th smallest |w| with k = round(amount × n) and keep only the weights
# above it. Here is a 4×6 matrix with half its weights pruned.

# %% tags=["nbval-check-output"]
torch.manual_seed(0)
torch.set_printoptions(precision=3)
W = torch.randn(4, 6)
amount = 0.5
k = round(amount * W.numel())                      # 12 of the 24 weights go
threshold = W.abs().flatten().kthvalue(k).values   # the k-th smallest magnitude
mask = (W.abs() > threshold).float()               # 1 = keep, 0 = pruned
print(f"threshold: {threshold.item():.4f}")
print("mask:", mask, sep="\n")
print("W * mask:", W * mask, sep="\n")

# %% [markdown]
# PyTorch's pruning API does the same thing and wires it into the layer. `prune.l1_unstructured` (L1 = magnitude)
# moves the weight to a new parameter `weight_orig`, stores the mask as a buffer `weight_mask` (saved with the model,
# never trained), and registers a **forward pre-hook** that recomputes `weight = weight_orig * weight_mask` just
# before every forward pass.

# %% tags=["nbval-check-output"]
layer = nn.Linear(6, 4)
with torch.no_grad():
    layer.weight.copy_(W)
prune.l1_unstructured(layer, "weight", amount=amount)
print("parameters:", [name for name, _ in layer.named_parameters()])
print("buffers:   ", [name for name, _ in layer.named_buffers()])
print("pre-hooks: ", [type(hook).__name__ for hook in layer._forward_pre_hooks.values()])
print("same mask as by hand:", torch.equal(layer.weight_mask, mask))
x = torch.randn(3, 6)
print("same output as x @ (W * mask).T + b:", torch.allclose(layer(x), x @ (W * mask).T + layer.bias))

# %% [markdown]
# Why do the zeros survive training? The layer computes with `weight_orig * weight_mask`, so by the chain rule the
# gradient reaching `weight_orig` is the weight's gradient *times the mask*: exactly zero wherever the mask is zero.

# %% tags=["nbval-check-output"]
layer(x).pow(2).sum().backward()
grad = layer.weight_orig.grad
print("gradient on the masked entries of weight_orig is zero:", bool((grad[layer.weight_mask == 0] == 0).all()))
print("gradient on the kept entries is not:", bool((grad[layer.weight_mask == 1] != 0).all()))

# %% [markdown]
# Two things can still move the *hidden* value `weight_orig` under a zero of the mask: momentum an optimiser built up
# before the mask, and weight decay. The effective weight stays zero anyway, but a hidden value would come back if the
# mask were ever lifted. So `cu.masks` sets masked entries of `weight_orig` to zero when it installs a mask, and
# passes `cu.masks.enforce_masks` to `cu.train.fit` as `after_step` to keep them there. Its main calls:
#
# * `cu.masks.magnitude_prune(model, amount, scope="layer" | "global", layers=None)`: masks on top of `torch.nn.utils.prune`;
# * `cu.masks.current_masks(model)`, `cu.masks.apply_masks(model, masks)`;
# * `cu.masks.remove_masks(model)`: bake the zeros into a plain `weight` and drop the hooks, before exporting the model;
# * `cu.metrics.sparsity(model)` and `cu.metrics.layer_sparsity(model)`: the fraction of zero weights.

# %% tags=["nbval-check-output"]
toy = nn.Sequential(OrderedDict(fc=nn.Linear(6, 4)))
with torch.no_grad():
    toy.fc.weight.copy_(W)
cu.masks.magnitude_prune(toy, 0.5)
print("same mask as by hand:", torch.equal(cu.masks.current_masks(toy)["fc"], mask))
print("sparsity per layer:", cu.metrics.layer_sparsity(toy))
before = toy(x)
cu.masks.remove_masks(toy)
print("after remove_masks, parameters:", [name for name, _ in toy.named_parameters()], "hooks:", len(toy.fc._forward_pre_hooks))
print("same outputs:", torch.equal(toy(x), before))

# %% [markdown]
# ## 2. Layer-wise or global? One-shot pruning from 0 to 99%
#
# Our dense model is the course's LeNet-300-100 (784-300-100-10, trained in notebook 00 and cached; it is trained here
# if the cache is empty).
#
# Magnitude pruning needs one decision: compare weights **within each layer** (every layer loses the same fraction)
# or **across all layers** (one global threshold, so a layer full of small weights loses more). `fc1` holds most of
# LeNet-300-100's weights and the 10-output `fc3` very few (printed below): one rule treats them alike, the other
# does not.
#
# `cu.soft_pruning.sweep` prunes a copy of the model to each sparsity and measures the validation accuracy right away (one-shot),
# then again after one short fine-tuning epoch with the mask in place (on a subset of the training images, to keep
# this cheap).

# %%
dense = cu.baselines.lenet300_100(data)
dense_val = cu.train.evaluate(dense, data.val).accuracy
print(f"dense LeNet-300-100: validation accuracy {dense_val:.2%}, {cu.metrics.count_parameters(dense):,} parameters")
layer_sizes = {name: m.weight.numel() for name, m in cu.models.prunable_layers(dense).items()}
print("share of the weights per layer:",
      ", ".join(f"{name} {n / sum(layer_sizes.values()):.1%}" for name, n in layer_sizes.items()))

# %%
sweeps = {scope: cu.soft_pruning.sweep(dense, data, SWEEP, scope, finetune_epochs=1, train_size=SWEEP_TRAIN_SIZE, seed=SEED)
          for scope in ("layer", "global")}
x_pct = [100 * s for s in SWEEP]
cu.plots.curves(x_pct, {
    "layer-wise, one-shot": [r["val_acc"] for r in sweeps["layer"]],
    "global, one-shot": [r["val_acc"] for r in sweeps["global"]],
    f"layer-wise + 1 epoch on {SWEEP_TRAIN_SIZE:,} images": [r["val_acc_finetuned"] for r in sweeps["layer"]],
    f"global + 1 epoch on {SWEEP_TRAIN_SIZE:,} images": [r["val_acc_finetuned"] for r in sweeps["global"]],
}, xlabel="weights set to zero (%)", ylabel="validation accuracy", percent=True,
   title="Magnitude pruning of LeNet-300-100")
plt.show()
for i, s in enumerate(SWEEP):
    if s >= 0.9:
        print(f"{s:.0%} zeros: one-shot layer-wise {sweeps['layer'][i]['val_acc']:.2%}, "
              f"global {sweeps['global'][i]['val_acc']:.2%}; after fine-tuning layer-wise "
              f"{sweeps['layer'][i]['val_acc_finetuned']:.2%}, global {sweeps['global'][i]['val_acc_finetuned']:.2%}")

# %% [markdown]
# ### Exercise 1: where is the cliff?
#
# Read the curve "global, one-shot" (no fine-tuning): up to which sparsity of the sweep does every point stay within
# one percentage point of the dense model's validation accuracy? Set `my_sparsity` to that sparsity, as a fraction
# (0.5 for 50%).

# %% tags=["exercise"]
my_sparsity = ...  # one of SWEEP

# %%
cu.checks.soft_pruning.cliff(my_sparsity, SWEEP, [r["val_acc"] for r in sweeps["global"]], dense_val)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# for s, r in zip(SWEEP, sweeps["global"]):   # walk the curve from the left...
#     if dense_val - r["val_acc"] > 0.01:       # ...until a point falls more than one point below dense
#         break
#     my_sparsity = s
# ```
#
# Read off the plot, it is the last point of the flat part of the curve, just before it falls.
# </details>
#
# Read the plot from the left: up to a surprising fraction of zeros nothing happens at all. Many weights of a trained
# network are close to zero and contribute almost nothing. Then the one-shot curves fall off a cliff, and a single
# short epoch of fine-tuning with the mask in place pulls much of the accuracy back: the remaining weights adapt to the
# missing ones. Compare the two scopes near the cliff; the printed lines give the numbers.
#
# Where do the two scopes put the zeros? Move the slider (the validation accuracy is one-shot, without fine-tuning).

# %%
cu.widgets.controls(lambda sparsity, scope: cu.widgets.soft_pruning_figure(dense, data, sparsity, scope),
                    sparsity=(0.0, 0.99, 0.01, 0.9), scope=["layer", "global"])

# %% [markdown]
# The same picture without the widget (for readers of the static notebook), at 95% zeros with one global threshold:

# %%
cu.widgets.soft_pruning_figure(dense, data, 0.95, "global")


# %% [markdown]
# ### Exercise 2: a global threshold
#
# Write `global_threshold(weights, amount)`: given a list of weight tensors (one per layer) and a fraction `amount`,
# return the single magnitude t such that zeroing every weight with |w| ≤ t, over all layers together, zeroes the
# fraction `amount` of all the weights. (Hint: the same k-th smallest magnitude as in section 1, over everything at
# once.)

# %% tags=["exercise"]
def global_threshold(weights, amount):
    """The k-th smallest |w| over all tensors in `weights` together, k = round(amount * total)."""
    ...  # your code here
    return None


# %%
cu.checks.soft_pruning.global_threshold(global_threshold)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def global_threshold(weights, amount):
#     magnitudes = torch.cat([w.abs().flatten() for w in weights])
#     k = round(amount * magnitudes.numel())
#     return magnitudes.kthvalue(k).values.item()
# ```
#
# `cu.masks.magnitude_masks(model, amount, scope="global")` does this with `torch.topk`, like
# `torch.nn.utils.prune.global_unstructured`.
# </details>

# %% [markdown]
# ## 3. Reproducing Han et al. (2015) on LeNet-300-100
#
# Han, Pool, Tran & Dally, *Learning both Weights and Connections for Efficient Neural Networks* (NeurIPS 2015),
# made magnitude pruning famous with three steps: train the network, prune the small-weight connections, **retrain**
# the remaining ones, and repeat prune-and-retrain several times. Retraining matters: the surviving weights take over
# the work of the pruned ones. The paper reports (its figures, not ours) the **top-1 error**: the share of test images
# whose highest-scoring class is not the right one (100% minus the accuracy this course prints):
#
# | LeNet-300-100 on MNIST (Han et al. 2015) | Table 1 | Table 2: weights left per layer |
# |---|---|---|
# | top-1 error, dense | 1.64% | fc1 (235K weights): 8% |
# | top-1 error, pruned | 1.59% | fc2 (30K weights): 9% |
# | parameters | 267K → 22K (12× fewer) | fc3 (1K weights): 26% |
#
# Han et al. set one threshold per layer (a quality factor times the standard deviation of the layer's weights). We
# use `cu.soft_pruning.iterative_prune(schedule="han")` (through `cu.baselines.lenet300_100_pruned`, which caches the
# result for notebook 04) with **one global magnitude threshold**, `HAN_STEPS` prune-and-retrain
# iterations that each keep the same fraction of the surviving weights (so the first removes the most), and
# `HAN_EPOCHS` epochs of Adam retraining after each. The test split is read once, below; the result is cached, so a
# re-run loads it. Han et al. kept 8% of the weights at no loss: can one global threshold do the same here?

# %%
han_recipe = dict(keep=HAN_KEEP, steps=HAN_STEPS, epochs=HAN_EPOCHS, lr=HAN_LR, scope="global", seed=SEED)
han = cu.baselines.lenet300_100_pruned(data, **han_recipe)   # trained once, cached with its log
han_log = cu.baselines.training_history("lenet300-100-pruned", data, **han_recipe)
print(cu.metrics.table(han_log, ["event", "step", "epoch", "sparsity", "val_acc"]))

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
epochs = [r["epoch"] + (0.0 if r["event"] != "prune" else 0.02) for r in han_log]
ax.plot(epochs, [100 * r["val_acc"] for r in han_log], marker="o")
for r in han_log:
    if r["event"] == "prune":
        ax.annotate(f"prune to {r['sparsity']:.0%}", (r["epoch"], 100 * r["val_acc"]), textcoords="offset points",
                    xytext=(6, -4), fontsize=8)
ax.axhline(100 * dense_val, color="gray", ls="--", label="dense")
ax.set_xlabel("epochs of retraining")
ax.set_ylabel("validation accuracy (%)")
ax.set_title("Prune, retrain, repeat: the deeper cuts cost accuracy, retraining wins it back")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %%
dense_row = cu.metrics.summary(dense, data, "dense LeNet-300-100", batch_sizes=())   # timed in section 8
han_row = cu.metrics.summary(han, data, f"pruned, {HAN_STEPS}x(prune + {HAN_EPOCHS} epochs)", batch_sizes=())
dense_err, han_err = 1 - dense_row["test_acc"], 1 - han_row["test_acc"]
left = 1 - cu.metrics.sparsity(han)
errors = {"dense": cu.train.count_errors(dense, data.test), "pruned": cu.train.count_errors(han, data.test)}
print(f"weights left: {left:.2%}; test error {han_err:.2%} against {dense_err:.2%} for the dense model "
      f"({errors['pruned']} against {errors['dense']} of {len(data.test):,} test images)")

# %%
ours = {n: 1 - s for n, s in cu.metrics.layer_sparsity(han).items()}
sizes = {n: m.weight.numel() for n, m in cu.models.prunable_layers(dense).items()}
paper = {"fc1": "8%", "fc2": "9%", "fc3": "26%"}
rows = [
    {"": "test error, dense", "Han et al. 2015 (paper)": "1.64%", "this notebook": f"{dense_err:.2%}"},
    {"": "test error, pruned", "Han et al. 2015 (paper)": "1.59%", "this notebook": f"{han_err:.2%}"},
    {"": "parameters, dense", "Han et al. 2015 (paper)": "267K", "this notebook": f"{dense_row['params']:,}"},
    {"": "nonzero parameters, pruned", "Han et al. 2015 (paper)": "22K", "this notebook": f"{han_row['nonzero_params']:,}"},
    {"": "compression (fewer parameters)", "Han et al. 2015 (paper)": "12x",
     "this notebook": f"{dense_row['params'] / han_row['nonzero_params']:.1f}x"},
] + [{"": f"{n} weights left ({sizes[n]:,} weights)", "Han et al. 2015 (paper)": paper[n],
      "this notebook": f"{ours[n]:.1%}"} for n in ours]
cu.metrics.table(rows)

# %% [markdown]
# It can, here: with 8% of the weights left, the retrained model makes 156 test errors against the dense model's 167
# (Han et al.: 1.64% → 1.59%). The pruned model was trained for twelve more epochs than the dense one, and one seed
# cannot say how much of the gain that is; what matters is that removing 92% of the weights cost nothing.
#
# One global threshold found its own per-layer rates: compare them with Han's. The first layer, which sees raw pixels
# (many of them always background), can lose the most; the small last layer, where every weight links a hidden
# feature to a class, keeps the most.
#
# ## 4. What pruning and retraining do to the weights
#
# Magnitude pruning cuts a hole around zero in the weight distribution. Retraining then moves the surviving weights:
# compare the histograms of the dense model, the same masks before retraining, and the retrained model (zeros left
# out).

# %%
han_masks = cu.masks.current_masks(han)
just_pruned = cu.masks.apply_masks(copy.deepcopy(dense), han_masks)  # the final masks on the dense weights, no retraining
flat = lambda m: torch.cat([l.weight.detach().flatten() for l in cu.models.prunable_layers(m).values()])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.4), width_ratios=(2, 1))
cu.plots.weight_histogram({"dense": flat(dense), "masked, before retraining": flat(just_pruned),
                           "masked, after retraining": flat(han)}, bins=150, ax=ax1, drop_zeros=True, log=True,
                          title="all weights of LeNet-300-100 (zeros left out, log scale)")
cu.plots.bars(ours, ylabel="weights left (%)", percent=True, ax=ax2, title="weights left per layer")
fig.tight_layout()
plt.show()
print(f"validation accuracy with the final masks and no retraining: "
      f"{cu.train.evaluate(just_pruned, data.val).accuracy:.2%}; after retraining: "
      f"{cu.train.evaluate(han, data.val).accuracy:.2%}")


# %% [markdown]
# ## 5. One-shot, iterative or gradual: same sparsity, same training
#
# Han et al. prune in a few big steps. Zhu & Gupta (*To prune, or not to prune*, 2017) prune **gradually**: during a
# single training run the target sparsity rises every few hundred mini-batches along a cubic curve
#
# $$s_t = s_f + (s_i - s_f)\left(1 - \frac{t}{n}\right)^3, \qquad t = 0, 1, \dots, n,$$
#
# from the initial sparsity $s_i$ to the final $s_f$ in $n$ pruning steps: fast while many weights are redundant, slowly
# near the end, leaving the last part of training for recovery.
#
# ### Exercise 3: the cubic schedule
#
# Write `cubic(step, total_steps, final, initial=0.0)` returning $s_t$ (with $t$ = `step`, $n$ = `total_steps`).

# %% tags=["exercise"]
def cubic(step, total_steps, final, initial=0.0):
    """Zhu & Gupta's sparsity after `step` of `total_steps` pruning steps."""
    ...  # your code here
    return None


# %%
cu.checks.soft_pruning.cubic_schedule(cubic)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def cubic(step, total_steps, final, initial=0.0):
#     t = min(max(step, 0), total_steps)
#     return final + (initial - final) * (1 - t / total_steps) ** 3
# ```
#
# It is `cu.soft_pruning.cubic_sparsity`; `cu.soft_pruning.iterative_prune(schedule="agp")` calls it every few mini-batches from an
# `after_step` hook of `cu.train.fit`.
# </details>

# %% [markdown]
# Now the three schedules on equal terms: the same final sparsity, the same number of epochs and images, the same
# learning rate. **One-shot** prunes to the target at once and then trains; **Han** prunes in `HAN_STEPS` steps with
# training in between; **cubic** (AGP, automated gradual pruning) updates the masks ten times per epoch over the first
# three quarters of training. Each schedule runs once per seed on a subset of the training images; the differences
# may be small, so look at the spread across seeds.

# %%
compare_data = data._replace(train=data.train.subset(COMPARE_TRAIN_SIZE))
schedules = {"oneshot": "one-shot", "han": "Han (iterative)", "agp": "cubic (Zhu & Gupta)"}
compare_logs, compare_rows = {}, {}
for schedule in schedules:
    for seed in COMPARE_SEEDS:
        model, compare_logs[schedule, seed] = cu.soft_pruning.iterative_prune(
            dense, compare_data, HAN_KEEP, steps=HAN_STEPS, finetune_epochs=1, schedule=schedule, scope="global",
            lr=HAN_LR, lr_schedule="cosine", seed=seed)
        compare_rows[schedule, seed] = cu.metrics.summary(model, data, f"{schedule}, seed {seed}", batch_sizes=())

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.4))
for schedule, label in schedules.items():
    log = compare_logs[schedule, COMPARE_SEEDS[0]]
    ax1.plot([r["epoch"] for r in log], [100 * r["sparsity"] for r in log], marker="o", label=label)
    ax2.plot([r["epoch"] for r in log], [100 * r["val_acc"] for r in log], marker="o", label=label)
ax1.set(xlabel="epoch", ylabel="weights set to zero (%)", title="sparsity during training (seed %d)" % COMPARE_SEEDS[0])
ax2.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy (pruning steps included)")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()


# %%
def epochs_at_final_sparsity(log):
    """Whole epochs that started and ended at the run's final sparsity."""
    final = log[-1]["sparsity"] - 1e-4
    return sum(r["event"] == "train" and r["sparsity"] >= final and prev["sparsity"] >= final
               for prev, r in zip(log, log[1:]))


summary_rows = []
for schedule, label in schedules.items():
    errors = [compare_rows[schedule, s]["test_errors"] for s in COMPARE_SEEDS]
    log = compare_logs[schedule, COMPARE_SEEDS[0]]
    summary_rows.append({"schedule": label, "sparsity": f"{log[-1]['sparsity']:.1%}", "epochs": HAN_STEPS,
                         "whole epochs at final sparsity": epochs_at_final_sparsity(log),
                         "test errors per seed": ", ".join(map(str, errors)),
                         "mean test error": f"{sum(errors) / len(errors) / len(data.test.y):.2%}",
                         "spread (max - min)": max(errors) - min(errors)})
cu.metrics.table(summary_rows)

# %%
means = {label: sum(compare_rows[s, seed]["test_errors"] for seed in COMPARE_SEEDS) / len(COMPARE_SEEDS)
         for s, label in schedules.items()}
best, worst = min(means, key=means.get), max(means, key=means.get)
spread = max(max(compare_rows[s, seed]["test_errors"] for seed in COMPARE_SEEDS)
             - min(compare_rows[s, seed]["test_errors"] for seed in COMPARE_SEEDS) for s in schedules)
print(f"best on average: {best} ({means[best]:.1f} test errors), worst: {worst} ({means[worst]:.1f}); "
      f"the gap ({means[worst] - means[best]:.1f} errors) is {'larger' if means[worst] - means[best] > spread else 'not larger'} "
      f"than the largest spread across seeds ({spread} errors)")

# %% [markdown]
# This result surprises: both Han et al. and Zhu & Gupta found gradual pruning *better* than one cut. The column
# "whole epochs at final sparsity" explains it. With only `HAN_STEPS` epochs in all, one-shot spends every one of
# them repairing a network that already has its final sparsity; Han's schedule reaches the final sparsity only at its
# last step, so it has one epoch to recover from that cut, and the cubic schedule reaches it three quarters of the
# way through (the left plot), leaving less than one epoch, at the small learning rate of the end of the cosine
# decay. The papers trained for tens of epochs, where the time spent at the final sparsity is a small share of the
# whole and the gentler cuts pay off. On a budget this short, the time to recover from the last cut decides.

# %% [markdown]
# ## 6. The article's loop, with masks and the L2 penalty
#
# The article's loop is: zero a group, evaluate, restore the group if the accuracy fell, repeat until the model is
# small enough. Notebook 01 runs it with `cu.pruning.evaluate_and_restore` and an `apply` that *removes* neurons. Here the
# very same function gets an `apply` that *masks*: a candidate is "zero half of the remaining weights of one layer"
# (smallest magnitudes first, the layer with the most weights left first), each trial is fine-tuned for one short
# epoch and kept only if the **validation** accuracy stays within half a point of the dense model's. The
# fine-tuning adds the article's soft-pruning penalty, the sum of squared weights (L2) times λ, which pushes weights
# towards zero before the next cut. `cu.soft_pruning.restore_loop` wraps this.

# %%
restored, restore_log = cu.soft_pruning.restore_loop(dense, data, target=HAN_KEEP, group=0.5, tolerance=0.005,
                                                     train_size=RESTORE_TRAIN_SIZE, penalty="l2", penalty_weight=1e-5,
                                                     lr=1e-4, seed=SEED)
print(cu.metrics.table(restore_log, ["round", "try", "candidate", "size_after", "val_acc", "decision"]))
print("stopped:", restore_log[-1]["stop"])

# %%
restore_row = cu.metrics.summary(restored, data, "article's loop (masks + L2)", batch_sizes=())
kept = sum(r.get("decision") == "kept" for r in restore_log)
trials = sum("decision" in r for r in restore_log)
costs = [
    {"method": "Han-style, 3 x (prune + retrain)", "images trained on": HAN_STEPS * HAN_EPOCHS * len(data.train),
     "weights left": f"{1 - cu.metrics.sparsity(han):.1%}", "test_acc": han_row["test_acc"]},
    {"method": f"one-shot, {HAN_STEPS} epochs on {COMPARE_TRAIN_SIZE:,} images (seed {COMPARE_SEEDS[0]})",
     "images trained on": HAN_STEPS * COMPARE_TRAIN_SIZE, "weights left": f"{HAN_KEEP:.1%}",
     "test_acc": compare_rows["oneshot", COMPARE_SEEDS[0]]["test_acc"]},
    {"method": f"article's loop: {trials} trials, {kept} kept", "images trained on": trials * RESTORE_TRAIN_SIZE,
     "weights left": f"{1 - cu.metrics.sparsity(restored):.1%}", "test_acc": restore_row["test_acc"]},
]
cu.metrics.table(costs)

# %% [markdown]
# The loop never lets the validation accuracy drift further than its tolerance, and every restored trial is work
# thrown away; the table shows what it cost in training images and what it bought. Its decisions read the validation
# split only; the test accuracy above is the final report.

# %% [markdown]
# ## 7. Soft filter pruning on LeNet-5
#
# Everything so far zeroed single weights. **Filter pruning** zeroes a whole convolution filter (one output channel)
# at a time, which is what notebook 01 removes physically; Li et al. (*Pruning Filters for Efficient ConvNets*, 2017)
# ranked filters by the L1 norm of their weights and removed the weakest for good. He et al. (*Soft Filter Pruning for
# Accelerating Deep
# Convolutional Neural Networks*, IJCAI 2018) noticed that under a frozen mask a filter pruned early is lost for good,
# even if it would have become useful. Their **soft** filter pruning zeroes the filters with the smallest L2 norm at
# the end of every epoch but leaves them trainable: the gradient can grow a zeroed filter back, and at the next
# pruning step a different filter may be the weakest, so the zeroed one *comes back*. Only the last pruning is final.
#
# `cu.soft_pruning.soft_filter_prune(model, data, amount, epochs, hard=...)` runs both: `hard=False` is SFP, `hard=True` masks the
# filters chosen at the start and freezes them. We start from the course's trained LeNet-5 (notebook 01 trains and
# caches it; it is trained here if the cache is empty), zero half the filters of each conv layer, and train with SGD
# and momentum as He et al. did.

# %%
lenet5 = cu.baselines.lenet5(data)
sfp_data = data._replace(train=data.train.subset(SFP_TRAIN_SIZE))
sfp_runs = {}
for hard in (False, True):
    for seed in SFP_SEEDS:
        sfp_runs[hard, seed] = cu.soft_pruning.soft_filter_prune(lenet5, sfp_data, SFP_AMOUNT, SFP_EPOCHS, hard=hard,
                                                                 seed=seed, optimizer="sgd", lr=SFP_LR, momentum=0.9,
                                                                 batch_size=256)

soft_log = sfp_runs[False, SFP_SEEDS[0]][1]
for prev, row in zip(soft_log, soft_log[1:]):
    for name in ("conv1", "conv2"):
        norms = row["norms"][name]
        regrown = max(norms[i] for i in prev["zeroed"][name])
        weakest_kept = min(v for i, v in enumerate(norms) if i not in prev["zeroed"][name])
        print(f"epoch {row['epoch']}, {name}: largest norm among the filters zeroed before {regrown:.3f}, "
              f"smallest of the others {weakest_kept:.3f}; came back: {row['came_back'][name] or 'none'}")

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 4), width_ratios=(6, 16))
for row_axes, hard in zip(axes, (False, True)):
    log = sfp_runs[hard, SFP_SEEDS[0]][1]
    for ax, name in zip(row_axes, ("conv1", "conv2")):
        n = getattr(lenet5, name).out_channels
        grid = torch.ones(len(log), n)
        for i, row in enumerate(log):
            grid[i, row["zeroed"][name]] = 0
        ax.imshow(grid.numpy(), cmap="Greys_r", vmin=-0.3, vmax=1, aspect="auto")
        ax.set(xticks=range(n), yticks=range(len(log)), xlabel=f"{name} filter", ylabel="pruned after epoch",
               title=("hard" if hard else "soft") + f" {name}: dark = zeroed")
fig.tight_layout()
plt.show()

# %% [markdown]
# Why do so few filters come back here? Look at what a zeroed filter computes: zero weights give the output
# ReLU(bias) at every position. With a **negative bias** that is 0 everywhere, the ReLU passes no gradient, and the
# filter receives none: it cannot grow back at all. With a positive bias it does get a gradient, but it restarts from
# zero while the kept filters are already large. The cell below checks this over the first epoch (a fresh optimiser,
# so no momentum is carried over from before the pruning).

# %%
first, second = soft_log[0], soft_log[1]
for name in ("conv1", "conv2"):
    bias = getattr(lenet5, name).bias.detach()
    for sign, pick in (("negative", lambda b: b < 0), ("positive", lambda b: b >= 0)):
        ids = [i for i in first["zeroed"][name] if pick(bias[i])]
        grown = [second["norms"][name][i] for i in ids]
        print(f"{name}: {len(ids)} zeroed filters with a {sign} bias; their norms after one epoch: "
              + (", ".join(f"{g:.3f}" for g in grown) or "-"))

# %%
sfp_rows = []
for hard in (False, True):
    rows = [cu.metrics.summary(sfp_runs[hard, s][0], data, f"{'hard' if hard else 'soft'}, seed {s}", batch_sizes=())
            for s in SFP_SEEDS]
    back = sum(len(v) for s in SFP_SEEDS for r in sfp_runs[hard, s][1] for v in r["came_back"].values())
    sfp_rows.append({"filters": "hard (frozen)" if hard else "soft (SFP)",
                     "conv filters zeroed": f"{SFP_AMOUNT:.0%}",
                     "filters that came back (all seeds)": back,
                     "test errors per seed": ", ".join(str(r["test_errors"]) for r in rows),
                     "test_acc": sum(r["test_acc"] for r in rows) / len(rows)})
lenet5_row = cu.metrics.summary(lenet5, data, "dense LeNet-5", batch_sizes=())
print(f"dense LeNet-5: {lenet5_row['test_acc']:.2%} test accuracy ({lenet5_row['test_errors']} errors); "
      "test_acc below is the mean over the seeds")
print(f"training per run: {SFP_EPOCHS} epochs x {SFP_TRAIN_SIZE:,} images = {SFP_EPOCHS * SFP_TRAIN_SIZE:,} images")
cu.metrics.table(sfp_rows)

# %% [markdown]
# Read the table with the seeds in mind: a difference smaller than the spread between seeds is not a difference. Here
# the gap is larger than that spread: with every seed the frozen filters made fewer test errors than SFP, so soft
# pruning did not help. He et al. pruned ResNets, where batch normalisation follows every convolution, and trained
# for many epochs; a LeNet-5 without batch normalisation and a few epochs of fine-tuning give soft pruning little
# room.
#
# Both variants also end far above the dense LeNet-5's errors, and far above the 122 test errors notebook 01 reached
# after removing half of LeNet-5's channels for real. The zeros are not the cause (a zeroed filter computes what a
# removed one does); the budget and the plan are. Here each run trains `SFP_EPOCHS` epochs on `SFP_TRAIN_SIZE`
# images (30,000 images in all, printed above) with every conv layer cut by half, so conv1 loses 3 of its 6 filters;
# notebook 01 fine-tuned for 2 epochs on all 55,000 training images (110,000) with a plan chosen by a sensitivity
# scan, which took 1 filter of 6 from conv1, the most sensitive layer, and 10 of 16 from conv2. Either way, the
# zeroed filters could now be removed for real with notebook 01's tools, to get a smaller and faster network.
#
# ## 8. What the zeros buy, honestly
#
# A masked model is a dense model with zeros in it. Every matrix multiply still multiplies by every zero, so it does
# the same multiply-accumulates (MACs) as the dense one, and it is no faster. With `torch.nn.utils.prune` it is even
# slower: before every forward pass the hook computes `weight_orig * weight_mask`, one more pass over all the weights,
# which shows most at batch size 1, where the product itself is cheap. `cu.masks.remove_masks` bakes the zeros in and gives
# back the dense model's cost: the same MACs, and measured times that differ from the dense model's only by timing
# noise. The zeros do buy something on disk: long runs of zeros compress well. And a **sparse** format
# stores only the nonzeros: `cu.sparse.to_sparse(model)` makes a copy whose linear layers keep their weights in CSR (compressed sparse row: the values, their column indices, and where
# each row starts) and multiply with `torch.sparse.mm`. The dense model and three versions of the pruned
# network, measured by `cu.metrics.summaries` (one `cu.metrics.summary` row each, the four models timed in turn over
# three rounds, so that a slow moment of the machine slows all four alike):

# %%
baked = cu.masks.remove_masks(copy.deepcopy(han))
csr_model = cu.sparse.to_sparse(han)
honest = cu.metrics.summaries({dense_row["model"]: dense, han_row["model"]: han, "pruned, masks removed": baked,
                                "pruned, CSR (cu.sparse.to_sparse)": csr_model}, data)
honest[-1]["macs"] = "not counted"  # the FLOP counter does not see sparse kernels
cu.metrics.table(honest, ["model", "test_acc", "params", "nonzero_params", "macs", "size_bytes",
                          "size_compressed_bytes", "latency_ms_b1", "latency_ms_b256", "threads"])

# %%
ratios = {b: {row["model"]: row[f"latency_ms_b{b}"] / honest[0][f"latency_ms_b{b}"] for row in honest[1:]}
          for b in (1, 256)}
for b, r in ratios.items():
    print(f"batch {b}, {honest[0]['threads']} threads: time relative to the dense model (1.00 = as fast, below 1 = "
          "faster): " + ", ".join(f"{name} {value:.2f}" for name, value in r.items()))
print(f"MACs: {han_row['macs']:,} masked, {dense_row['macs']:,} dense")

# %% [markdown]
# Where does a sparse kernel start to pay? `cu.latency.matmul_latency` times one layer's product (the shape of `fc1`,
# 300×784) with the weight dense and in CSR, across sparsities, as medians of `torch.utils.benchmark` runs.

# %%
KERNEL_SWEEP = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
kernel_rows = {b: cu.latency.matmul_latency(KERNEL_SWEEP, batch_size=b, min_run_time=0.05) for b in (1, 256)}
fig, ax = plt.subplots(figsize=(7, 3.2))
for b, rows in kernel_rows.items():
    ax.plot([100 * r["sparsity"] for r in rows], [r["csr_speedup"] for r in rows], marker="o", label=f"batch {b}")
ax.axhline(1.0, color="gray", ls="--")
ax.set(xlabel="weights set to zero (%)", ylabel="dense time / CSR time", yscale="log",
       title=f"CSR against dense matmul, 300x784, {kernel_rows[1][0]['threads']} threads (above 1: CSR faster)")
ax.legend()
ax.grid(alpha=0.3)
plt.show()
for b, rows in kernel_rows.items():
    wins = [r["sparsity"] for r in rows if r["csr_speedup"] > 1]
    print(f"batch {b}: CSR is faster from {min(wins):.0%} zeros on" if wins else f"batch {b}: CSR never beats dense here",
          "|", ", ".join(f"{r['sparsity']:.0%}: {r['dense_ms']:.3f} vs {r['csr_ms']:.3f} ms" for r in rows))

# %%
STORAGE_SWEEP = (0.0, 0.5, 0.9, 0.95, 0.99)
storage_rows = [cu.sparse.storage(cu.masks.magnitude_prune(copy.deepcopy(dense), s, "global")) for s in STORAGE_SWEEP]
labels = {"dense_bytes": "dense", "dense_compressed_bytes": "dense + zlib", "csr_bytes": "CSR",
          "csr_compressed_bytes": "CSR + zlib"}
cu.plots.curves([100 * s for s in STORAGE_SWEEP], {label: [r[key] / 1024 for r in storage_rows]
                                                   for key, label in labels.items()},
                xlabel="weights set to zero (%)", ylabel="file size (KiB)", title="LeNet-300-100 on disk")
plt.show()
at = STORAGE_SWEEP.index(0.95)
print(f"at 95% zeros: dense {storage_rows[at]['dense_bytes'] / 1024:.0f} KiB, dense + zlib "
      f"{storage_rows[at]['dense_compressed_bytes'] / 1024:.0f} KiB, CSR {storage_rows[at]['csr_bytes'] / 1024:.0f} KiB "
      f"({storage_rows[0]['dense_bytes'] / storage_rows[at]['csr_bytes']:.1f}x smaller than dense)")

# %% [markdown]
# The lesson: zeros shrink the file (compressed, or stored sparse), but they make a dense kernel no faster. A sparse
# kernel skips the zeros, at the price of reading an index for every nonzero and of irregular memory access; on a CPU
# it only wins when very few weights are left, and whether and by how much it wins depends on the batch size and the
# library (compare the two batch sizes above). To be
# faster with ordinary dense kernels, the network must be **smaller**, which is what structure gives: removing whole
# neurons or filters, as in [notebook 01](01_hard_pruning.ipynb).
#
# ## 9. Hard or soft?
#
# | | hard pruning (notebook 01) | soft pruning (this notebook) |
# |---|---|---|
# | what is removed | whole neurons / filters: the matrices shrink | single weights set to zero, shapes unchanged |
# | what gets faster | everything, with ordinary dense kernels | nothing with dense kernels; only sparse kernels, at high sparsity and large batches |
# | what gets smaller | parameters, MACs, memory, file | nonzero count and the compressed (or CSR) file |
# | granularity | whole rows and columns of the weight matrices at once | every weight chosen on its own |
# | can it be undone | no, the neurons are gone | yes: lift the mask (or let soft filter pruning revive a filter) |
# | when it fits | you need speed or memory on ordinary hardware | you need a small download, or have sparse hardware/kernels; or as a first step before removing filters |
#
# The article's FAQ asks what the difference is between hard and soft pruning, and answers that hard pruning deletes
# while soft pruning zeroes and keeps. This notebook's measurements make that concrete:

# %%
print(f"Soft pruning left {1 - cu.metrics.sparsity(han):.1%} of LeNet-300-100's weights nonzero with "
      f"{han_row['test_acc']:.2%} test accuracy (dense {dense_row['test_acc']:.2%}).")
print(f"The masked model still has all {han_row['params']:,} parameters and {han_row['macs']:,} MACs; with the masks "
      f"baked in it runs in {ratios[256][honest[2]['model']]:.2f}x the dense model's time at batch 256 "
      f"({ratios[1][honest[2]['model']]:.2f}x at batch 1), with the masks still attached in "
      f"{ratios[256][han_row['model']]:.2f}x ({ratios[1][han_row['model']]:.2f}x).")
print(f"Its compressed file is {dense_row['size_compressed_bytes'] / han_row['size_compressed_bytes']:.1f}x smaller "
      f"than the dense model's compressed file; stored as CSR it is "
      f"{dense_row['size_bytes'] / honest[-1]['size_bytes']:.1f}x smaller than the dense file.")

# %% [markdown]
# ## References
#
# * S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient Neural Networks.*
#   NeurIPS 2015.
# * M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.*
#   arXiv:1710.01878, 2017.
# * Y. He, G. Kang, X. Dong, Y. Fu, Y. Yang. *Soft Filter Pruning for Accelerating Deep Convolutional Neural
#   Networks.* IJCAI 2018.
# * H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning Filters for Efficient ConvNets.* ICLR 2017.
# * Y. LeCun, J. S. Denker, S. A. Solla. *Optimal Brain Damage.* Advances in Neural Information Processing Systems 2,
#   1990.
# * PyTorch: [`torch.nn.utils.prune`](https://pytorch.org/docs/stable/generated/torch.nn.utils.prune.l1_unstructured.html)
#   and the [pruning tutorial](https://pytorch.org/tutorials/intermediate/pruning_tutorial.html).

