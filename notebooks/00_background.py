# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Background: why and how neural networks are compressed
#
# This is the first of six notebooks on making neural networks smaller and faster with three techniques the article
# this course grew from describes, **hard pruning**, **soft pruning** and **knowledge distillation**, and a fourth
# that it names among the trends, **quantisation**. In this one you will
#
# 1. measure what a small dense network costs: parameters, multiply-accumulates, bytes, milliseconds, energy;
# 2. meet the three techniques, what each removes, and how they relate and combine;
# 3. write their loss functions precisely (the L1 and L2 penalties and the distillation loss);
# 4. read the code of the article this course grew from and find its bugs, each shown by running it;
# 5. train the dense **LeNet-300-100** baseline that notebooks 01 and 02 start from (it is cached, so they reuse it).
#
# **Prerequisites:** PyTorch basics (tensors, `nn.Module`, what a training loop does).
# **Time:** about 2 minutes of computing on a laptop CPU.
#
# | notebook | topic |
# |---|---|
# | **00** | background, formulas, the dense baseline (this one) |
# | 01 | hard pruning: remove neurons and channels |
# | 02 | soft pruning: masks, schedules, Han et al. 2015 |
# | 03 | knowledge distillation: Hinton et al. 2015 |
# | 04 | quantisation: fewer bits per weight, and Deep Compression |
# | 05 | every technique, and their combinations, side by side |

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
# Parameters: an instructor can change these (for example DATASET = "fashion-mnist").
DATASET = "mnist"   # or "fashion-mnist"
DEMO_EPOCHS = 3     # epochs of the small 784-128-10 networks trained in sections 4 and 5
SEED = 0

# %%
import copy

import matplotlib.pyplot as plt
import torch

import course_utils as cu

cu.train.set_seed(SEED)
data = cu.data.load_dataset(DATASET)
train, val, test, classes = data
print(f"PyTorch {torch.__version__.split('+')[0]}; CPU threads used by PyTorch: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The data, and the rule about the test split
#
# MNIST holds 70,000 grey-scale digits of 28×28 pixels: 60,000 for training and 10,000 for testing.
# `cu.data.load_dataset` keeps everything in memory as tensors (about 200 MB), normalised to mean 0 and
# standard deviation 1, and carves a **validation split** of 5,000 images out of the training set with a fixed seed.
#
# The rule for the whole course: every *decision* (stop training, keep or restore a pruning step, choose a temperature)
# is made on the validation split. The test split is read only to *report* a final number. A decision made on the
# test set makes the reported number optimistic, and the article's code does exactly that (section 5).

# %% tags=["nbval-check-output"]
for name, split in [("train", train), ("validation", val), ("test", test)]:
    print(f"{name:>10}: x {tuple(split.x.shape)} {split.x.dtype}, y {tuple(split.y.shape)} {split.y.dtype}")
print("classes:", ", ".join(classes))

# %%
cu.plots.images(cu.data.unnormalise(test.x[:20], DATASET), titles=[classes[int(y)] for y in test.y[:20]])
plt.show()

# %% [markdown]
# ## 2. Why compress?
#
# Networks that win benchmarks are large. AlexNet has 61 million parameters (240 MB as 32-bit floats) and VGG-16 has
# 138 million (552 MB) — the figures Han, Mao & Dally (2016) start from. Size costs in four ways:
#
# * **Storage and download.** An app or a firmware update that ships a model pays for every megabyte.
# * **Memory traffic and energy.** Han et al. (2015) quote Horowitz's 45 nm figures: a 32-bit floating-point multiply
#   costs about 3.7 pJ and an addition 0.9 pJ, a 32-bit read from on-chip SRAM 5 pJ, but a read from off-chip DRAM
#   640 pJ. A model whose weights do not fit on chip spends far more energy *fetching* weights than multiplying them.
# * **Latency.** Every multiply-accumulate (MAC) takes time; on a CPU, a phone or a microcontroller, fewer MACs and
#   fewer bytes to move usually mean a faster answer.
# * **Where the model can run at all.** Microcontrollers have hundreds of kilobytes of RAM; phones share memory and
#   battery with everything else. Running on the device keeps data private and works offline.
#
# Let's measure our own baseline: **LeNet-300-100**, a fully connected network with two hidden layers of 300 and 100
# neurons (LeCun et al. 1998), the network Han et al. (2015) prune in their Table 1. `cu.baselines.lenet300_100`
# trains it the first time (Adam for 8 epochs, with a *cosine schedule*: the learning rate falls from its starting
# value to zero along half a cosine curve, large steps first and small ones at the end) and *caches* it: the trained
# weights are saved to disk under a *cache key*, a name made of what the model is, how it was trained and on which
# data, so that notebooks 01 and 02 load the same model instead of training it again, and any change of recipe or
# data trains a new one.

# %%
baseline = cu.baselines.lenet300_100(data)
cu.plots.history(cu.baselines.training_history("lenet300-100", data), keys=("train_loss", "val_acc"),
                 title="LeNet-300-100: training loss and validation accuracy per epoch")
plt.show()

# %% [markdown]
# The table below is the **report** of the baseline: test accuracy (and the number of test errors out of 10,000),
# parameters, MACs for one image, the size of the saved weights (raw, and after compression with zlib, the lossless
# compressor behind `.zip` and `.gz` files: it shows how much of a file is redundancy, such as zeros), and the median
# latency of one forward pass at batch size 1 and 256, measured with `torch.utils.benchmark` on this machine's threads.
# Every later notebook puts a compressed model's row beside this one.

# %%
dense_row = cu.metrics.summary(baseline, data, name="LeNet-300-100 (dense)")
cu.metrics.table([dense_row])

# %% [markdown]
# Where do the parameters and MACs sit? In a fully connected layer with $n_\text{in}$ inputs and $n_\text{out}$ outputs
# there are $n_\text{in} n_\text{out}$ weights, $n_\text{out}$ biases, and one MAC per weight for each image.

# %% tags=["nbval-check-output"]
total_weights = 0
for name, layer in cu.models.prunable_layers(baseline).items():
    weights = layer.weight.numel()
    total_weights += weights
    print(f"{name}: {layer.in_features:>3} -> {layer.out_features:>3}   weights {weights:>7,}   biases {layer.bias.numel():>3}")
print(f"fc1 holds {baseline.fc1.weight.numel() / total_weights:.0%} of the weights")
print(f"weights {total_weights:,} (Han et al. call this '267K'), parameters {cu.metrics.count_parameters(baseline):,}, "
      f"MACs per image {cu.metrics.macs(baseline):,}")

# %% [markdown]
# fc1 holds 88% of the weights: whatever we prune, the first layer is where most of the savings are. Now the energy
# argument in numbers, with the 45 nm figures above. The arithmetic of one image is one multiply and one add per MAC;
# if the weights had to come from DRAM, each one would be read once per image (or once per batch, if the batch is
# processed together).

# %% tags=["nbval-check-output"]
PICOJOULES = {"float32 multiply": 3.7, "float32 add": 0.9, "32-bit SRAM read": 5.0, "32-bit DRAM read": 640.0}
macs = cu.metrics.macs(baseline)
params = cu.metrics.count_parameters(baseline)
arithmetic = macs * (PICOJOULES["float32 multiply"] + PICOJOULES["float32 add"])
from_sram = params * PICOJOULES["32-bit SRAM read"]
from_dram = params * PICOJOULES["32-bit DRAM read"]
print(f"arithmetic of one image:        {arithmetic / 1e6:7.2f} µJ")
print(f"reading every weight from SRAM: {from_sram / 1e6:7.2f} µJ")
print(f"reading every weight from DRAM: {from_dram / 1e6:7.2f} µJ  ({from_dram / arithmetic:.0f}x the arithmetic)")

# %%
b1, b256 = dense_row["latency_ms_b1"], dense_row["latency_ms_b256"]
print(f"latency (threads: {dense_row['threads']}): {b1:.3f} ms for one image, {b256:.3f} ms for a batch of 256 "
      f"({256 / b256 * 1e3:,.0f} images per second)")
print(f"saved weights: {dense_row['size_bytes'] / 1024:,.0f} KiB raw, "
      f"{dense_row['size_compressed_bytes'] / 1024:,.0f} KiB compressed "
      f"(random-looking float32 values barely compress: {dense_row['size_compressed_bytes'] / dense_row['size_bytes']:.0%})")

# %% [markdown]
# This network is tiny by today's standards, and it already shows the three costs we will attack: a megabyte of
# weights that do not compress, a quarter of a million MACs per image, and a latency that grows with both.
#
# ## 3. Three ways to make a network smaller
#
# **Pruning (剪枝)** removes the parts of a trained network that matter least, then usually retrains the rest to recover
# accuracy. What is removed can be single weights (*unstructured* pruning: scattered connections) or whole neurons,
# channels or filters (*structured* pruning). The article distinguishes two kinds:
#
# * **Hard pruning (硬剪枝)** deletes neurons and connections *permanently*: the weight tensors get smaller, so the
#   parameter count, the MACs, the file and (with ordinary dense kernels) the latency all go down. Removing a neuron
#   means deleting a row of its layer's weight matrix, its bias, and the matching column of the next layer. → notebook 01.
# * **Soft pruning (软剪枝)** sets weights or neurons to *zero but keeps them* in the model, usually with a binary
#   **mask** multiplied into the weights. The shapes do not change, so a zeroed weight can come back: the mask can be
#   revised, and in *soft filter pruning* (He et al. 2018) zeroed filters keep being trained and may be chosen again.
#   Zeros make the model smaller only when stored in a sparse or compressed format, and faster only with sparse kernels
#   or hardware that skips them. → notebook 02.
#
# **Knowledge distillation (知识蒸馏)** does not cut anything: it *trains* a small **student model (学生模型)**, chosen
# up front, to reproduce the outputs of a large, accurate **teacher model (教师模型)**. The student learns from the
# teacher's full output distribution, softened by a **temperature**, which says not only "this is a 7" but also
# "it looks a bit like a 1 and not at all like a 4" (Hinton, Vinyals & Dean 2015, building on Buciluǎ et al. 2006).
# → notebook 03.
#
# **How they relate.** Pruning starts from the big network and shrinks it; distillation starts from a small network and
# teaches it. Hard pruning is soft pruning followed by physically deleting what the mask zeroed — possible only when the
# zeros form whole rows and columns. They combine well: prune and then fine-tune the pruned network with the dense one as
# its teacher; distil into a student and then prune it; and add quantization on top, as in *Deep Compression* (Han, Mao
# & Dally 2016: pruning, weight sharing and Huffman coding, 35× smaller AlexNet without loss of accuracy).
# Notebook 04 adds quantisation and reproduces Deep Compression; notebook 05 puts all of them side by side.
#
# Two of these ideas, in a few numbers. First, *removing* a neuron and *zeroing* it give the same outputs; only the
# shapes differ. Here is a layer of 3 inputs and 4 neurons followed by a layer of 2 outputs, with hand-picked weights;
# we delete neuron 2 (hard) and mask it (soft).

# %% tags=["nbval-check-output"]
W1 = torch.tensor([[1., -2., 0.5], [0.3, 1., -1.], [-0.1, 0.2, 0.05], [2., 0., 1.]])  # 4 neurons x 3 inputs
b1 = torch.tensor([0.1, -0.2, 0.0, 0.3])
W2 = torch.tensor([[1., 2., -3., 0.5], [-1., 0.5, 4., 1.]])                          # 2 outputs x 4 neurons
x = torch.tensor([[1., 2., 3.], [-1., 0.5, 2.]])

def forward(W1, b1, W2, x):
    return torch.relu(x @ W1.T + b1) @ W2.T

keep = [0, 1, 3]                                   # hard: delete neuron 2 = row 2 of W1, b1[2], column 2 of W2
hard = forward(W1[keep], b1[keep], W2[:, keep], x)
mask = torch.tensor([1., 1., 0., 1.])             # soft: same shapes, neuron 2 multiplied by 0
soft = forward(W1 * mask[:, None], b1 * mask, W2, x)
print("hard-pruned shapes:", tuple(W1[keep].shape), tuple(W2[:, keep].shape), "| soft-pruned shapes:", tuple(W1.shape), tuple(W2.shape))
print("hard output:\n", hard, "\nsoft output:\n", soft, "\nidentical:", torch.equal(hard, soft))

# %% [markdown]
# Second, the **soft targets** of distillation. A softmax with temperature $T$ divides the logits by $T$ before
# normalising. At $T=1$ a confident network gives almost all probability to one class; at higher $T$ the small
# probabilities grow and their *ratios* — which wrong answers are "less wrong" — become visible to a student.

# %% tags=["nbval-check-output"]
logits = torch.tensor([9.0, 4.0, 2.5, -1.0])   # a network's scores for the classes "7", "1", "9", "4"
for T in (1, 4, 20):
    p = torch.softmax(logits / T, dim=0)
    print(f"T = {T:>2}:  " + "  ".join(f"p({c}) = {v:.3f}" for c, v in zip("7194", p.tolist())))

# %% [markdown]
# ## 4. The three formulas
#
# The article describes three loss functions but its formulas lost their symbols. Here they are, with every symbol
# defined. Throughout, $f(x;\theta)$ is the network's output (the logits) for an input $x$ with parameters $\theta$,
# $(x_n, y_n)$ are the $N$ training examples (in practice, a mini-batch), $\ell$ is the cross-entropy loss (the
# article's "gap between prediction and truth"), $w_i$ runs over the **weights** (connections) of the fully connected
# and convolutional layers — biases are not penalised by these two formulas — and $\lambda \ge 0$ is the
# regularisation strength.
#
# **Hard pruning, with an L1 penalty** (sum of absolute values):
#
# $$\mathcal{L}_{\mathrm{L1}}(\theta) \;=\; \frac{1}{N}\sum_{n=1}^{N} \ell\big(f(x_n;\theta),\,y_n\big) \;+\; \lambda \sum_i |w_i|$$
#
# The gradient of $\lambda|w_i|$ is $\lambda\,\mathrm{sign}(w_i)$: the same pull towards zero whatever the size of the
# weight, so weights that the data does not need are driven all the way to (nearly) zero, where removing them costs
# little. The same idea applied to *groups* of weights is the **group lasso**: $\lambda\sum_g \lVert w_g\rVert_2$, a
# sum (an L1 norm) of the groups' L2 norms, with one group per neuron. It drives whole neurons to zero, which is what
# hard pruning removes (notebook 01). There the group of a neuron holds its incoming weights *and its bias*: a neuron
# is only silent, and removable, when its bias is zero too.
#
# **Soft pruning, with an L2 penalty** (sum of squares):
#
# $$\mathcal{L}_{\mathrm{L2}}(\theta) \;=\; \frac{1}{N}\sum_{n=1}^{N} \ell\big(f(x_n;\theta),\,y_n\big) \;+\; \lambda \sum_i w_i^2$$
#
# The gradient $2\lambda w_i$ shrinks each weight in proportion to its size: weights become small but rarely exactly
# zero, so the mask decides what is zero and the penalty keeps the survivors small. Han et al. (2015) found L2 the
# better choice when the pruned network is retrained (L1 was better right after pruning, before retraining). With SGD
# this is the familiar *weight decay*.
#
# **Knowledge distillation** (Hinton, Vinyals & Dean 2015). With $z^{t}$ the teacher's logits and $z^{s}$ the student's,
# the softmax at temperature $T>0$ is
#
# $$p_i^{(T)}(z) \;=\; \frac{\exp(z_i/T)}{\sum_j \exp(z_j/T)},$$
#
# and the student minimises
#
# $$\mathcal{L}_{\mathrm{KD}} \;=\; \alpha\,T^2\,\mathrm{KL}\!\left(p^{(T)}(z^{t})\,\middle\|\,p^{(T)}(z^{s})\right) \;+\; (1-\alpha)\,\ell\big(z^{s},\,y\big),
# \qquad \mathrm{KL}(p\,\|\,q) = \sum_i p_i \log\frac{p_i}{q_i},$$
#
# where $\alpha\in[0,1]$ weighs the soft targets against the true label $y$ (the second term is the usual cross-entropy
# at $T=1$). The factor $T^2$ is there because the gradient of the soft term with respect to a student logit is
# $\tfrac{1}{T}\big(p_i^{(T)}(z^{s}) - p_i^{(T)}(z^{t})\big)$, which shrinks roughly as $1/T^2$ when $T$ is large;
# multiplying by $T^2$ keeps the balance between the two terms when you change $T$. (The article's version compares the
# student with "the teacher's neuron values"; what the student matches is the teacher's *output distribution*.)
#
# A quick check that `cu.train.fit`'s penalties are these sums, on a layer with hand-picked weights:

# %% tags=["nbval-check-output"]
layer = torch.nn.Linear(3, 2)
with torch.no_grad():
    layer.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]]))
    layer.bias.fill_(10.0)                                  # biases are not penalised
net = torch.nn.Sequential(layer)
print("L1 = sum |w| =", cu.train.penalty_value(net, "l1").item(), "(by hand: 0.5 + 1 + 2 + 0 + 3 + 0.25 = 6.75)")
print("L2 = sum w^2 =", cu.train.penalty_value(net, "l2").item(), "(by hand: 0.25 + 1 + 4 + 0 + 9 + 0.0625 = 14.3125)")

# %% [markdown]
# And the distillation loss of one example, step by step from the formula (notebook 03 builds the tested version):

# %% tags=["nbval-check-output"]
z_teacher = torch.tensor([9.0, 4.0, 2.5, -1.0])
z_student = torch.tensor([5.0, 3.0, 1.0, 0.0])
y, T, alpha = 0, 4.0, 0.7
p_t = torch.softmax(z_teacher / T, dim=0)
p_s = torch.softmax(z_student / T, dim=0)
kl = (p_t * (p_t / p_s).log()).sum()
ce = -torch.log_softmax(z_student, dim=0)[y]
loss = alpha * T**2 * kl + (1 - alpha) * ce
print(f"KL(teacher || student) at T={T:g}: {kl:.4f}   cross-entropy with the label: {ce:.4f}")
print(f"L_KD = {alpha} * {T:g}^2 * {kl:.4f} + {1 - alpha:.1f} * {ce:.4f} = {loss:.4f}")


# %% [markdown]
# ### What the two penalties do to the weights
#
# Now train the article's own network (784-128-10) three times for a few epochs: without a penalty, with the L1
# penalty and with the L2 penalty, then look at the first layer's weights. The strengths $\lambda$ were picked so that
# validation accuracy stays close to the unpenalised network's (the table shows it). The last column is a first taste of
# pruning: zero the 90% smallest weights of fc1 and measure validation accuracy again.

# %%
def zero_smallest(model, fraction):
    """A copy of the model with the given fraction of fc1's weights (the smallest magnitudes) set to zero."""
    pruned = copy.deepcopy(model)
    w = pruned.fc1.weight.data
    threshold = w.abs().flatten().kthvalue(int(fraction * w.numel())).values
    w[w.abs() <= threshold] = 0.0
    return pruned

penalties = {"none": (None, 0.0), "L1, λ = 1e-4": ("l1", 1e-4), "L2, λ = 1e-3": ("l2", 1e-3)}
article_nets, rows = {}, []
for label, (penalty, lam) in penalties.items():
    cu.train.set_seed(SEED)
    net = cu.models.article_net()
    cu.train.fit(net, data, DEMO_EPOCHS, penalty=penalty, penalty_weight=lam)
    article_nets[label] = net
    w = net.fc1.weight.detach()
    rows.append({"penalty": label, "val_acc": cu.train.evaluate(net, val).accuracy,
                 "|w| < 0.001": f"{(w.abs() < 1e-3).float().mean():.1%}",
                 "val_acc, 90% of fc1 zeroed": f"{cu.train.evaluate(zero_smallest(net, 0.9), val).accuracy:.2%}"})
cu.metrics.table(rows)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3), sharey=True)
for ax, (label, net) in zip(axes, article_nets.items()):
    cu.plots.weight_histogram({label: net.fc1.weight}, bins=120, ax=ax, log=True, title=f"fc1 weights, penalty: {label}")
    ax.set_xlim(-0.3, 0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the histograms on a log scale: the L1 network piles a large share of its weights into a spike at zero — weights
# the data did not need — and that is why it loses the least accuracy when 90% of fc1 is zeroed. The L2 network has
# shrunk its weights into a narrower bell without creating that spike. This is the article's pairing: L1 prepares a
# network for removing things, L2 keeps a network well-behaved while masks decide what is zero.
#
# ### Exercises
#
# **Exercise 1.** How many learnable parameters does the article's 784-128-10 network have? Compute it by hand (no
# `numel`!) and put the number in `answer`.

# %% tags=["exercise"]
answer = ...  # your number here

# %%
cu.checks.background.article_net_parameters(answer)


# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# answer = 784 * 128 + 128 + 128 * 10 + 10   # fc1 weights and biases, fc2 weights and biases = 101,770
# ```
# </details>
#
# **Exercise 2.** Write the article's L1 term as a function: the sum of absolute values of the weights of every
# `nn.Linear` layer of a model (biases excluded), returned as a tensor that training can differentiate.

# %% tags=["exercise"]
def l1_penalty(model):
    ...  # your code here


# %%
cu.checks.background.l1_penalty(l1_penalty)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def l1_penalty(model):
#     return sum(m.weight.abs().sum() for m in model.modules() if isinstance(m, torch.nn.Linear))
# ```
# </details>
#
# **Exercise 3.** Read the experiment above: which of the three networks, `"none"`, `"l1"` or `"l2"`, kept the most
# validation accuracy when 90% of its fc1 weights were zeroed? Answer from the table, then check that the histograms
# agree.

# %% tags=["exercise"]
my_penalty = ...  # "none", "l1" or "l2"

# %%
cu.checks.background.most_robust_penalty(my_penalty, rows)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# zeroed = {row["penalty"].split(",")[0].lower(): float(row["val_acc, 90% of fc1 zeroed"].rstrip("%")) for row in rows}
# my_penalty = max(zeroed, key=zeroed.get)   # the largest value of the last column
# ```
#
# The L1 network: its penalty pushed over a third of fc1's weights to (almost) zero during training (the
# `|w| < 0.001` column), so zeroing the smallest 90% removes many weights it was no longer using.
# </details>
#
# ## 5. The article's code, read carefully
#
# The article prints three PyTorch programs for MNIST: "hard pruning", "soft pruning" and "knowledge distillation".
# They do not do what their titles say. Each problem below is shown by running it, then fixed.
#
# **Bug 1 — `torchvision` is never imported.** Each program imports `torch`, `torch.nn` and `torch.optim`, then builds
# its data loaders with `torchvision.datasets.MNIST(...)` and `torchvision.transforms.ToTensor()`. The first data line
# stops the program:

# %% tags=["nbval-check-output"]
article_namespace = {}
exec("import torch\nimport torch.nn as nn\nimport torch.optim as optim", article_namespace)   # the article's imports
try:
    eval("torchvision.datasets.MNIST", article_namespace)
except NameError as error:
    print("NameError:", error)

# %% [markdown]
# *Fix:* `import torchvision`. Better still, load the data once into tensors, as `cu.data.load_dataset` does. The
# article's pipeline converts every image of every epoch from a PIL image with `ToTensor`, one at a time;
# `cu.data.batches` takes a whole batch with one indexing operation. Here is the time each needs just to *produce*
# 200 shuffled batches of 64 images (no training at all):

# %%
import time

def seconds_for(batches, n=200):
    start = time.perf_counter()
    for _, _batch in zip(range(n), batches):
        pass
    return time.perf_counter() - start

per_image = seconds_for(cu.data.article_loader(DATASET, batch_size=64))
in_memory = seconds_for(cu.data.batches(train, batch_size=64, shuffle=True))
print(f"article's DataLoader + ToTensor: {per_image / 200 * 1e3:6.2f} ms per batch")
print(f"in-memory tensors:               {in_memory / 200 * 1e3:6.2f} ms per batch  ({per_image / in_memory:.0f}x faster)")

# %% [markdown]
# For a whole training epoch the gap is smaller, because the arithmetic of training (forward and backward passes)
# adds the same time to both pipelines.
#
# **Bug 2 — the "test" loader reads the training set.** Both loaders are created with `train=True`, so the accuracy
# printed at the end is measured on the 60,000 images the network was trained on. That number is optimistic. Our
# baseline, measured both ways:

# %%
# the article's "test" set is all 60,000 training images: our training and validation splits together
on_train = (cu.train.evaluate(baseline, train).accuracy * len(train) + cu.train.evaluate(baseline, val).accuracy * len(val)) / (len(train) + len(val))
on_test = cu.train.evaluate(baseline, test).accuracy
print(f"'test' accuracy as the article measures it (60,000 training images): {on_train:.2%}")
print(f"real test accuracy (10,000 unseen images):                         {on_test:.2%}")
print(f"the article's number overstates accuracy by {100 * (on_train - on_test):.2f} points "
      f"({round((1 - on_test) * 10000) - round((1 - on_train) * 10000)} more errors per 10,000 on unseen images)")

# %% [markdown]
# *Fix:* `train=False` for the test loader, and a separate validation split for every decision.
#
# **Bug 3 — the "pruning" step removes nothing.** The pruning loop walks over the rows of `fc1.weight` and subtracts
# `pruning_lambda * sign(w) * |w| / max|w|` from each row: for every weight $w$ in a row $r$ that is
# $w \leftarrow w\,(1 - \lambda/\max_{r}|w|)$, the same rescaling for the whole row. No weight becomes zero, no neuron
# disappears, and the `threshold` it computes just before is never used. We apply the same arithmetic (our own code) to
# the unpenalised 784-128-10 network trained above:

# %%
net = article_nets["none"]
rescaled = copy.deepcopy(net)
lam = 0.01                                                   # the article's pruning_lambda
with torch.no_grad():
    w = rescaled.fc1.weight
    w -= lam * torch.sign(w) * w.abs() / w.abs().amax(dim=1, keepdim=True)   # row by row, as in the article
ratio = rescaled.fc1.weight / net.fc1.weight
per_row_spread = (ratio.amax(dim=1) - ratio.amin(dim=1)).max().item()
print(f"zero weights in fc1: before {int((net.fc1.weight == 0).sum())}, after {int((rescaled.fc1.weight == 0).sum())}")
print(f"parameters: before {cu.metrics.count_parameters(net):,}, after {cu.metrics.count_parameters(rescaled):,}")
print(f"each row is scaled by one factor: largest spread of new/old within a row = {per_row_spread:.1e}; "
      f"factors between {ratio.min():.4f} and {ratio.max():.4f}")
print(f"validation accuracy: before {cu.train.evaluate(net, val).accuracy:.2%}, after {cu.train.evaluate(rescaled, val).accuracy:.2%}")

# %% [markdown]
# *Fix:* pruning must choose what to remove and then remove it — delete rows and columns (notebook 01) or zero weights
# through a mask that stays in place during retraining (notebook 02). For contrast, zeroing the smallest half of fc1's
# weights really creates zeros:

# %%
half = zero_smallest(net, 0.5)
print(f"zero weights in fc1 after zeroing the smallest half: {int((half.fc1.weight == 0).sum()):,} of {half.fc1.weight.numel():,}; "
      f"validation accuracy {cu.train.evaluate(half, val).accuracy:.2%}")

# %% [markdown]
# **Bug 4 — the "soft pruning" program is the hard-pruning program again.** Apart from a comment, the two listings are
# the same code, so the article never shows the difference it describes: nothing is masked, nothing is removed.
#
# **Bug 5 — the distillation loop throws the teacher's output away.** Inside the student's training loop the article
# computes `output = teacher(data)` and then the loss `criterion(student(data), target)`: the teacher's output is never
# used, so the "distilled" student is just a student trained on labels. (The teacher also runs in training mode and
# builds a gradient graph it never needs.) We can prove it: train two students from the same seed, one with the
# article's loop (the teacher's output computed and discarded) and one on labels only, and compare their weights.

# %% tags=["nbval-check-output"]
teacher = article_nets["none"]
subset = cu.data.Splits(train.subset(10000), val, test, classes)

def articles_loss(student_logits, labels, images, index):
    output = teacher(images)                          # computed ...
    return torch.nn.functional.cross_entropy(student_logits, labels)   # ... and never used

students = []
for loss_fn in (articles_loss, None):
    cu.train.set_seed(SEED)
    student = cu.models.article_net()
    cu.train.fit(student, subset, 1, loss_fn=loss_fn, validate=False, seed=SEED, progress=False)
    students.append(student)
same = all(torch.equal(a, b) for a, b in zip(students[0].parameters(), students[1].parameters()))
print("'distilled' student and label-only student have identical weights:", same)

# %% [markdown]
# *Fix:* use the teacher's logits in the loss — $\mathcal{L}_{\mathrm{KD}}$ above — with the teacher in `eval()` mode
# and under `torch.no_grad()` (notebook 03).
#
# **Bug 6 — the student is as large as the teacher.** Both are 784-128-10:

# %% tags=["nbval-check-output"]
teacher_params = cu.metrics.count_parameters(cu.models.article_net())
student_params = cu.metrics.count_parameters(cu.models.article_net())
print(f"teacher {teacher_params:,} parameters, student {student_params:,}: compression {teacher_params / student_params:.1f}x")

# %% [markdown]
# *Fix:* distillation is worth doing when the student is much smaller than the teacher — notebook 03 goes down to
# students with a twentieth of the teacher's parameters.
#
# Smaller problems: the accuracy is printed with `%d %%`, which truncates (97.9% prints as 97%); and the loop the
# article describes in words — *delete, evaluate, restore if worse, repeat* — is not in its code at all. Notebooks 01 and
# 02 build it, with the decision made on the validation split.
#
# ## 6. Where the field is going
#
# The article closes with trends and challenges. Here they are with the evidence behind them; where this course
# measures one, the notebook is named, and the others are the literature's findings, not measured here.
#
# **Pruning.**
# * *Structure for speed.* Unstructured zeros rarely speed up dense hardware; removing whole channels does (notebooks 01
#   and 02 measure both). Hardware meets pruning half-way: NVIDIA's Ampere GPUs run "2:4" sparsity (two zeros in every
#   four weights) at up to twice the dense matrix-multiply throughput.
# * *Pruning early, or once.* The lottery-ticket hypothesis (Frankle & Carbin 2019) showed that a dense network contains
#   sparse subnetworks that train to full accuracy from their original initialisation; one-shot methods such as
#   SparseGPT (Frantar & Alistarh 2023) and Wanda (Sun et al. 2023) prune large language models without retraining.
# * *Combination* with quantisation and distillation (Deep Compression, Han, Mao & Dally 2016: notebook 04 reproduces it,
#   notebook 05 combines all the techniques), and deployment on edge and IoT devices, where memory, not arithmetic, is
#   usually the binding limit (notebooks 04 and 05 measure bytes against a microcontroller's flash).
# * *Challenges:* accuracy falls off a cliff past some sparsity (notebooks 01 and 02 find it), prune–retrain loops cost
#   many training runs, unstructured sparsity saves bytes but not time on ordinary kernels, and which weights get pruned
#   can change with the random seed.
#
# **Distillation.**
# * *Beyond vision:* DistilBERT (Sanh et al. 2019) keeps 97% of BERT's language-understanding score with 40% fewer
#   parameters and 60% faster inference; distillation is now routine for shrinking large language models.
# * *Variants:* feature ("hint") distillation (FitNets, Romero et al. 2015), teacher assistants for large size gaps
#   (Mirzadeh et al. 2020), self-distillation and data-free distillation.
# * *Challenges:* a student can be too small to follow its teacher (the *capacity gap*, measured in notebook 03), the
#   teacher's forward passes add training cost, and the temperature and weighting must be tuned.
#
# ## 7. The article's FAQ, and where this course answers it
#
# | question | short answer | measured in |
# |---|---|---|
# | How do hard and soft pruning differ? | Hard pruning deletes neurons: smaller tensors, fewer MACs, faster dense kernels. Soft pruning zeroes weights behind a mask: same shapes and speed, smaller only when stored sparsely, and reversible. | 01, 02 |
# | Why does pruning cost accuracy? | It removes capacity the network was using; retraining recovers most of it until the remaining network is too small (the cliff). | 01, 02 |
# | How does distillation differ from transfer learning? | Transfer learning reuses a network's *weights* for a new task; distillation trains a new, smaller network on the *outputs* of a teacher for the same task. | 03 |
# | Why can a distilled student fall short of its teacher? | It has less capacity, and past some size gap it cannot follow the teacher's function at all. | 03 |
#
# ## 8. Glossary
#
# | English | 中文 (the article's term) | meaning in this course |
# |---|---|---|
# | pruning | 剪枝 | removing or zeroing parts of a trained network |
# | hard pruning | 硬剪枝 | deleting neurons/channels: the tensors shrink |
# | soft pruning | 软剪枝 | zeroing weights or neurons with a mask: shapes stay |
# | knowledge distillation | 知识蒸馏 | training a small network on a large one's outputs |
# | teacher model | 教师模型 (the article also writes 老师模型) | the large, accurate network |
# | student model | 学生模型 | the small network being trained |
# | regularisation (λ) | 正则化（参数） | a penalty added to the loss |
# | loss function | 损失函数 | what training minimises |
# | temperature | 温度 | the $T$ that softens a softmax |
# | soft targets | 软目标 | the teacher's softened output distribution |
# | neuron / connection | 神经元 / 连接 | a unit of a layer / one weight |
# | sparsity | 稀疏度 | the fraction of weights that are zero |
#
# ## What's next
#
# The baseline is trained and cached. Notebook **01** removes whole neurons and channels from it and measures what gets
# smaller and faster; notebook **02** zeroes weights with masks and reproduces Han et al. (2015); notebook **03** trains
# small students from a large teacher.
#
# ## References
#
# * Y. LeCun, J. Denker, S. Solla. *Optimal Brain Damage.* NeurIPS 1989 (published 1990).
# * Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-Based Learning Applied to Document Recognition.* Proc. IEEE 1998 (LeNet-5, LeNet-300-100).
# * S. Han, J. Pool, J. Tran, W. Dally. *Learning both Weights and Connections for Efficient Neural Networks.* NeurIPS 2015.
# * S. Han, H. Mao, W. Dally. *Deep Compression.* ICLR 2016.
# * G. Hinton, O. Vinyals, J. Dean. *Distilling the Knowledge in a Neural Network.* arXiv:1503.02531, 2015 (presented at
#   the NIPS 2014 Deep Learning Workshop).
# * C. Buciluǎ, R. Caruana, A. Niculescu-Mizil. *Model Compression.* KDD 2006.
# * A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio. *FitNets: Hints for Thin Deep Nets.* ICLR 2015.
# * M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model compression.* arXiv:1710.01878, 2017.
# * H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf. *Pruning Filters for Efficient ConvNets.* ICLR 2017.
# * Y. He, G. Kang, X. Dong, Y. Fu, Y. Yang. *Soft Filter Pruning for Accelerating Deep Convolutional Neural Networks.* IJCAI 2018.
# * J. Frankle, M. Carbin. *The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks.* ICLR 2019.
# * S. I. Mirzadeh, M. Farajtabar, A. Li, N. Levine, A. Matsukawa, H. Ghasemzadeh. *Improved Knowledge Distillation via Teacher Assistant.* AAAI 2020.
# * V. Sanh, L. Debut, J. Chaumond, T. Wolf. *DistilBERT, a distilled version of BERT.* arXiv:1910.01108, 2019.
# * E. Frantar, D. Alistarh. *SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot.* ICML 2023.
# * M. Sun, Z. Liu, A. Bair, J. Z. Kolter. *A Simple and Effective Pruning Approach for Large Language Models* (Wanda). ICLR 2024, arXiv 2023.
# * M. Horowitz. *Computing's Energy Problem (and what we can do about it).* ISSCC 2014 (the energy figures quoted by Han et al.).
#
# *A note on the article's reference list:* its six entries do not match the papers that introduced these methods —
# authors, titles and venues are mixed up (FitNets, for instance, is Romero et al., ICLR 2015, "Hints for Thin Deep
# Nets", not a paper on "fine-pruning"). Use the list above.
