# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Hard pruning: remove neurons and channels so the model really gets smaller
#
# The article this course grew from defines **hard pruning (硬剪枝)** as deleting neurons and connections for good, and
# describes a loop: train a large model, delete part of it, evaluate, restore what was deleted if performance dropped,
# repeat until the model is small enough. This notebook does exactly that, for real, and measures what it buys.
#
# **You will learn**
# - what "delete a neuron" means in tensors (a row, a bias, a column), and why it computes the same as zeroing the
#   neuron (soft pruning, notebook 02) while storing and computing less;
# - how channels are removed from convolutions, through BatchNorm and the `Flatten` in front of the first linear layer;
# - five ways to choose *which* neurons go (random, as in the article; L1 and L2 norms; mean activation; Taylor) and
#   how much a short fine-tune recovers;
# - how to scan each layer's sensitivity and pick a pruning plan on the validation split;
# - the article's remove–evaluate–restore loop, run properly, against ranked removal;
# - what an L1 penalty per neuron (group lasso) does before pruning;
# - what you get: parameters, MACs, bytes and measured latency against the ideal speed-up, and where it stops paying.
#
# **Prerequisites:** notebook 00 (the data and its validation/test rule, `cu.train.fit`, `cu.metrics.summary`, the
# L1 formula), and PyTorch basics.
#
# **Time:** about 45 minutes of reading; the notebook computes for about 2 minutes on a 2-core laptop CPU, of which
# about a minute trains the dense LeNet-5 the first time (plus half a minute for LeNet-300-100 if notebook 00 has not
# cached it). Re-runs reuse the cached models and take under a minute.

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
# Parameters: an instructor can change these (for example DATASET = "fashion-mnist", or more epochs).
DATASET = "mnist"        # or "fashion-mnist"
SEED = 0
QUICK_EXAMPLES = 10_000  # training images seen by each quick fine-tune (criteria, the article's loop, the sliders)
QUICK_LR = 1e-3          # learning rate of the quick fine-tunes
PLAN_EPOCHS = 2          # fine-tuning of the chosen pruning plans, over the whole training split
MLP_SEEDS = (0, 1, 2)    # LeNet-300-100: one fine-tune per seed, to see the spread
LENET5_SEEDS = (0,)      # LeNet-5: each extra seed costs about 15 s
GROUP_L1_WEIGHT = 5e-3   # λ of the per-neuron L1 penalty (section 7)
GROUP_L1_EPOCHS = 1      # epochs of training with (and without) that penalty

# %%
import copy

import matplotlib.pyplot as plt
import torch
from torch import nn

import course_utils as cu

cu.train.set_seed(SEED)
data = cu.data.load_dataset(DATASET)
print(f"PyTorch {torch.__version__.split('+')[0]}; CPU threads used by PyTorch: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. What deleting a neuron means
#
# A hidden neuron of a fully connected network owns three things: one **row** of its layer's weight matrix $W_1$ (its
# incoming connections), one **bias**, and one **column** of the next layer's matrix $W_2$ (its outgoing connections).
# Deleting the neuron deletes all three, and every tensor gets smaller.
#
# Here is a network with 4 inputs, 3 hidden ReLU neurons and 2 outputs, with numbers small enough to check by hand.
# We delete hidden neuron 1 by keeping rows 0 and 2 of $W_1$ and $b_1$, and columns 0 and 2 of $W_2$.

# %% tags=["nbval-check-output"]
W1 = torch.tensor([[1., 0., -1., 2.], [0., 1., 1., 0.], [-1., 2., 0., 1.]])   # 3 neurons x 4 inputs
b1 = torch.tensor([0., 1., 0.])
W2 = torch.tensor([[1., -1., 2.], [0., 1., 1.]])                              # 2 outputs x 3 neurons
b2 = torch.tensor([0.5, 0.])
x = torch.tensor([[1., 2., 0., -1.], [0., 1., 2., 1.]])                       # two inputs


def forward(W1, b1, W2, b2, x):
    return torch.relu(x @ W1.T + b1) @ W2.T + b2


keep = [0, 2]                                                                 # delete neuron 1
W1_small, b1_small, W2_small = W1[keep], b1[keep], W2[:, keep]
print("hidden activations (one row per input):", torch.relu(x @ W1.T + b1).tolist())
print(f"W1 {tuple(W1.shape)} -> {tuple(W1_small.shape)}, b1 {tuple(b1.shape)} -> {tuple(b1_small.shape)}, "
      f"W2 {tuple(W2.shape)} -> {tuple(W2_small.shape)}")
print("outputs of the full network:       ", forward(W1, b1, W2, b2, x).tolist())
print("outputs without neuron 1 (deleted):", forward(W1_small, b1_small, W2_small, b2, x).tolist())

# %% [markdown]
# The outputs changed: neuron 1 was active (its activations are 3 and 4) and contributed to both outputs. Pruning is
# never free; the question of this notebook is how to make it cheap.
#
# Now the soft version: keep the neuron, but set its incoming weights and bias to zero.

# %% tags=["nbval-check-output"]
W1_zeroed, b1_zeroed = W1.clone(), b1.clone()
W1_zeroed[1], b1_zeroed[1] = 0.0, 0.0                 # soft pruning: the neuron stays, with zero weights
print("outputs with neuron 1 zeroed:      ", forward(W1_zeroed, b1_zeroed, W2, b2, x).tolist())
stored = lambda *tensors: sum(t.numel() for t in tensors)  # noqa: E731
nonzero = lambda *tensors: sum(int(t.count_nonzero()) for t in tensors)  # noqa: E731
print(f"numbers stored: full {stored(W1, b1, W2, b2)}, zeroed {stored(W1_zeroed, b1_zeroed, W2, b2)} "
      f"({nonzero(W1_zeroed, b1_zeroed, W2, b2)} of them nonzero), deleted {stored(W1_small, b1_small, W2_small, b2)}")

# %% [markdown]
# The zeroed network computes **exactly** what the smaller one computes: a zeroed ReLU neuron outputs $\max(0, 0)=0$,
# and zero times its outgoing weights adds nothing. The difference is what is stored and computed. The zeroed network
# keeps every number (the zeros included) and a dense matrix product still multiplies by them; the smaller network has
# fewer numbers and fewer multiply-accumulates (MACs). That is the whole bridge between notebook 02 (soft pruning:
# decide with masks, keep the shapes) and this one (hard pruning: delete, shapes shrink).
#
# Two caveats that the course's code handles. With an activation where $f(0)\neq 0$ (a sigmoid) or a BatchNorm after
# the layer, zeroing the incoming weights does not silence the neuron; zeroing its outgoing column does. And the
# article's own "hard pruning" code (notebook 00, section 5) never deletes anything: it nudges fc1's weights towards
# zero and evaluates on training images.
#
# `cu.surgery.remove_neurons(model, layer, drop)` does this slicing for a whole `nn.Sequential` and returns a new, smaller
# model; the original is untouched. Same network, same result:

# %% tags=["nbval-check-output"]
tiny = cu.models.mlp(hidden=(3,), in_features=4, classes=2)
with torch.no_grad():
    tiny.fc1.weight.copy_(W1), tiny.fc1.bias.copy_(b1), tiny.fc2.weight.copy_(W2), tiny.fc2.bias.copy_(b2)
tiny_small = cu.surgery.remove_neurons(tiny, "fc1", drop=[1])
print(tiny_small)
print("outputs:", tiny_small(x).tolist())
print("the original still has", tiny.fc1.out_features, "hidden neurons")

# %% [markdown]
# ## 2. The same on LeNet-300-100
#
# Now the dense **LeNet-300-100** of notebook 00 (cached; trained here if you run this notebook alone). Delete half of
# fc1 (the 150 neurons with the smallest incoming weights, a choice section 4 examines), once by removal and once by
# zeroing, and compare the two models' outputs on the validation images.

# %%
baseline = cu.baselines.lenet300_100(data)
drop = cu.importance.neuron_importance(baseline, "fc1", "l1").argsort()[:150].tolist()
removed = cu.surgery.remove_neurons(baseline, "fc1", drop)
zeroed = copy.deepcopy(baseline)
with torch.no_grad():
    zeroed.fc1.weight[drop] = 0.0
    zeroed.fc1.bias[drop] = 0.0
logits_removed, logits_zeroed = cu.train.predict(removed, data.val.x), cu.train.predict(zeroed, data.val.x)
difference = (logits_removed - logits_zeroed).abs().max().item()
print(f"largest difference between the two models' logits on {len(data.val):,} validation images: {difference:.1e}")
print(f"removal equals zeroing (to 1e-5): {difference < 1e-5}; "
      f"same predictions: {torch.equal(logits_removed.argmax(1), logits_zeroed.argmax(1))}")

# %% [markdown]
# The outputs agree to float rounding. What differs is the bill:

# %% tags=["nbval-check-output"]
for name, model in [("dense", baseline), ("zeroed (soft)", zeroed), ("removed (hard)", removed)]:
    print(f"{name:>14}: fc1 {str(tuple(model.fc1.weight.shape)):>10}  fc2 {str(tuple(model.fc2.weight.shape)):>10}  "
          f"parameters {cu.metrics.count_parameters(model):>7,}  nonzero {cu.metrics.count_nonzero(model):>7,}  "
          f"MACs {cu.metrics.macs(model):>7,}")

# %% [markdown]
# The zeroed model stores as many parameters and does as many MACs as the dense one; only its count of *nonzero*
# parameters fell. The removed model is smaller in every column. Note that removing 150 fc1 neurons also removed 150
# columns of fc2: each deleted neuron takes its outgoing connections along.

# %% [markdown]
# ## 3. Channels of a convolution, through BatchNorm and Flatten
#
# In a convolutional layer the unit that can be deleted is an **output channel** (a *filter*): one kernel of shape
# $C_\text{in}\times k\times k$ and one bias. The next convolution reads every channel, so each of its kernels loses
# the matching input slice. A BatchNorm after the convolution keeps four numbers per channel (scale, shift, running mean
# and variance), which go too.
#
# LeNet-5's last convolution is followed by pooling and a `Flatten`: its 16 channels of 5×5 values become the 400 inputs
# of fc1, channel after channel, so **channel $c$ owns fc1's input columns $25c$ to $25c+24$**. Removing a channel
# removes that block of 25 columns. Below: the shapes of a LeNet-5 with BatchNorm (untrained: only shapes matter here)
# before and after removing channels.

# %% tags=["nbval-check-output"]
lenet_bn = cu.models.lenet5(batchnorm=True)
versions = {"LeNet-5 with BatchNorm": lenet_bn,
            "without conv1 channel 2": cu.surgery.remove_neurons(lenet_bn, "conv1", [2]),
            "without conv2 channels 0 and 7": cu.surgery.remove_neurons(lenet_bn, "conv2", [0, 7])}
for name, model in versions.items():
    print(f"{name:>30}: conv1 {tuple(model.conv1.weight.shape)}, bn1 {model.bn1.num_features}, "
          f"conv2 {tuple(model.conv2.weight.shape)}, bn2 {model.bn2.num_features}, fc1 {tuple(model.fc1.weight.shape)}")

# %%
cu.train.set_seed(SEED)
for module in lenet_bn.modules():   # random BatchNorm statistics, so that BatchNorm is not the identity
    if isinstance(module, nn.BatchNorm2d):
        module.running_mean.normal_(), module.running_var.uniform_(0.5, 2.0), module.bias.data.normal_()
lenet_bn.eval()
images = data.val.x[:64]
for layer, drop in [("conv1", [2]), ("conv2", [0, 7])]:
    gap = (cu.surgery.remove_neurons(lenet_bn, layer, drop)(images) - cu.surgery.mask_neurons(lenet_bn, layer, drop)(images)).abs().max()
    print(f"{layer}: removing channels {drop} gives the same outputs as masking them (to 1e-5): {gap.item() < 1e-5}")


# %% [markdown]
# `cu.surgery.mask_neurons` is the soft version used for that comparison: it zeroes the same channels (incoming kernels,
# biases, BatchNorm scale and shift, and the next layer's matching inputs) and keeps every shape.
#
# Hard pruning changes the architecture, so the code has to understand the architecture. When it cannot — a skip
# connection (the removed channel is also added elsewhere), an unknown module between two layers, the output layer
# (its neurons are the classes) — it refuses with a message instead of returning a silently wrong model:

# %% tags=["nbval-check-output"]
class Residual(nn.Module):
    """y = x + fc2(relu(fc1(x))): fc2's outputs are added to the input, so they cannot shrink alone."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


attempts = [lambda: cu.surgery.remove_neurons(baseline, "fc3", [0]),
            lambda: cu.hard_pruning.prune_neurons(baseline, {"fc2": 1.0}),
            lambda: cu.surgery.remove_neurons(Residual(), "fc1", [0])]
for attempt in attempts:
    try:
        attempt()
    except ValueError as error:
        print("ValueError:", error, "\n")


# %% [markdown]
# ### Exercises: remove a channel yourself
#
# **Exercise 1.** Write `remove_channel(conv, next_conv, index)`: given two `nn.Conv2d` layers where `next_conv` reads
# the output of `conv` (through a ReLU), return a new pair without output channel `index` of `conv`. Build new layers
# (or clone weights): the originals must not change. The check compares your pair's outputs with the original's where
# that channel is zeroed.

# %% tags=["exercise"]
def remove_channel(conv, next_conv, index):
    """Return (new_conv, new_next_conv) without output channel `index` of conv."""
    ...  # your code here


# %% tags=["nbval-check-output"]
cu.checks.hard_pruning.remove_channel(remove_channel)


# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def remove_channel(conv, next_conv, index):
#     keep = [c for c in range(conv.out_channels) if c != index]
#     new_conv = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, conv.stride, conv.padding)
#     new_next = nn.Conv2d(len(keep), next_conv.out_channels, next_conv.kernel_size, next_conv.stride,
#                          next_conv.padding)
#     with torch.no_grad():
#         new_conv.weight.copy_(conv.weight[keep])
#         new_conv.bias.copy_(conv.bias[keep])
#         new_next.weight.copy_(next_conv.weight[:, keep])
#         new_next.bias.copy_(next_conv.bias)
#     return new_conv, new_next
# ```
# </details>
#
# **Exercise 2.** After a `Flatten`, which inputs of the next `nn.Linear` belong to a channel? Write
# `fc_columns(channel, positions)` returning the list of column indices that channel `channel` fills, when each channel
# has `positions` = H×W values (25 in LeNet-5).

# %% tags=["exercise"]
def fc_columns(channel, positions):
    """Column indices of the Linear layer after a Flatten that read channel `channel`."""
    ...  # your code here


# %% tags=["nbval-check-output"]
cu.checks.hard_pruning.fc_columns(fc_columns)


# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def fc_columns(channel, positions):
#     return list(range(channel * positions, (channel + 1) * positions))
# ```
# </details>

# %% [markdown]
# ## 4. Which neurons? Five criteria
#
# The article deletes neurons **at random**. That is the baseline any criterion must beat. `cu.importance.neuron_importance`
# gives one score per neuron (low scores go first):
#
# | criterion | score of a neuron | idea, and where it comes from |
# |---|---|---|
# | `random` | a random number | the article's choice |
# | `l1` | $\sum_j \lvert w_{ij}\rvert$ over its incoming weights | small weights do little (magnitude pruning; Li et al. 2017 rank filters this way) |
# | `l2` | $\sqrt{\sum_j w_{ij}^2}$ | the same with squares: big weights count more |
# | `activation` | mean $\lvert a_i\rvert$ over validation images | a neuron that is rarely on does little (cf. Hu et al. 2016, *Network Trimming*) |
# | `taylor` | mean over images of $\lvert a_i \cdot \partial L/\partial a_i\rvert$ | first-order estimate of how much the loss changes if $a_i$ becomes 0 (Molchanov et al. 2017) |
#
# The first three read only the weights; the last two run the network on validation images (activation and gradient of
# the neuron's output as the next layer reads it). Taylor's idea goes back to LeCun, Denker & Solla's *Optimal Brain
# Damage* (1990), which used second derivatives to estimate what removing a weight costs.
#
# **Exercise 3.** Write the `l2` score: for an `nn.Linear` or `nn.Conv2d` layer, one number per output neuron (or
# channel), the L2 norm of its incoming weights.

# %% tags=["exercise"]
def l2_scores(layer):
    """One score per output neuron/channel: the L2 norm of its incoming weights."""
    ...  # your code here


# %% tags=["nbval-check-output"]
cu.checks.hard_pruning.l2_scores(l2_scores)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def l2_scores(layer):
#     return layer.weight.detach().flatten(1).norm(dim=1)
# ```
# </details>
#
# Now the comparison. Each criterion removes the same fraction of both hidden layers of LeNet-300-100; we measure
# validation accuracy right after removal, and again after a quick fine-tune (one pass over `QUICK_EXAMPLES` training
# images with `cu.train.finetune`, a thin wrapper around `cu.train.fit`). Random removal is repeated with three seeds: the
# band shows their spread.

# %%
FRACTIONS = [0.25, 0.5, 0.75, 0.9]
dense_val = cu.train.evaluate(baseline, data.val).accuracy
before, after = {}, {}
for criterion in cu.importance.CRITERIA:
    seeds = (0, 1, 2) if criterion == "random" else (0,)
    before[criterion], after[criterion] = [], []
    for fraction in FRACTIONS:
        accuracy_before, accuracy_after = [], []
        for seed in seeds:
            pruned = cu.hard_pruning.prune_neurons(baseline, fraction, criterion, data, seed=seed)
            accuracy_before.append(cu.train.evaluate(pruned, data.val).accuracy)
            cu.train.finetune(pruned, data, 1, examples=QUICK_EXAMPLES, lr=QUICK_LR, seed=seed)
            accuracy_after.append(cu.train.evaluate(pruned, data.val).accuracy)
        before[criterion].append(accuracy_before)
        after[criterion].append(accuracy_after)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, results, title in [(axes[0], before, "right after removal"), (axes[1], after, "after a quick fine-tune")]:
    cu.plots.curves([100 * f for f in FRACTIONS], results, xlabel="hidden neurons removed (%)",
                    ylabel="validation accuracy", percent=True, ax=ax, title=f"LeNet-300-100, {title}")
    ax.axhline(100 * dense_val, color="grey", linestyle="--", linewidth=1)
plt.tight_layout()
plt.show()

# %%
mean = lambda values: sum(values) / len(values)  # noqa: E731
at_half = FRACTIONS.index(0.5)
print("validation accuracy with half of the hidden neurons removed (dense: "
      f"{dense_val:.2%}):")
for criterion in cu.importance.CRITERIA:
    print(f"  {criterion:>10}: {mean(before[criterion][at_half]):.2%} right after removal, "
          f"{mean(after[criterion][at_half]):.2%} after the quick fine-tune")
ranked = [c for c in cu.importance.CRITERIA if c != "random"]
channel_criterion = max(ranked, key=lambda c: mean(before[c][at_half]))
plan_criterion = max(ranked, key=lambda c: mean(after[c][at_half]))
print(f"best right after removal: {channel_criterion}; best after fine-tuning: {plan_criterion}")
beat_random = [c for c in ranked if mean(before[c][at_half]) > mean(before["random"][at_half])]
print(f"better than random right after removal: {', '.join(beat_random) or 'none'}; "
      f"not better: {', '.join(c for c in ranked if c not in beat_random) or 'none'}")
spread_before = max(mean(before[c][at_half]) for c in cu.importance.CRITERIA) - min(mean(before[c][at_half]) for c in cu.importance.CRITERIA)
spread_after = max(mean(after[c][at_half]) for c in cu.importance.CRITERIA) - min(mean(after[c][at_half]) for c in cu.importance.CRITERIA)
print(f"gap between the best and the worst criterion: {100 * spread_before:.1f} points right after removal, "
      f"{100 * spread_after:.1f} points after the quick fine-tune")

# %% [markdown]
# Three things to read in the plots and the printout. **Which** neurons go matters most right after removal, and not
# every score beats random: a small score is not the same as a small contribution. A neuron that fires for one digit
# only has a small *mean* activation and may still be that digit's detector; a weight norm ignores how the next layer
# uses the neuron. Taylor asks the loss directly how much it would change. A short fine-tune **closes most of the gap**
# between criteria (compare the two gaps printed): the remaining neurons re-learn what the removed ones did, so the
# choice matters less once you retrain (the leading criteria can end up so close that which one comes first is
# noise). And towards the right-hand end the curves fall off a **cliff**: when too few
# neurons are left, no criterion and no short fine-tune brings the accuracy back. We choose by validation accuracy: the criterion best after fine-tuning
# (`plan_criterion`) for the plan of section 5, and the best right after removal (`channel_criterion`) for the
# channel scan of section 8, where scanning is done without fine-tuning.

# %% [markdown]
# ## 5. How sensitive is each layer? Choosing a plan
#
# Removing the same fraction everywhere is a crude plan: layers differ. A **sensitivity scan** removes a growing
# fraction of one layer at a time (the others intact) and records validation accuracy, without fine-tuning (Li et al.
# 2017 do this for every layer of VGG-16). `cu.hard_pruning.choose_plan` then picks per-layer fractions that remove **at least half
# of all hidden neurons** at the smallest summed accuracy loss, reading each layer's loss off its curve.

# %%
SCAN = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
scan = cu.hard_pruning.sensitivity_scan(baseline, data, SCAN, criterion=plan_criterion)
counts = cu.surgery.neuron_counts(baseline)
ax = cu.plots.curves([100 * f for f in SCAN], {f"{layer} ({counts[layer]} neurons)": acc for layer, acc in scan.items()},
                     xlabel="neurons removed from this layer only (%)", ylabel="validation accuracy", percent=True,
                     title=f"LeNet-300-100: sensitivity of each layer ({plan_criterion} ranking, no fine-tuning)")
plt.show()
plan = cu.hard_pruning.choose_plan(scan, SCAN, counts, remove_at_least=0.5, reference=dense_val)
removed_neurons = sum(round(f * counts[layer]) for layer, f in plan.items())
print(f"plan: {plan} -> removes {removed_neurons} of {sum(counts.values())} hidden neurons")
predicted = dense_val - sum(dense_val - scan[layer][SCAN.index(f)] for layer, f in plan.items())
measured = cu.train.evaluate(cu.hard_pruning.prune_neurons(baseline, plan, plan_criterion, data), data.val).accuracy
print(f"validation accuracy right after removing the plan: {measured:.2%} "
      f"(adding up the scan's per-layer losses predicted {predicted:.2%})")


# %% [markdown]
# The scan treats the layers one at a time; the printout compares its prediction with the accuracy measured when the
# whole plan is removed at once (the layers' losses need not add up). Either way the plan needs retraining, and we
# fine-tune it properly now: `PLAN_EPOCHS` passes over the whole training split, once per seed in
# `MLP_SEEDS` (the spread tells how much of a difference is noise). The fine-tuned models are cached with
# `cu.checkpoints.load_or_train`; the cache key records the dense model's fingerprint, the plan and the recipe, so any
# change retrains.

# %%
def pruned_and_finetuned(base, plan, criterion, name, seed, lr, batch_size):
    """Prune `plan` from `base` and fine-tune it for PLAN_EPOCHS (cached)."""
    config = {"base": cu.checkpoints.fingerprint(base), "plan": plan, "criterion": criterion,
              "epochs": PLAN_EPOCHS, "lr": lr, "batch_size": batch_size, "seed": seed}
    return cu.checkpoints.load_or_train(
        name, lambda: cu.hard_pruning.prune_neurons(base, plan, criterion, data),
        lambda model: cu.train.finetune(model, data, PLAN_EPOCHS, lr=lr, batch_size=batch_size, seed=seed),
        data=data, config=config)


mlp_plan = {seed: pruned_and_finetuned(baseline, plan, plan_criterion, "hard-lenet300", seed, lr=1e-3, batch_size=128)
            for seed in MLP_SEEDS}
plan_val = {seed: cu.train.evaluate(model, data.val).accuracy for seed, model in mlp_plan.items()}
print(f"validation accuracy after fine-tuning: " + ", ".join(f"seed {s}: {a:.2%}" for s, a in plan_val.items())
      + f" (dense: {dense_val:.2%})")

# %% [markdown]
# ## 6. The article's loop: remove, evaluate, restore
#
# The article's procedure, made precise: start from the trained model; each round, **remove** a group of neurons,
# **fine-tune** briefly, **evaluate on the validation split**; **keep** the removal if accuracy stayed within a
# tolerance of the starting model's, otherwise **restore** the neurons and try another group; stop at the target size or
# when no group can be removed. `cu.hard_pruning.iterative_prune` is that loop for neurons. It is built on
# `cu.pruning.evaluate_and_restore`, the same loop notebook 02 uses for weights: only "what to try" and "how to apply it"
# differ.
#
# Each round offers one group per layer, least-pruned layer first: 10% of the layer's original neurons, chosen at
# random (the article) or by the criterion chosen in section 4. Target: keep half of the hidden neurons; tolerance: one
# point of validation accuracy below the dense model's.

# %%
loops = {}
for criterion in ("random", plan_criterion):
    loops[criterion] = cu.hard_pruning.iterative_prune(baseline, data, target=0.5, step=0.1, criterion=criterion,
                                                       tolerance=0.01, finetune_epochs=1,
                                                       finetune_examples=QUICK_EXAMPLES, lr=QUICK_LR, seed=SEED)
random_model, random_log = loops["random"]
cu.metrics.table(random_log, columns=["round", "try", "candidate", "size_before", "size_after", "val_acc", "decision"])

# %% [markdown]
# `size` is the fraction of hidden neurons left. Each "restored" row is a removal that cost too much: the loop threw
# the trial away and offered the next layer's group. Now the same loop with ranked candidates, and, at each loop's final
# size, **one-shot ranked removal**: remove the same numbers of neurons per layer at once (lowest L1 norms), then
# fine-tune with as many training images as the loop's kept rounds used.

# %%
loop_rows = []
for criterion, (model, log) in loops.items():
    kept = sum(row["decision"] == "kept" for row in log)
    size = cu.surgery.neuron_counts(model)
    one_shot = cu.hard_pruning.prune_neurons(baseline, {layer: 1 - n / counts[layer] for layer, n in size.items()}, "l1")
    if kept:
        cu.train.finetune(one_shot, data, kept, examples=QUICK_EXAMPLES, lr=QUICK_LR, seed=SEED)
    loop_rows.append({"loop candidates": criterion, "trials": len(log), "kept": kept, "neurons left": str(size),
                      "removed": f"{1 - sum(size.values()) / sum(counts.values()):.0%}",
                      "loop val_acc": f"{cu.train.evaluate(model, data.val).accuracy:.2%}",
                      "one-shot l1 val_acc": f"{cu.train.evaluate(one_shot, data.val).accuracy:.2%}",
                      "stop": log[-1]["stop"]})
cu.metrics.table(loop_rows)


# %% [markdown]
# Read the table row by row: how far each loop got (`removed`, and whether it stopped at the target), how many of its
# trials it had to restore, and its validation accuracy next to one-shot ranked removal of the same numbers of neurons
# with the same amount of fine-tuning. Random groups often contain neurons that matter, which one quick fine-tune cannot
# repair within the tolerance; ranked groups remove what matters least first. The restore step is a safety net that
# keeps the loop from going below the tolerance; what makes pruning cheap is the ranking and the retraining, and
# one-shot removal with the same retraining is the yardstick the loop has to beat. Zhu & Gupta
# (2017) turn this into a schedule: prune gradually, retraining between steps, up to a target sparsity fixed in advance.

# %% [markdown]
# ## 7. Preparing for removal: an L1 penalty per neuron
#
# The article pairs hard pruning with an L1 penalty, $\lambda\sum_i\lvert w_i\rvert$ (notebook 00). On single weights it
# creates scattered zeros, which hard pruning cannot use. Applied **per neuron** — the L1 norm of the neurons' weight
# norms, a *group lasso* (Yuan & Lin 2006; Wen et al. 2016 use it to remove whole filters and channels) —
#
# $$\mathcal{L}(\theta) = \frac1N\sum_n \ell\big(f(x_n;\theta), y_n\big) + \lambda \sum_{\text{neurons } i} \big\lVert (w_{i,\cdot},\, b_i) \big\rVert_2$$
#
# it pushes *whole neurons* towards zero, the way L1 pushes single weights. `cu.hard_pruning.group_l1()` returns that penalty as a
# function of the model, for `cu.train.fit(..., penalty=cu.hard_pruning.group_l1(), penalty_weight=λ)`.
#
# We continue training the dense model for `GROUP_L1_EPOCHS` epochs twice: with the penalty, and without it (the fair
# control: the same extra training).

# %%
def extra_training(weight):
    """The dense LeNet-300-100 trained GROUP_L1_EPOCHS more epochs, with the group L1 penalty at this weight (cached)."""
    config = {"base": cu.checkpoints.fingerprint(baseline), "epochs": GROUP_L1_EPOCHS, "lr": 1e-3,
              "penalty_weight": weight}
    return cu.checkpoints.load_or_train(
        "hard-lenet300-groupl1", lambda: copy.deepcopy(baseline),
        lambda model: cu.train.fit(model, data, GROUP_L1_EPOCHS, lr=1e-3, schedule="cosine", seed=SEED,
                                   penalty=cu.hard_pruning.group_l1(), penalty_weight=weight, validate=False),
        data=data, config=config)


l1_models = {"no penalty": extra_training(0.0), f"group L1, λ = {GROUP_L1_WEIGHT:g}": extra_training(GROUP_L1_WEIGHT)}
fig, ax = plt.subplots(figsize=(7, 3.5))
cu.plots.weight_histogram({name: cu.importance.neuron_importance(model, "fc1", "l2") for name, model in l1_models.items()},
                          bins=60, ax=ax, title="L2 norms of fc1's 300 neurons (incoming weights)")
ax.set_xlabel("norm of a neuron's incoming weights")
plt.show()

# %%
l1_rows = []
for name, model in l1_models.items():
    norms = cu.importance.neuron_importance(model, "fc1", "l2")
    row = {"training": name, "val_acc": cu.train.evaluate(model, data.val).accuracy,
           "fc1 neurons with norm < 10% of the largest": int((norms < 0.1 * norms.max()).sum())}
    for fraction in (0.5, 0.7, 0.8):
        pruned = cu.hard_pruning.prune_neurons(model, fraction, "l2")
        row[f"{fraction:.0%} removed"] = f"{cu.train.evaluate(pruned, data.val).accuracy:.2%}"
        cu.train.finetune(pruned, data, 1, examples=QUICK_EXAMPLES, lr=QUICK_LR, seed=SEED)
        row[f"{fraction:.0%} removed + fine-tune"] = f"{cu.train.evaluate(pruned, data.val).accuracy:.2%}"
    l1_rows.append(row)
cu.metrics.table(l1_rows)

# %% [markdown]
# The histogram shows what the penalty does: a group of fc1's neurons is pushed to norms near zero (the table counts
# them) while the others keep useful weights. Those neurons were already almost silent, so removing them costs little
# *before* any fine-tuning (compare the "removed" columns of the two rows). The price is in the first column: the penalty
# itself costs validation accuracy when λ is large, and once the pruned models are fine-tuned the advantage shrinks,
# disappears or even turns around (compare the "+ fine-tune" columns). The penalty is a knob that trades the
# accuracy of the unpruned model for cheap removal; change `GROUP_L1_WEIGHT` in the parameters cell to move along that
# trade-off.

# %% [markdown]
# ## 8. Channels of LeNet-5
#
# Now a convolutional network: LeNet-5 with 6 and 16 channels (cached; the first run trains it, under a minute). We
# scan both convolutions with the criterion that did best right after removal in section 4, choose a plan that removes
# **at least half of all 22 channels**, and fine-tune it. The scan uses fractions in steps of 1/8.

# %%
lenet5 = cu.baselines.lenet5(data)
lenet5_val = cu.train.evaluate(lenet5, data.val).accuracy
CHANNEL_SCAN = [i / 8 for i in range(8)]
channel_counts = {layer: n for layer, n in cu.surgery.neuron_counts(lenet5).items() if layer.startswith("conv")}
channel_scan = cu.hard_pruning.sensitivity_scan(lenet5, data, CHANNEL_SCAN, criterion=channel_criterion, layers=list(channel_counts))
cu.plots.curves([100 * f for f in CHANNEL_SCAN], {f"{layer} ({n} channels)": channel_scan[layer]
                                                  for layer, n in channel_counts.items()},
                xlabel="channels removed from this layer only (%)", ylabel="validation accuracy", percent=True,
                title=f"LeNet-5: sensitivity of each convolution ({channel_criterion} ranking, no fine-tuning)")
plt.show()

# %% [markdown]
# **Exercise 4.** Read the sensitivity scan: which convolution is the more sensitive one, the layer whose channels cost the most validation accuracy when they
# are removed? Read it from the plot (the curve that falls first and lowest) and set `my_layer` to its name.

# %% tags=["exercise"]
my_layer = ...  # "conv1" or "conv2"

# %%
cu.checks.hard_pruning.most_sensitive_layer(my_layer, channel_scan, CHANNEL_SCAN)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# my_layer = min(channel_scan, key=lambda layer: sum(channel_scan[layer]))   # the lowest curve
# ```
#
# conv1: it has only 6 channels, and each is a basic stroke detector that everything after it builds on.
# </details>
#
# The plan below follows the scan: it removes at least half of all channels, taking them where they hurt least.

# %%
channel_plan = cu.hard_pruning.choose_plan(channel_scan, CHANNEL_SCAN, channel_counts, remove_at_least=0.5, reference=lenet5_val)
quarter = CHANNEL_SCAN.index(0.25)
print("validation accuracy with 25% of one convolution's channels removed: "
      + ", ".join(f"{layer} {channel_scan[layer][quarter]:.2%}" for layer in channel_counts))
print(f"plan: {channel_plan} -> channels left: "
      + ", ".join(f"{layer} {n - round(channel_plan[layer] * n)} of {n}" for layer, n in channel_counts.items()))
lenet5_plan = {seed: pruned_and_finetuned(lenet5, channel_plan, channel_criterion, "hard-lenet5", seed, lr=2e-3,
                                          batch_size=256) for seed in LENET5_SEEDS}
print(f"validation accuracy: dense {lenet5_val:.2%}; pruned and fine-tuned: "
      + ", ".join(f"seed {s}: {cu.train.evaluate(m, data.val).accuracy:.2%}" for s, m in lenet5_plan.items()))

# %% [markdown]
# The plan puts its removals where the scan says they hurt least: one channel of conv1, the sensitive layer, and most
# of its removals in conv2. Each removed conv2 channel also removes 25 inputs of fc1 (with 120 weights each), so the savings reach beyond the
# convolutions.

# %% [markdown]
# ## 9. Does it get faster? Measured speed-up against the ideal
#
# The ideal speed-up of a pruned model is its **MAC ratio**: dense MACs divided by pruned MACs. Dense kernels (matrix
# products, convolutions) on smaller tensors should approach it when there is enough work per call. We measure with
# `cu.latency.latency` (the median of repeated timings) through `cu.latency.speedups`, which times the models in interleaved
# rounds, each timed block lasting at least 30 ms, so that other programs on the machine slow every model alike. The
# model is LeNet-300-100 with a growing fraction of both hidden layers removed.

# %%
CURVE = [0.25, 0.5, 0.75, 0.9]
curve_models = {f: cu.hard_pruning.prune_neurons(baseline, f, "l1") for f in CURVE}  # the time ignores the values
curves = {batch: cu.latency.speedups(baseline, curve_models, batch_size=batch, rounds=3) for batch in (256, 1)}

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ideal = [row["mac_ratio"] for row in curves[256]]
ax.plot(ideal, ideal, color="grey", linestyle="--", label="ideal (MAC ratio)")
for batch, rows in curves.items():
    ax.plot([r["mac_ratio"] for r in rows], [r["speedup"] for r in rows], marker="o", label=f"measured, batch {batch}")
    for r in rows:
        ax.annotate(f"{r['model']:.0%}", (r["mac_ratio"], r["speedup"]), fontsize=8, xytext=(4, -10),
                    textcoords="offset points")
ax.set_xscale("log")
ax.set_yscale("log")
ax.minorticks_off()
ax.set_xticks([1, 2, 4, 8], ["1x", "2x", "4x", "8x"])
ax.set_yticks([1, 2, 4, 8], ["1x", "2x", "4x", "8x"])
ax.set_xlabel("MAC ratio (dense / pruned)")
ax.set_ylabel("measured speed-up (dense / pruned time)")
ax.set_title(f"LeNet-300-100, {curves[256][0]['threads']} CPU thread(s), log scales")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %%
for batch, rows in curves.items():
    print(f"batch {batch:>3}: " + "; ".join(f"{r['model']:.0%} removed: {r['speedup']:.2f}x "
                                        f"({r['speedup'] / r['mac_ratio']:.0%} of the ideal {r['mac_ratio']:.2f}x)"
                                        for r in rows))

# %% [markdown]
# How to read it. At batch 256 each linear layer is one large matrix product; its time should follow the MACs, and a
# point can even land above the ideal line when a smaller weight matrix starts to fit in a faster cache. At batch 1
# the arithmetic is small, and two other costs weigh in: streaming the weights from memory (which shrinks with the
# weights, like the MACs) and fixed per-layer overheads of Python and PyTorch (which removing neurons cannot shrink).
# So the speed-up falls further below the ideal the less arithmetic there is per call, as at large removal fractions.
# On a busy machine single timings jump around; the interleaved rounds, the long timing blocks and the medians limit
# that, and the printout gives the numbers behind each point.

# %% [markdown]
# Does LeNet-5's time follow its MACs as well? `cu.latency.layer_latencies` times each layer of the dense and the pruned LeNet-5
# on its own (batch 256, with the input shape it sees in the model), which shows where the time goes:

# %%
timings = {name: cu.latency.layer_latencies(model, 256) for name, model in
           [("dense", lenet5), ("pruned", lenet5_plan[LENET5_SEEDS[0]])]}
layer_rows = [{"layer": d["layer"], "MACs dense": f"{d['macs']:,}", "MACs pruned": f"{p['macs']:,}",
               "ms dense": f"{d['latency_ms']:.2f}", "ms pruned": f"{p['latency_ms']:.2f}"}
              for d, p in zip(timings["dense"], timings["pruned"])]
display(cu.metrics.table(layer_rows))
for name, rows_ in timings.items():
    total = sum(r["latency_ms"] for r in rows_)
    no_macs = sum(r["latency_ms"] for r in rows_ if r["macs"] == 0)
    first = sum(r["latency_ms"] for r in rows_ if r["layer"] in ("conv1", "relu1", "pool1"))
    print(f"{name}: {total:.1f} ms in all; layers without MACs (activations, pooling) {no_macs / total:.0%}; "
          f"conv1 with its ReLU and pooling {first / total:.0%} ({rows_[0]['threads']} thread(s))")
total_ms = {name: sum(r["latency_ms"] for r in rows_) for name, rows_ in timings.items()}
total_macs = {name: sum(r["macs"] for r in rows_) for name, rows_ in timings.items()}
print(f"sum of the layers: {total_ms['dense'] / total_ms['pruned']:.2f}x faster for "
      f"{total_macs['dense'] / total_macs['pruned']:.2f}x fewer MACs")

# %% [markdown]
# MACs count only the multiply-accumulates of convolutions and linear layers. The activation and pooling layers after
# conv1 run over the largest feature maps of the network (6 × 28 × 28 values per image) and cost time without a single
# MAC (the printout gives their share), and they shrink only by the channels the plan removed from conv1, the layer the
# scan found most sensitive. The MAC ratio is the speed-up to expect if time followed MACs; how close a model gets (or,
# with cache effects, how far it overshoots) depends on where its time really goes, which only a measurement tells.

# %% [markdown]
# ## 10. Try it: how much can you remove?
#
# Move the sliders to remove a fraction of each hidden layer of LeNet-300-100 (by the criterion chosen in section 4).
# `cu.widgets.hard_pruning_result` prunes, fine-tunes quickly on `QUICK_EXAMPLES` images, and reports validation accuracy, parameters
# and the latency at batch 256. Results are cached, so returning to a setting is instant. (The static notebook shows the
# default setting below the sliders.)

# %%
slider_cache = {}
dense_b256 = cu.latency.latencies({"dense": baseline}, 256)["dense"].median * 1e3
dense_params = cu.metrics.count_parameters(baseline)


def show(fc1, fc2):
    r = cu.widgets.hard_pruning_result(baseline, data, {"fc1": fc1, "fc2": fc2}, criterion=plan_criterion,
                         finetune_examples=QUICK_EXAMPLES, lr=QUICK_LR, cache=slider_cache)
    print(f"neurons kept: {r['neurons']}; parameters: {r['params']:,} ({dense_params / r['params']:.1f}x fewer)")
    print(f"validation accuracy: {r['val_acc_no_finetune']:.2%} right after removal, {r['val_acc']:.2%} after a "
          f"quick fine-tune (dense: {dense_val:.2%})")
    print(f"latency at batch {r['batch_size']}: {r['latency_ms']:.2f} ms, {dense_b256 / r['latency_ms']:.1f}x faster "
          f"than dense ({r['threads']} thread(s))")


cu.widgets.controls(show, fc1=(0.0, 0.9, 0.1, 0.5), fc2=(0.0, 0.9, 0.1, 0.5))

# %%
show(fc1=0.5, fc2=0.5)   # the default setting, for the static notebook

# %% [markdown]
# ## 11. The report: test accuracy, once
#
# Every decision above (criterion, plan, keep or restore) was made on the validation split. Now, once, the test split:
# one `cu.metrics.summary` row per model — test accuracy, parameters, MACs, bytes on disk (raw and zlib-compressed),
# and latency at batch 1 and 256.

# %%
mlp_model, lenet5_model = mlp_plan[MLP_SEEDS[0]], lenet5_plan[LENET5_SEEDS[0]]
rows = [cu.metrics.summary(baseline, data, "LeNet-300-100 dense"),
        cu.metrics.summary(mlp_model, data, f"LeNet-300-100 pruned {cu.surgery.neuron_counts(mlp_model)}"),
        cu.metrics.summary(lenet5, data, "LeNet-5 dense"),
        cu.metrics.summary(lenet5_model, data, "LeNet-5 pruned " + str({k: v for k, v in cu.surgery.neuron_counts(
            lenet5_model).items() if k.startswith("conv")}))]
cu.metrics.table(rows)

# %%
cu.metrics.compare(rows[0], rows[1])

# %%
cu.metrics.compare(rows[2], rows[3])

# %% [markdown]
# How much did the pruned networks lose, and is the loss more than the luck of one fine-tuning run? The test accuracy
# of every fine-tuning seed, and how much of the MAC ratio turns into a real speed-up at batch 256:

# %%
dense_test = rows[0]["test_acc"]
mlp_test = {s: cu.train.evaluate(m, data.test).accuracy for s, m in mlp_plan.items()}
mlp_removed = 1 - sum(cu.surgery.neuron_counts(mlp_model).values()) / sum(counts.values())
worst = min(mlp_test.values())
print(f"LeNet-300-100: {mlp_removed:.0%} of hidden neurons removed; test accuracy {dense_test:.2%} dense, "
      + ", ".join(f"{a:.2%} (seed {s})" for s, a in mlp_test.items())
      + f" -> largest drop {100 * (dense_test - worst):.2f} points")

# %%
timed = cu.latency.latencies({"dense": baseline, "pruned": mlp_model}, 256, rounds=3)
speedup = timed["dense"].median / timed["pruned"].median
mac_ratio = rows[0]["macs"] / rows[1]["macs"]
print(f"LeNet-300-100 latency at batch 256 ({timed['dense'].threads} thread(s), median of 3 interleaved rounds): "
      f"{1e3 * timed['dense'].median:.2f} ms -> {1e3 * timed['pruned'].median:.2f} ms, speed-up {speedup:.2f}x for a MAC "
      f"ratio of {mac_ratio:.2f}x ({speedup / mac_ratio:.0%} of the ideal)")

# %%
lenet5_dense_test = rows[2]["test_acc"]
lenet5_test = {s: cu.train.evaluate(m, data.test).accuracy for s, m in lenet5_plan.items()}
kept_channels = sum(n for layer, n in cu.surgery.neuron_counts(lenet5_model).items() if layer.startswith("conv"))
channels_removed = 1 - kept_channels / sum(channel_counts.values())
worst5 = min(lenet5_test.values())
print(f"LeNet-5: {channels_removed:.0%} of conv channels removed; test accuracy {lenet5_dense_test:.2%} dense, "
      + ", ".join(f"{a:.2%} (seed {s})" for s, a in lenet5_test.items())
      + f" -> largest drop {100 * (lenet5_dense_test - worst5):.2f} points")

# %% [markdown]
# ## 12. When hard pruning pays, where it stops, and why it costs accuracy
#
# The evidence, gathered from this notebook's own measurements:

# %%
print("1. What it buys (report above): LeNet-300-100 "
      f"{rows[0]['params'] / rows[1]['params']:.1f}x fewer parameters, {rows[0]['macs'] / rows[1]['macs']:.1f}x fewer "
      f"MACs, {rows[0]['size_bytes'] / rows[1]['size_bytes']:.1f}x smaller file; LeNet-5 "
      f"{rows[2]['macs'] / rows[3]['macs']:.1f}x fewer MACs.")
half = curves[256][CURVE.index(0.5)], curves[1][CURVE.index(0.5)]
print(f"2. When it pays: with half the neurons removed (MAC ratio {half[0]['mac_ratio']:.2f}x), "
      f"{half[0]['speedup']:.2f}x faster at batch 256 ({half[0]['speedup'] / half[0]['mac_ratio']:.0%} of ideal), "
      f"{half[1]['speedup']:.2f}x at batch 1 ({half[1]['speedup'] / half[1]['mac_ratio']:.0%}); LeNet-5 at batch 256: "
      f"{rows[2]['latency_ms_b256'] / rows[3]['latency_ms_b256']:.2f}x for {rows[2]['macs'] / rows[3]['macs']:.2f}x fewer MACs.")
print(f"3. The cliff: after the quick fine-tune, {plan_criterion} keeps {mean(after[plan_criterion][at_half]):.2%} "
      f"with 50% removed, {mean(after[plan_criterion][FRACTIONS.index(0.75)]):.2%} with 75%, and "
      f"{mean(after[plan_criterion][-1]):.2%} with 90% (dense: {dense_val:.2%}).")
print(f"4. Which neurons: right after removing 50%, random removal keeps {mean(before['random'][at_half]):.2%}, "
      f"{channel_criterion} {mean(before[channel_criterion][at_half]):.2%}.")
print(f"5. Retraining: fine-tuning brings the same 50% {plan_criterion} removal from "
      f"{mean(before[plan_criterion][at_half]):.2%} to {mean(after[plan_criterion][at_half]):.2%} after "
      f"{QUICK_EXAMPLES:,} images, and to {min(plan_val.values()):.2%}-{max(plan_val.values()):.2%} after "
      f"{PLAN_EPOCHS} full epochs (validation).")

# %% [markdown]
# **When hard pruning pays.** It is the only kind of pruning that makes an ordinary dense model smaller and faster
# with no special kernels or storage formats: fewer parameters, a smaller file and fewer MACs follow directly (point 1).
# Latency follows the MACs only as far as the arithmetic dominates the time (point 2 shows how far it did on this
# machine): large batches and large layers gain the most, while fixed per-call overheads and operations that MACs do not
# count (activations, pooling over LeNet-5's large first feature maps) are not removed. And it cannot reach the
# sparsities of weight pruning: Han et al.
# (2015) removed 92% of LeNet-300-100's *weights* (12× fewer) at no accuracy loss (the paper's figures), because single
# weights can be removed where they are unimportant, while a neuron must go with all its connections.
#
# **What it cannot do: the accuracy cliff.** Every curve of section 4 drops sharply past some fraction. Below it,
# the remaining neurons can re-learn what was removed; beyond it, the network no longer has the capacity for the task,
# and no criterion or short fine-tune recovers it — only a longer retraining, or a different network, might.
#
# **The article's FAQ: why does pruning cost accuracy?** The article answers: because neurons and connections that
# contributed to the model's performance were deleted. The measurements make that precise. (a) *Which* neurons go
# decides the immediate cost: every neuron contributes something, but ranked removal deletes those that contribute
# least, and random removal (the article's loop) pays more for the same size (point 4). (b) The cost is largely
# temporary: the remaining neurons can take over the work of the deleted ones when the network is retrained
# (point 5), which is why prune-then-fine-tune, repeated, is the standard recipe (Han et al. 2015; Zhu & Gupta 2017).
# (c) What cannot be recovered is lost *capacity*: past the cliff (point 3) the smaller network is simply too small.
# Frankle & Carbin (2019) add a twist, for weight pruning: the sparse network that pruning finds can often be
# retrained from its original initial weights to the same accuracy, which suggests that part of a large network's value
# lies in making a good small one easy to find.
#
# ### References
#
# - Y. LeCun, J. S. Denker, S. A. Solla (1990). *Optimal Brain Damage*. NeurIPS 2.
# - S. Han, J. Pool, J. Tran, W. J. Dally (2015). *Learning both Weights and Connections for Efficient Neural Networks*.
#   NeurIPS.
# - H. Hu, R. Peng, Y.-W. Tai, C.-K. Tang (2016). *Network Trimming: A Data-Driven Neuron Pruning Approach towards
#   Efficient Deep Architectures*. arXiv:1607.03250.
# - H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf (2017). *Pruning Filters for Efficient ConvNets*. ICLR.
# - P. Molchanov, S. Tyree, T. Karras, T. Aila, J. Kautz (2017). *Pruning Convolutional Neural Networks for Resource
#   Efficient Inference*. ICLR.
# - W. Wen, C. Wu, Y. Wang, Y. Chen, H. Li (2016). *Learning Structured Sparsity in Deep Neural Networks*. NeurIPS.
# - M. Yuan, Y. Lin (2006). *Model Selection and Estimation in Regression with Grouped Variables*. Journal of the Royal
#   Statistical Society, Series B.
# - M. Zhu, S. Gupta (2017). *To prune, or not to prune: exploring the efficacy of pruning for model compression*.
#   arXiv:1710.01878.
# - J. Frankle, M. Carbin (2019). *The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks*. ICLR.
#
# Next: notebook 02 keeps the shapes and zeroes weights instead (soft pruning), one weight at a time.
