# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Comparison: a budget in bytes, every technique and their combinations
#
# Notebooks 01–04 each studied one technique. This one asks the practical question: **you have a trained dense
# network and a device that stores only a tenth of its file, or a fortieth — which route gives the best model?**
#
# Every route starts from the same dense LeNet-300-100 of notebook 00 (or from random weights) and must end with a
# file that fits the budget:
#
# | route | what happens |
# |---|---|
# | small, from scratch | a small MLP, as wide as the budget allows, trained on the labels |
# | hard pruning | the dense model's neurons of lowest L2 norm removed (notebook 01's criterion) down to the widths that fit, then fine-tuned |
# | soft pruning, sparse file | the dense model's smallest weights masked (notebook 02), fine-tuned, stored as nonzero values at relative indices |
# | distillation | the small MLP trained on the soft targets of notebook 03's teacher |
# | hard pruning + distillation | hard pruning, fine-tuned on the teacher's soft targets |
# | small, from scratch, int8 | a wider MLP, trained, then stored and run in int8 (notebook 04) |
# | distillation + int8 | the wider MLP trained on the teacher's soft targets, then int8 |
# | hard pruning + int8 | hard pruning to the wider network that fits in int8, fine-tuned, int8 |
# | prune + distil + int8 | the article's combination: hard pruning, distillation, int8 |
# | deep compression | soft pruning, weight sharing with fine-tuned codebooks, a Huffman-coded file (notebook 04) |
# | dense, trained as long again | the control: the dense model, trained for the routes' extra epochs, no budget |
#
# You will see which routes win on errors, on bytes and on time, and whether the differences are larger than the
# spread between seeds.
#
# **Prerequisites:** notebooks 00–04 (this one reuses their models and tested functions).
# **Time:** about 30 minutes of reading; it computes for about 3½ minutes on a 2-core laptop CPU.

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
BUDGETS = {"a tenth": 10, "a fortieth": 40}   # the dense model's file divided by these
FINETUNE_EPOCHS = 3        # epochs every route adds to the dense model's training (from scratch: the sum)
SEEDS = (0, 1, 2)          # every route is repeated with these seeds
EXTRA_SEEDS = (3,)         # and the routes too close to tell apart with those, with these as well
LEARNING_RATES = (2e-3, 4e-3)   # candidates, chosen per route on validation (first seed, smallest budget)
BITS = 3                   # bits of Deep Compression's shared weights (notebook 04's choice on the validation split)
TEMPERATURE, ALPHA = 2.0, 1.0   # notebook 03's choice on the validation split for its small students
FLASH_BYTES = 256 * 1024   # a microcontroller-class flash memory

# %%
import matplotlib.pyplot as plt
import torch

import course_utils as cu

cu.train.set_seed(0)
data = cu.data.load_dataset(DATASET)
print(f"CPU threads used by PyTorch: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The starting point, and a budget in bytes
#
# The dense model and the teacher come from the cache that notebooks 00 and 03 filled (or are trained now if this
# notebook runs alone).

# %%
dense = cu.baselines.lenet300_100(data)
teacher = cu.baselines.teacher(data)
dense_errors = cu.train.count_errors(dense, data.test)

# %% [markdown]
# A device does not store parameters; it stores a file. So the budget is a number of **bytes**, measured on the
# file each route would write (`cu.routes.stored_bytes`), never estimated: a float32 network's `state_dict`, an int8
# network's, or the compressed file of notebook 04 for a masked or weight-shared one.

# %% tags=["nbval-check-output"]
dense_bytes = cu.routes.stored_bytes(dense)
budgets = {name: dense_bytes // divisor for name, divisor in BUDGETS.items()}
print(f"dense LeNet-300-100: {cu.metrics.count_parameters(dense):,} parameters, a file of {dense_bytes:,} bytes")
for name, budget in budgets.items():
    print(f"budget {name:>10}: {budget:,} bytes")

# %% [markdown]
# Counting bytes changes what fits. A float32 weight costs 4 bytes, an int8 weight about 1; a weight of a sparse
# file costs its value plus its position; a shared weight costs a few bits of index plus its position. So each route
# is sized by measuring: the widest network, or the largest share of weights, whose file fits.
#
# How wide should each layer of the small network be? Notebook 01's plan removed the same fraction of both hidden
# layers (fc2 stays a third of fc1). But a neuron of fc2 costs only fc1's width plus 10 weights, while a neuron of
# fc1 costs 784 plus fc2's width, so under a byte budget a wide fc2 is cheap. The validation split decides, on hard
# pruning with the first seed (at the largest learning rate):

# %%
setup = cu.routes.Setup(data, dense, cu.distill.teacher_outputs(teacher, data)["train"],
                        dense_epochs=cu.baselines.RECIPES["lenet300-100"]["epochs"], finetune_epochs=FINETUNE_EPOCHS,
                        temperature=TEMPERATURE, alpha=ALPHA, bits=BITS)
for proportional in (True, False):
    setup.proportional = proportional
    trial = cu.routes.compare(setup, budgets, ["hard pruning"], LEARNING_RATES[-1:], SEEDS[:1], log=None)
    print(f"{'same fraction of each layer' if proportional else 'fc2 as wide as fc1':<28}: "
          + ";  ".join(f"{r['keeps']}, {min(r['val_errors'].values())} validation errors" for r in trial))

# %% [markdown]
# With a third of fc1's width, fc2 keeps two neurons at a fortieth of the bytes, and every image must pass through
# them: equal widths lose far fewer validation images. The routes below use them (at most fc2's 100 neurons).
# What each route keeps at each budget:

# %%
setup.proportional = False
routes = [r for r in cu.routes.ROUTES if r != "dense, trained as long again"]
cu.metrics.table([{"route": route, **{name: cu.routes.describe(route, cu.routes.size_for(route, setup, budget))
                                      for name, budget in budgets.items()}} for route in routes])

# %% [markdown]
# At a tenth of the bytes, a float32 network keeps about a tenth of the parameters, while int8 keeps four times as
# many, and a sparse file keeps a share of the weights between the two (each costs its position too). Weight
# sharing, at 3 bits of index per weight, keeps the most.
#
# ### Exercise: how wide can the small network be?
#
# For a two-hidden-layer MLP 784-h-h-10, write a function that returns the largest width `h` whose parameter count
# (weights and biases) fits a budget. A float32 file holds about a quarter of its bytes as parameters, so this sizes
# the small network for any device.

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
# ## 2. The same training for every route
#
# A fair comparison gives every route the same training. The dense model was trained for some epochs; a route that
# starts from it inherits them and adds `FINETUNE_EPOCHS`; a route that starts from random weights trains for the
# sum. Deep Compression spends the last of its epochs on the codebooks. The control, the dense model trained as long
# again, shows what those extra epochs alone are worth: "below dense" means something only against it.

# %%
print(f"dense model: {setup.dense_epochs} epochs; routes from it: + {setup.finetune_epochs}; "
      f"routes from scratch: {setup.scratch_epochs} epochs; batch {setup.batch_size}, Adam with cosine decay")

# %% [markdown]
# ## 3. Every route, every budget, every seed
#
# `cu.routes.compare` runs each route at each budget: with the first seed it tries every learning rate and keeps the
# one with the fewest **validation** errors, then repeats the route with the other seeds at that rate. To save
# time, each route chooses its rate once, at the smallest budget, and keeps it at the other (the log shows one rate
# tried there). The test errors are read once, at the end, and feed no decision.

# %%
results = cu.routes.compare(setup, {"none": None, **budgets}, list(cu.routes.ROUTES), LEARNING_RATES, SEEDS,
                            choose_at=min(budgets, key=budgets.get))

# %%
def mean(values):
    return sum(values) / len(values)


control = next(r for r in results if r["budget"] == "none")
cu.metrics.table([{"budget": r["budget"], "route": r["route"], "keeps": r["keeps"],
                   "lr": r["lr"], "test errors per seed": r["test_errors"], "mean": mean(r["test_errors"]),
                   "file bytes": max(r["bytes"]), "fits": r["budget_bytes"] is None or max(r["bytes"]) <= r["budget_bytes"]}
                  for r in results])

# %% [markdown]
# Every file fits its budget: each route was sized by writing its file. The control, the dense model trained for
# three more epochs, makes about 7 fewer test errors than the dense model itself: the extra epochs alone are worth
# that much, so a route that ends "below the dense model" has not necessarily gained anything from compression.

# %% [markdown]
# ## 4. Which route wins, and by more than the seeds' spread?
#
# `cu.metrics.ranking` orders the routes of one budget by their mean test errors and marks those whose difference
# from the best is within the seed spread (the larger of the two ranges): they are tied with it.

# %%
by_budget = {name: {r["route"]: r["test_errors"] for r in results if r["budget"] == name} for name in budgets}
for name, errors in by_budget.items():
    print(f"within {name} of the bytes ({budgets[name]:,} bytes):")
    display(cu.metrics.table(cu.metrics.ranking(errors)))

# %% [markdown]
# Three seeds cannot separate routes whose difference is within their spread. Which routes are that close is a
# decision, so it is read on the **validation** split: the routes tied there with the best one, and the control when
# the best route is tied with it, are repeated with `EXTRA_SEEDS` (at the same learning rate). Then the test ranking
# of those routes is read again, with every seed.

# %%
val_by_budget = {name: {r["route"]: r["val_per_seed"] for r in results if r["budget"] == name} for name in budgets}
for name, val_errors in val_by_budget.items():
    ranked = cu.metrics.ranking(val_errors)
    close = [r["method"] for r in ranked if r["tied_with_best"]]
    for r in results:
        if r["budget"] == name and r["route"] in close and len(close) > 1:
            cu.routes.add_seeds(setup, r, EXTRA_SEEDS)
    near_control = not cu.metrics.seed_comparison(val_errors[ranked[0]["method"]], control["val_per_seed"])["exceeds_spread"]
    if near_control and len(control["test_errors"]) == len(SEEDS):
        cu.routes.add_seeds(setup, control, EXTRA_SEEDS)
    print(f"within {name} of the bytes, tied with the best on validation: {', '.join(close)}")
    if len(close) > 1:
        display(cu.metrics.table(cu.metrics.ranking({route: by_budget[name][route] for route in close})))
print(f"the dense model: {dense_errors} test errors; trained as long again: {control['test_errors']} "
      f"(mean {mean(control['test_errors']):.1f})")

# %% [markdown]
# Within a tenth of the bytes, the article's full combination, **prune + distil + int8**, makes the fewest errors:
# fewer than the dense model it came from, and as few as the control (157.0 against 157.5, four seeds each). Hard
# pruning + int8, the same without the teacher, is still tied with it after four seeds (14 errors behind, with a
# spread of 19). Within a fortieth, **Deep Compression** is alone in front, about 13 errors (0.13 points) above the
# dense model and far ahead of everything else. The small float32 networks are last at both budgets: at a fortieth
# they have seven neurons per layer.

# %% [markdown]
# Single techniques against each other, and each combination against its parts, at both budgets. A verdict "within
# the seed spread" means the data show no difference.

# %%
questions = [("hard pruning", "small, from scratch"), ("soft pruning, sparse file", "hard pruning"),
             ("distillation", "small, from scratch"), ("hard pruning + distillation", "hard pruning"),
             ("small, from scratch, int8", "small, from scratch"), ("distillation + int8", "small, from scratch, int8"),
             ("hard pruning + int8", "hard pruning"),
             ("prune + distil + int8", "hard pruning + int8"), ("prune + distil + int8", "hard pruning + distillation"),
             ("deep compression", "soft pruning, sparse file")]
rows = []
for name, errors in by_budget.items():
    for a, b in questions:
        row = cu.metrics.seed_comparison(errors[a], errors[b], (a, b))
        rows.append({"budget": name, **row})
cu.metrics.table(rows, ["budget", "comparison", "mean_a", "mean_b", "difference", "seed_spread", "verdict"])

# %% [markdown]
# What the verdicts say:
#
# * **int8 is the biggest single lever.** The same bytes hold four times the weights, and a network four times
#   larger wins by far more than it loses to rounding: about 150 errors fewer from scratch at a tenth and 500 at a
#   fortieth; 120 and 950 fewer for hard pruning.
# * **Starting from the trained model helps, until the network is too small.** At a tenth, hard pruning beats the
#   same architecture trained from scratch by about 60 errors; at a fortieth it loses by about 400. Seven neurons
#   chosen from the dense model's 300 are not a good start: fine-tuning must move them far, while the network from
#   scratch trains all of its epochs for its own shape.
# * **Scattered zeros beat whole neurons** for the same bytes, at both budgets, even though each kept weight pays for
#   its position: at a tenth the sparse file keeps 8.6% of the weights, fewer than the small network's 25,647 of
#   266,610 parameters, but any weight of the dense model can survive, not only those of 31 neurons.
# * **The teacher helps only the widest network trained from scratch.** Trained on the teacher's soft targets, the
#   113-neuron int8 network makes about 20 errors fewer than on the labels alone at a tenth, more than the seed spread
#   of 8. The narrower networks trained from scratch gain nothing measurable (31 and 7 neurons in float32, 26 in int8
#   at a fortieth), and fine-tuning a *pruned* network on the soft targets never helps: it costs about 29 errors for
#   the 31-neuron float32 network at a tenth and for the 26-neuron int8 one at a fortieth, and is within the spread
#   for the 113-neuron int8 one at a tenth. Notebook 03 saw the same pattern: its 2×30 student gained nothing, its
#   2×800 student gained from the teacher.
# * **Weight sharing on top of pruning** is decisive at a fortieth (165 errors fewer than the sparse float32 file)
#   and buys nothing measurable at a tenth (15 errors more, within a spread of 29), where 3-bit codebooks force
#   80% of the weights onto 8 values per layer.

# %% [markdown]
# ## 5. What each model costs
#
# Errors are one column. The others decide whether a model fits a device and its latency: one `cu.metrics.summary`
# row per route (seed 0). A masked or weight-shared model is measured as the device runs it: read back from its
# file, an ordinary dense float32 network (`cu.routes.as_deployed`). Dense kernels take the same time for the same
# shapes whatever the weights' values, so each different network (parameters, MACs and state_dict bytes) is timed
# once, the networks in turn over three rounds (`cu.latency.latencies`), and the routes that run it share that
# median: timing noise cannot make two copies of one network differ.

# %%
deployed = [("none", "dense", dense, dense_bytes)] + [
    (r["budget"], r["route"], cu.routes.as_deployed(r["models"][0]), r["bytes"][0]) for r in results[1:]]
cost_rows, networks = [], {}
for budget, route, model, file_bytes in deployed:
    row = cu.metrics.summary(model, data, name=route, batch_sizes=())
    network = (row["params"], row["macs"], row["size_bytes"])  # the same network computes at the same speed
    networks.setdefault(network, model)
    cost_rows.append({**row, "network": network, "file_bytes": file_bytes, "budget": budget})
timed = {b: cu.latency.latencies(networks, b, block_ms=10) for b in (1, 256)}  # in interleaved rounds: fair between networks
for row in cost_rows:
    row.update({f"latency_ms_b{b}": timed[b][row["network"]].median * 1e3 for b in timed},
               threads=timed[1][row["network"]].threads)
print(f"{len(deployed)} models, {len(networks)} different networks timed")
cu.metrics.table(cost_rows, ["budget", "model", "test_errors", "params", "macs", "file_bytes", "latency_ms_b1",
                             "latency_ms_b256", "threads"])

# %% [markdown]
# Bytes are not time. The soft-pruned and Deep Compression models are dense float32 networks once read from their
# files, so they compute exactly as much as the dense model and take as long. The small float32 networks are about
# four times faster than the dense one at batch 256 at a tenth, and faster still at a fortieth. The int8 networks hold four times more weights in the same
# bytes, so they do four times the multiply-accumulates of the small float32 ones (in 8-bit integers), and they are
# slower than the small float32 ones; at batch 1 they are even slower than the dense model,
# because dynamic quantisation measures and rounds every input before each layer, a fixed cost that a tiny batch does
# not amortise (notebook 04 measured where int8 pays on this CPU).

# %% [markdown]
# Test errors against the file's bytes and against the time of one batch, one point per route and budget (circles:
# a tenth, squares: a fortieth, a diamond: the dense control), the bar from the best seed to the worst. The dashed
# line is the Pareto front: the routes that no other route beats on both axes at once.

# %%
marker = {"none": "D", **dict(zip(budgets, "os"))}
points = [{"label": r["route"], "marker": marker[r["budget"]], "results": r["test_errors"], "bytes": max(r["bytes"]),
           "b1": c["latency_ms_b1"], "b256": c["latency_ms_b256"]} for r, c in zip(results, cost_rows)]
cu.plots.pareto(points, {"bytes": "file (bytes)", "b1": "latency at batch 1 (ms)",
                         "b256": "latency at batch 256 (ms)"},
                title=f"{DATASET}: test errors (mean and range over the seeds), {cost_rows[0]['threads']} threads")
plt.show()

# %% [markdown]
# Read the plots: on the bytes axis, Deep Compression at a fortieth and prune + distil + int8 at a tenth form the
# front; the dense control, with ten times the bytes and no fewer errors, is not on it. At batch 256 the small
# float32 networks are the fastest, and prune + distil + int8 has the fewest errors of all the routes faster than the
# dense model; at batch 1 the int8 networks are slower than the dense model. No route wins on every axis.

# %% [markdown]
# ## 6. Which technique when, from these numbers
#
# Each row of the guide below is computed from the results above: a route is named as the answer only when its
# advantage exceeds the seed spread; otherwise the row says that the data show no difference.

# %%
def answer(name, a, b):
    """The verdict of seed_comparison between routes a and b at one budget, as (answer, evidence)."""
    c = cu.metrics.seed_comparison(by_budget[name][a], by_budget[name][b], (a, b))
    winner = a if c["difference"] < 0 else b
    text = winner if c["exceeds_spread"] else f"no difference between {a} and {b}"
    return text, f"{name}: {c['mean_a']:.1f} against {c['mean_b']:.1f} errors (seed spread {c['seed_spread']:.0f})"


def best(name):
    ranked = cu.metrics.ranking(by_budget[name])
    tied = [r["method"] for r in ranked if r["tied_with_best"]]
    return (" or ".join(tied) if len(tied) > 1 else tied[0]), f"{name}: {ranked[0]['mean']:.1f} errors (dense {dense_errors})"


# %%
guide = [("the fewest errors in " + name + " of the bytes", *best(name)) for name in budgets]
for name in budgets:
    guide += [("a small network: from scratch, or pruned from the trained one?",
               *answer(name, "hard pruning", "small, from scratch")),
              ("scattered zeros or whole neurons, for the same bytes?", *answer(name, "soft pruning, sparse file", "hard pruning")),
              ("a teacher's soft targets for a small network?", *answer(name, "distillation", "small, from scratch")),
              ("a teacher while fine-tuning a pruned network?", *answer(name, "hard pruning + distillation", "hard pruning")),
              ("int8 and four times the weights, or float32?", *answer(name, "small, from scratch, int8", "small, from scratch")),
              ("a teacher's soft targets for an int8 network?", *answer(name, "distillation + int8", "small, from scratch, int8")),
              ("weight sharing on top of pruning?", *answer(name, "deep compression", "soft pruning, sparse file")),
              ("int8 on top of pruning and distillation?", *answer(name, "prune + distil + int8", "hard pruning + distillation")),
              ("a teacher on top of pruning and int8?", *answer(name, "prune + distil + int8", "hard pruning + int8"))]
cu.metrics.table([{"you need": need, "choose": choice, "because": evidence} for need, choice, evidence in guide])

# %% [markdown]
# Where a row names a route, the numbers beside it show an advantage larger than the seed spread; "no difference"
# rows are results too: they say that for this network and budget the extra technique buys nothing measurable.

# %% [markdown]
# And for speed: the routes of each budget whose latency at batch 256 is within 10% of the fastest one's, and among
# them the one with the fewest errors.

# %%
for name in budgets:
    rows_b = [c for c in cost_rows if c["budget"] == name]
    timed = {c["model"]: c["latency_ms_b256"] for c in rows_b}
    fastest = min(rows_b, key=lambda c: c["latency_ms_b256"])
    fast = [c["model"] for c in rows_b if c["latency_ms_b256"] <= 1.1 * fastest["latency_ms_b256"]]
    pick = min(fast, key=lambda route: mean(by_budget[name][route]))
    print(f"{name}: as fast as the fastest ({min(timed.values()):.3f} ms at batch 256): {', '.join(fast)}; "
          f"the fewest errors among them: {pick} ({mean(by_budget[name][pick]):.1f}); the slowest: "
          f"{max(timed, key=timed.get)} ({max(timed.values()):.3f} ms)")

# %% [markdown]
# So the guide splits by what the device lacks. Short of storage: prune and quantise to int8 at a tenth (the
# teacher adds nothing measurable on top of pruning), Deep Compression at a fortieth. Short of time on a CPU or GPU
# with dense kernels: a genuinely smaller network, hard pruned at a tenth; the weight-level routes save bytes but not
# a single multiply-accumulate.

# %% [markdown]
# ## 7. The article's trends and challenges, answered from these numbers
#
# **Edge and IoT devices.** Does a route fit a microcontroller's flash, and at what error?

# %%
fitting = [r for r in results if max(r["bytes"]) <= FLASH_BYTES]
best_fit = min(fitting, key=lambda r: mean(r["test_errors"]))
print(f"the dense model's file, {dense_bytes:,} bytes, fits {FLASH_BYTES // 1024} KiB of flash: {dense_bytes <= FLASH_BYTES}")
print(f"routes whose file fits: {len(fitting)} of {len(results)}; the best: {best_fit['route']} within "
      f"{best_fit['budget']} of the bytes, {max(best_fit['bytes']):,} bytes, {mean(best_fit['test_errors']):.1f} test errors")

# %% [markdown]
# The dense model's megabyte does not fit such a device; every route's file does (the one file that does not is the
# control's, the dense model trained longer), and the best of them is more accurate than the dense model. A real
# microcontroller also needs the int8 kernels (CMSIS-NN, for instance) and RAM for one batch of activations, which
# this notebook does not measure.

# %% [markdown]
# **The cost of compression.** A route costs its own training, plus what it inherits: the dense model's training
# for the routes that start from it, and the teacher's for the routes that distil. Seconds on this machine (the
# median over seeds, sizing included):

# %%
def trained_seconds(kind):
    return sum(row.get("seconds", 0) for row in cu.baselines.training_history(kind, data) or [])


inherited = {"dense": trained_seconds("lenet300-100"), "teacher": trained_seconds("teacher")}
print(f"inherited: the dense model {inherited['dense']:.0f} s, the teacher {inherited['teacher']:.0f} s")
cu.metrics.table([{"budget": r["budget"], "route": r["route"],
                   "own seconds": sorted(r["seconds"])[len(r["seconds"]) // 2],
                   "starts from": cu.routes.starts_from(r["route"]), "uses the teacher": cu.routes.uses_teacher(r["route"])}
                  for r in results])

# %% [markdown]
# Every route's own training takes seconds; what dominates is what it inherits. The distillation routes need a
# teacher that took about seven times as long to train as the dense model, more than one run of every route
# together, so a teacher pays when it already exists (or serves many students). Of the routes themselves, Deep
# Compression (its k-means clustering) and the widest networks trained from scratch are the slowest.

# %% [markdown]
# **Stability.** The seed spread of every route is in the ranking of section 4; here are the routes that vary the
# most and the least from seed to seed.

# %%
spread = {(r["budget"], r["route"]): max(r["test_errors"]) - min(r["test_errors"]) for r in results}
steadiest, wildest = min(spread, key=spread.get), max(spread, key=spread.get)
print(f"test errors from the best seed to the worst: at least {spread[steadiest]} ({steadiest[1]}, {steadiest[0]}), "
      f"at most {spread[wildest]} ({wildest[1]}, {wildest[0]})")

# %% [markdown]
# The tiniest networks are the least stable (the ranking of section 4 shows spreads of 117, 125 and 225 errors for
# the 7-neuron networks from scratch, pruned and distilled, and about 60 for the 26-neuron int8 networks trained
# from scratch), while every other route varies by 29 errors or fewer. That is why every comparison above is worded against the spread.

# %% [markdown]
# **Interpretability.** What does pruning keep? For the two routes that remove single weights, the number of
# surviving first-layer weights that read each input pixel, drawn as an image:

# %%
pixel_maps, titles = [], []
for r in results:
    if r["route"] in ("soft pruning, sparse file", "deep compression") and r["budget"] == list(budgets)[-1]:
        first = cu.routes.as_deployed(r["models"][0])
        weight = next(iter(cu.models.prunable_layers(first).values())).weight
        kept = (weight != 0).sum(0).reshape(28, 28).float()
        pixel_maps.append(kept[None])
        titles.append(f"{r['route']}: {int((kept == 0).sum())} pixels unread")
cu.plots.images(torch.stack(pixel_maps), titles, cols=len(pixel_maps), size=3.5)
plt.show()

# %% [markdown]
# The darker a pixel, the more of its first-layer weights survive. Both routes keep the weights that read the centre
# of the image, where the strokes are, and drop most of those that read the border, which is blank in almost every
# MNIST digit: pruning has learned where the information is. The hundreds of pixels that no weight reads any more are
# inputs the compressed network ignores entirely, a measurable, visible kind of interpretability.
#
# ## Summary
#
# * A budget is a number of bytes, measured on the file; counted that way, int8 and weight sharing hold four to ten
#   times more weights than float32, and they decide the ranking.
# * Within a tenth of the dense model's bytes, prune + distil + int8 is more accurate than the dense model and tied
#   with the dense model trained as long again (and with the same route without the teacher); within a fortieth,
#   Deep Compression is within about 0.13 point of the dense model.
# * Hard pruning beats training the same small network from scratch until the network is too small; the teacher
#   helped only the widest network trained from scratch, never a pruned one; weight sharing pays when the budget
#   forces very few weights.
# * Bytes, multiply-accumulates and milliseconds tell different stories: only a smaller architecture is faster with
#   dense kernels; sparse and shared files save storage only.
# * Every claim above compares means over three seeds (four where the routes were close on the validation split) and
#   is worded only when it exceeds their spread.
