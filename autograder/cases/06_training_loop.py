"""Planted mistakes and correct alternatives for 06_training_loop (see autograder.cases)."""

from autograder.cases import Alternative, Mistake


def _body(head: str, body: str) -> str:
    return head + "".join(f"    {line}\n" if line else "\n" for line in body.strip("\n").splitlines())


# --- make_loaders ---------------------------------------------------------------

_LOADERS_HEAD = "def make_loaders(X, y, batch_size=32, val_fraction=0.2, seed=0):\n"


def _loaders(body: str) -> str:
    return _body(_LOADERS_HEAD, body)


def _split(train: str, val: str, n_val: str = "round(val_fraction * len(X))", options: str = "", val_options: str = "",
           perm: str = "torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()") -> str:
    return _loaders(f"""
dataset = TensorDataset(X, y)
n_val = {n_val}
perm = {perm}
train_set, val_set = {train}, {val}
train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(seed){options})
return train_loader, DataLoader(val_set, batch_size=batch_size{val_options})
""")


_SUBSETS = ("Subset(dataset, perm[n_val:])", "Subset(dataset, perm[:n_val])")

_MAKE_LOADERS = [
    Alternative("make_loaders", "random_split with whole sizes, one generator", _loaders("""
dataset = TensorDataset(X, y)
n_val = round(val_fraction * len(dataset))
generator = torch.Generator().manual_seed(seed)
train_set, val_set = torch.utils.data.random_split(dataset, [len(dataset) - n_val, n_val], generator=generator)
return (DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(val_set, batch_size=batch_size))
""")),
    Alternative("make_loaders", "tensors indexed, int(x + 0.5)", _loaders("""
n_val = int(val_fraction * len(X) + 0.5)
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
val, train = perm[:n_val], perm[n_val:]
return (DataLoader(TensorDataset(X[train], y[train]), batch_size=batch_size, shuffle=True,
                   generator=torch.Generator().manual_seed(seed)),
        DataLoader(TensorDataset(X[val], y[val]), batch_size=batch_size))
""")),
    Mistake("make_loaders", "two_loaders", "not_a_dataloader", _loaders("""
dataset = TensorDataset(X, y)
n_val = round(val_fraction * len(X))
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
return Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val])
"""), name="returns the datasets"),
    Mistake("make_loaders", "two_loaders", "rows_mismatched", _loaders("""
generator = torch.Generator().manual_seed(seed)
X, y = X[torch.randperm(len(X), generator=generator)], y[torch.randperm(len(y), generator=generator)]
n_val = round(val_fraction * len(X))
return (DataLoader(TensorDataset(X[n_val:], y[n_val:]), batch_size=batch_size, shuffle=True,
                   generator=torch.Generator().manual_seed(seed)),
        DataLoader(TensorDataset(X[:n_val], y[:n_val]), batch_size=batch_size))
"""), name="X and y shuffled apart"),
    Mistake("make_loaders", "partition", "wrong_val_size", _split(*_SUBSETS, n_val="int(val_fraction * len(X))"),
            name="int() rounds down"),
    Mistake("make_loaders", "partition", "wrong_val_size", _loaders("""
train_set, val_set = torch.utils.data.random_split(TensorDataset(X, y), [1 - val_fraction, val_fraction],
                                                   generator=torch.Generator().manual_seed(seed))
return (DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(val_set, batch_size=batch_size))
"""), name="random_split with fractions"),
    Mistake("make_loaders", "partition", "overlap", _split("dataset", "Subset(dataset, perm[:n_val])"),
            name="trains on everything"),
    Mistake("make_loaders", "partition", "samples_lost", _split(*_SUBSETS, options=", drop_last=True"),
            name="drops the last batch"),
    Mistake("make_loaders", "seeded_split", "split_not_seeded", _split(*_SUBSETS, perm="torch.randperm(len(X)).tolist()"),
            name="a split from the global generator"),
    Mistake("make_loaders", "seeded_split", "split_not_random", _split("Subset(dataset, range(len(X) - n_val))",
                                                                      "Subset(dataset, range(len(X) - n_val, len(X)))"),
            name="the last fifth"),
    Mistake("make_loaders", "seeded_split", "seed_ignored", _split(
        *_SUBSETS, perm="torch.randperm(len(X), generator=torch.Generator().manual_seed(0)).tolist()"),
        name="ignores the seed"),
    Mistake("make_loaders", "train_shuffled", "train_not_shuffled", _loaders("""
dataset = TensorDataset(X, y)
n_val = round(val_fraction * len(X))
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size),
        DataLoader(Subset(dataset, perm[:n_val]), batch_size=batch_size))
"""), name="no shuffling"),
    Mistake("make_loaders", "train_shuffled", "shuffle_not_seeded", _loaders("""
dataset = TensorDataset(X, y)
n_val = round(val_fraction * len(X))
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size, shuffle=True),
        DataLoader(Subset(dataset, perm[:n_val]), batch_size=batch_size))
"""), name="shuffled by the global generator"),
    Mistake("make_loaders", "val_fixed", "val_shuffled", _split(
        *_SUBSETS, val_options=", shuffle=True, generator=torch.Generator().manual_seed(seed)"),
        name="validation shuffled too"),
    Mistake("make_loaders", "batches", "wrong_batch_size", _loaders("""
dataset = TensorDataset(X, y)
n_val = round(val_fraction * len(X))
perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).tolist()
return (DataLoader(Subset(dataset, perm[n_val:]), batch_size=batch_size, shuffle=True,
                   generator=torch.Generator().manual_seed(seed)),
        DataLoader(Subset(dataset, perm[:n_val]), batch_size=n_val))
"""), name="validation in one batch"),
]

# --- train_one_epoch ------------------------------------------------------------

_EPOCH_HEAD = "def train_one_epoch(model, loader, loss_fn, optimizer):\n"


def _epoch(clear_before=True, clear_after=False, train=True, weighted=True, step=True, as_float=True, last=False,
           loss="loss_fn") -> str:
    lines = ["model.train()" if train else "", "losses = []", "for inputs, targets in loader:"]
    lines += ["    optimizer.zero_grad()"] if clear_before else []
    lines += [f"    loss = {loss}(model(inputs), targets)", "    loss.backward()"]
    lines += ["    optimizer.step()"] if step else []
    lines += ["    optimizer.zero_grad()"] if clear_after else []
    lines += ["    losses.append((loss.detach(), len(targets)))"]
    if last:
        lines += ["return losses[-1][0].item()"]
    else:
        lines += ["mean = sum(value * size for value, size in losses) / sum(size for _, size in losses)" if weighted
                  else "mean = sum(value for value, _ in losses) / len(losses)",
                  "return mean.item()" if as_float else "return mean"]
    return _body(_EPOCH_HEAD, "\n".join(line for line in lines if line))


_TRAIN_ONE_EPOCH = [
    Alternative("train_one_epoch", "model.zero_grad(set_to_none=True), float(), the dataset's length", _body(_EPOCH_HEAD, """
model.train()
total = 0.0
for batch in loader:
    inputs, targets = batch
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    total += float(loss) * inputs.shape[0]
return total / len(loader.dataset)
""")),
    Alternative("train_one_epoch", "also clears after the step", _epoch(clear_after=True)),
    Alternative("train_one_epoch", "optimizer.step(closure)", _body(_EPOCH_HEAD, """
model.train()
total = count = 0
for inputs, targets in loader:
    def closure():
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    total += loss.item() * len(targets)
    count += len(targets)
return total / count
""")),
    Mistake("train_one_epoch", "fresh_steps", "grads_accumulate", _epoch(clear_before=False, clear_after=True),
            name="clears only after the step"),
    Mistake("train_one_epoch", "fresh_steps", "grads_accumulate", _epoch(clear_before=False), name="never clears"),
    Mistake("train_one_epoch", "fresh_steps", "no_step", _epoch(step=False), name="never steps"),
    Mistake("train_one_epoch", "fresh_steps", "wrong_step_count", _body(_EPOCH_HEAD, """
model.train()
total = count = 0
for inputs, targets in loader:
    for _ in range(2):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
    total += loss.item() * len(targets)
    count += len(targets)
return total / count
"""), name="two steps per batch"),
    Mistake("train_one_epoch", "mean_per_sample", "unweighted_mean", _epoch(weighted=False), name="mean of batch means"),
    Mistake("train_one_epoch", "mean_per_sample", "wrong_type", _epoch(as_float=False), name="returns a tensor"),
    Mistake("train_one_epoch", "mean_per_sample", "last_batch_only", _epoch(last=True), name="the last batch's loss"),
    Mistake("train_one_epoch", "train_mode", "missing_train", _epoch(train=False), name="never sets train mode"),
    Mistake("train_one_epoch", "uses_loss_fn", "loss_fn_ignored", _epoch(loss="nn.CrossEntropyLoss()"),
            name="a loss of its own"),
    Mistake("train_one_epoch", "fresh_steps", "raised", _body(_EPOCH_HEAD, """
model.train()
total = count = 0
for inputs, targets in loader:
    optimizer.zero_grad()
    loss = loss_fn(model(inputs.squeeze()), targets.squeeze())
    loss.backward()
    optimizer.step()
    total += loss.item() * len(targets)
    count += len(targets)
return total / count
"""), name="a batch of one loses its batch dimension", hidden_only=True),
]

# --- evaluate -------------------------------------------------------------------

_EVALUATE_HEAD = "def evaluate(model, loader, loss_fn):\n"


def _evaluate(eval_mode=True, no_grad=True, weighted=True, weighted_accuracy=True, percent=False,
              loss="loss_fn") -> str:
    return _body(_EVALUATE_HEAD, f"""
{"model.eval()" if eval_mode else "pass"}
losses, accuracies, sizes = [], [], []
with {"torch.no_grad()" if no_grad else "torch.enable_grad()"}:
    for inputs, targets in loader:
        logits = model(inputs)
        losses.append({loss}(logits, targets).item())
        accuracies.append((logits.argmax(1) == targets).float().mean().item())
        sizes.append(len(targets))
n = sum(sizes)
loss = {"sum(v * s for v, s in zip(losses, sizes)) / n" if weighted else "sum(losses) / len(losses)"}
acc = {"sum(a * s for a, s in zip(accuracies, sizes)) / n" if weighted_accuracy else "sum(accuracies) / len(sizes)"}
return loss, {"acc * 100" if percent else "acc"}
""")


_EVALUATE = [
    Alternative("evaluate", "inference_mode, softmax, the mode put back", _body(_EVALUATE_HEAD, """
was_training = model.training
model.eval()
loss_sum = right = count = 0
with torch.inference_mode():
    for inputs, targets in loader:
        probs = torch.softmax(model(inputs), dim=1)
        loss_sum += loss_fn(model(inputs), targets).item() * targets.numel()
        right += int((probs.argmax(dim=1) == targets).sum())
        count += targets.numel()
model.train(was_training)
return loss_sum / count, right / count
""")),
    Alternative("evaluate", "weighted means of batch values", _evaluate()),
    Mistake("evaluate", "eval_mode", "missing_eval", _evaluate(eval_mode=False), name="no eval mode"),
    Mistake("evaluate", "no_graph", "missing_no_grad", _evaluate(no_grad=False), name="records a graph"),
    Mistake("evaluate", "mean_per_sample", "unweighted_mean", _evaluate(weighted=False), name="mean of batch losses"),
    Mistake("evaluate", "accuracy", "unweighted_mean", _evaluate(weighted_accuracy=False),
            name="mean of batch accuracies"),
    Mistake("evaluate", "accuracy", "percent_not_fraction", _evaluate(percent=True), name="a percentage"),
    Mistake("evaluate", "floats", "wrong_type", _body(_EVALUATE_HEAD, """
model.eval()
with torch.no_grad():
    inputs = torch.cat([x for x, _ in loader])
    targets = torch.cat([t for _, t in loader])
    logits = model(inputs)
    return loss_fn(logits, targets), (logits.argmax(1) == targets).float().mean()
"""), name="tensors, not floats"),
    Mistake("evaluate", "unchanged", "changes_parameters", _body(_EVALUATE_HEAD, """
model.eval()
total = right = count = 0
for inputs, targets in loader:
    logits = model(inputs)
    loss = loss_fn(logits, targets)
    loss.backward()
    total += loss.item() * len(targets)
    right += (logits.argmax(1) == targets).sum().item()
    count += len(targets)
return total / count, right / count
"""), name="a backward pass while measuring"),
    Mistake("evaluate", "uses_loss_fn", "loss_fn_ignored", _evaluate(loss="torch.nn.functional.cross_entropy"), name="a loss of its own"),
]

# --- fit ------------------------------------------------------------------------

_FIT_HEAD = "def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, progress=False):\n"


def _fit(validate_each_epoch=True, train_mode=True, eval_mode=True, no_grad=True, evaluate_first=False,
         bar="tqdm(range(epochs), disable=not progress)", extra="") -> str:
    """A fit written inline, without train_one_epoch and evaluate."""
    return _body(_FIT_HEAD, f"""
history = {{"train_loss": [], "val_loss": [], "val_acc": [], "train_acc": []}}

def validate():
    {"model.eval()" if eval_mode else "pass"}
    total = right = count = 0
    with {"torch.no_grad()" if no_grad else "torch.enable_grad()"}:
        for inputs, targets in val_loader:
            logits = model(inputs)
            total += loss_fn(logits, targets).item() * len(targets)
            right += (logits.argmax(1) == targets).sum().item()
            count += len(targets)
    history["val_loss"].append(total / count)
    history["val_acc"].append(right / count)

for epoch in {bar}:
    if {evaluate_first}:
        validate()
    if {train_mode}:
        model.train()
    total = count = 0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    history["train_loss"].append(total / count)
    history["train_acc"].append(0.0)
    {extra or "pass"}
    if not {evaluate_first} and ({validate_each_epoch} or epoch == epochs - 1):
        validate()
if not {validate_each_epoch}:
    history["val_loss"] *= epochs
    history["val_acc"] *= epochs
return history
""")


def _fit_with(train_loss: str = "epoch_loss", after: str = "") -> str:
    return _body(_FIT_HEAD, f"""
history = {{"train_loss": [], "val_loss": [], "val_acc": []}}
for _ in tqdm(range(epochs), disable=not progress):
    epoch_loss = train_one_epoch(model, train_loader, loss_fn, optimizer)
    measured_loss, _ = evaluate(model, train_loader, loss_fn)
    val_loss, val_acc = evaluate(model, val_loader, loss_fn)
    history["train_loss"].append({train_loss})
    history["val_loss"].append(val_loss)
    history["val_acc"].append(val_acc)
    {after or "pass"}
return history
""")


_FIT = [
    Alternative("fit", "written inline, with an extra key", _fit()),
    Alternative("fit", "also measures the training set", _fit_with()),
    Alternative("fit", "a bar made by hand, closed at the end", _body(_FIT_HEAD, """
history = {"train_loss": [], "val_loss": [], "val_acc": []}
bar = tqdm(total=epochs, disable=not progress)
for _ in range(epochs):
    history["train_loss"].append(train_one_epoch(model, train_loader, loss_fn, optimizer))
    val_loss, val_acc = evaluate(model, val_loader, loss_fn)
    history["val_loss"].append(val_loss)
    history["val_acc"].append(val_acc)
    bar.update(1)
bar.close()
return history
""")),
    Mistake("fit", "validation", "no_validation", _fit(validate_each_epoch=False), name="validates once, at the end"),
    Mistake("fit", "trains", "missing_train", _fit(train_mode=False), name="never switches back to train mode"),
    Mistake("fit", "validation", "missing_eval", _fit(eval_mode=False), name="validates in train mode"),
    Mistake("fit", "validation", "missing_no_grad", _fit(no_grad=False), name="validates with a graph"),
    Mistake("fit", "validation", "wrong_history", _fit(evaluate_first=True), name="validates before training"),
    Mistake("fit", "history", "wrong_type", _body(_FIT_HEAD, """
history = {"train_loss": [], "val_loss": [], "val_acc": []}
for _ in range(epochs):
    history["train_loss"].append(torch.tensor(train_one_epoch(model, train_loader, loss_fn, optimizer)))
    val_loss, val_acc = evaluate(model, val_loader, loss_fn)
    history["val_loss"].append(torch.tensor(val_loss))
    history["val_acc"].append(torch.tensor(val_acc))
return history
"""), name="tensors in the history"),
    Mistake("fit", "history", "wrong_return", _body(_FIT_HEAD, """
for _ in range(epochs):
    train_one_epoch(model, train_loader, loss_fn, optimizer)
"""), name="returns nothing"),
    Mistake("fit", "train_loss", "train_loss_is_val_loss", _fit_with(train_loss="val_loss"),
            name="the validation loss as train_loss"),
    Mistake("fit", "train_loss", "wrong_train_loss", _fit_with(train_loss="measured_loss"),
            name="the training set measured after the epoch"),
    Mistake("fit", "silent", "not_silent", _fit(bar="tqdm(range(epochs))"), name="always shows its bar"),
    Mistake("fit", "silent", "not_silent", _fit(bar="tqdm(range(epochs), disable=progress)"),
            name="the bar's switch the wrong way round"),
    Mistake("fit", "silent", "not_silent", _fit(bar="range(epochs)", extra='print(f"epoch {epoch + 1}")'),
            name="prints every epoch"),
    Mistake("fit", "progress_bar", "no_progress", _fit(bar="range(epochs)"), name="never shows a bar"),
    Mistake("fit", "validation", "evaluate_broken", cells={"evaluate": _evaluate(weighted=False)},
            name="a broken evaluate, named as the cause"),
    Mistake("fit", "validation", "evaluate_broken", cells={"evaluate": _evaluate(eval_mode=False)},
            name="an evaluate without eval mode, named as the cause"),
    Mistake("fit", "train_loss", "train_one_epoch_broken", cells={"train_one_epoch": _epoch(weighted=False)},
            name="a broken train_one_epoch, named as the cause"),
]

# --- plot_history ---------------------------------------------------------------

_PLOT_HEAD = "def plot_history(history):\n"


def _plot(show_only=False, return_axis=False, one_axis=False, labels=True, apart=False, forget_val=False,
          accuracy_left=False) -> str:
    if one_axis:
        layout = "fig, ax = plt.subplots()\naxes = (ax, ax, ax)"
    elif apart:
        layout = "fig, axes = plt.subplots(1, 3)"
    elif accuracy_left:
        layout = "fig, (left, right) = plt.subplots(1, 2)\naxes = (right, right, left)"
    else:
        layout = "fig, (left, right) = plt.subplots(1, 2)\naxes = (left, left, right)"
    lines = [layout, 'axes[0].plot(history["train_loss"])',
             f'axes[1].plot(history["{"train_loss" if forget_val else "val_loss"}"])', 'axes[2].plot(history["val_acc"])']
    if labels:
        lines += ["for ax in set(axes):", '    ax.set_xlabel("epoch")', '    ax.set_ylabel("value")']
    if show_only:
        lines += ["plt.show()", "return None"]
    else:
        lines += ["return axes[0]" if return_axis else "return fig"]
    return _body(_PLOT_HEAD, "\n".join(lines))


_PLOT_HISTORY = [
    Alternative("plot_history", "fig.add_subplot, markers, percent accuracy", _body(_PLOT_HEAD, """
fig = plt.figure()
left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
for key in ("train_loss", "val_loss"):
    left.plot(range(1, len(history[key]) + 1), history[key], "o-", label=key)
right.plot(range(1, len(history["val_acc"]) + 1), [100 * a for a in history["val_acc"]], "s--")
left.set(xlabel="epoch", ylabel="loss")
right.set(xlabel="epoch", ylabel="accuracy (%)")
return fig
""")),
    Alternative("plot_history", "pyplot's current axes, each chosen first", _body(_PLOT_HEAD, """
fig = plt.figure(figsize=(10, 3.5))
plt.subplot(1, 2, 1)
plt.plot(history["train_loss"], label="training")
plt.plot(history["val_loss"], label="validation")
plt.xlabel("epoch")
plt.ylabel("loss")
plt.legend()
plt.subplot(1, 2, 2)
plt.plot(history["val_acc"])
plt.xlabel("epoch")
plt.ylabel("accuracy")
return plt.gcf()
""")),
    Mistake("plot_history", "returns_figure", "no_figure", _plot(show_only=True), name="shows, returns nothing"),
    Mistake("plot_history", "returns_figure", "not_a_figure", _plot(return_axis=True), name="returns an Axes"),
    Mistake("plot_history", "accuracy_right", "too_few_axes", _plot(one_axis=True), name="everything on one axes"),
    Mistake("plot_history", "losses_left", "wrong_axes", _plot(accuracy_left=True), name="the panels swapped"),
    Mistake("plot_history", "labels", "missing_labels", _plot(labels=False), name="no labels"),
    Mistake("plot_history", "losses_left", "losses_apart", _plot(apart=True), name="a panel per curve"),
    Mistake("plot_history", "losses_left", "missing_curve", _plot(forget_val=True), name="the validation loss missing"),
    Mistake("plot_history", "losses_left", "wrong_axes", _body(_PLOT_HEAD, """
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
plt.plot(history["train_loss"], label="training")
plt.plot(history["val_loss"], label="validation")
plt.xlabel("epoch")
plt.ylabel("loss")
plt.plot(history["val_acc"])
return fig
"""), name="plt. into the last axes"),
    Mistake("plot_history", "labels", "missing_labels", _body(_PLOT_HEAD, """
fig, (left, right) = plt.subplots(1, 2)
left.plot(history["train_loss"])
left.plot(history["val_loss"])
right.plot(history["val_acc"])
plt.xlabel("epoch")
plt.ylabel("value")
return fig
"""), name="plt.xlabel labels only the last axes"),
]

# --- predicted_higher_loss --------------------------------------------------------------------

_PREDICTED_HIGHER_LOSS = [
    Alternative("predicted_higher_loss", "the history's key, in a variable",
                'def predicted_higher_loss():\n    choice = "train_loss"\n    return choice\n'),
    Mistake("predicted_higher_loss", "a_choice", "not_a_choice", "def predicted_higher_loss():\n    return 0\n",
            name="a number"),
    Mistake("predicted_higher_loss", "a_choice", "not_a_choice", 'def predicted_higher_loss():\n    return "training"\n',
            name="not one of the two keys"),
    Mistake("predicted_higher_loss", "right_choice", "wrong_prediction",
            'def predicted_higher_loss():\n    return "val_loss"\n', name="the validation loss", hidden_only=True),
]

# --- standardized_loaders ---------------------------------------------------------------------

_STANDARDIZED_HEAD = "def standardized_loaders(X, y, batch_size=32, val_fraction=0.2, seed=0):\n"

_STANDARDIZED_LOADERS = [
    Alternative("standardized_loaders", "the training inputs from the loader's dataset, biased std", _body(_STANDARDIZED_HEAD, """
train_loader, _ = make_loaders(X, y, batch_size, val_fraction, seed)
X_train = torch.stack([inputs for inputs, _ in train_loader.dataset])
mean, std = X_train.mean(dim=0), X_train.std(dim=0, correction=0).clamp_min(1e-6)
return make_loaders((X - mean) / std, y, batch_size, val_fraction, seed)
""")),
    Mistake("standardized_loaders", "no_leak", "validation_leaks", _body(_STANDARDIZED_HEAD, """
mean, std = X.mean(dim=0), X.std(dim=0).clamp_min(1e-6)
return make_loaders((X - mean) / std, y, batch_size, val_fraction, seed)
"""), name="the colleague's helper, unrepaired"),
    Mistake("standardized_loaders", "no_leak", "wrong_scaling", _body(_STANDARDIZED_HEAD, """
train_loader, val_loader = make_loaders(X, y, batch_size, val_fraction, seed)
X_train = torch.cat([inputs for inputs, _ in train_loader])
X_val = torch.cat([inputs for inputs, _ in val_loader])
y_train = torch.cat([targets for _, targets in train_loader])
y_val = torch.cat([targets for _, targets in val_loader])
scale = lambda A: (A - A.mean(dim=0)) / A.std(dim=0).clamp_min(1e-6)
return (DataLoader(TensorDataset(scale(X_train), y_train), batch_size=batch_size, shuffle=True,
                   generator=torch.Generator().manual_seed(seed)),
        DataLoader(TensorDataset(scale(X_val), y_val), batch_size=batch_size))
"""), name="each split scaled by its own statistics", hidden_only=True),
    Mistake("standardized_loaders", "train_standardized", "not_standardized", _body(_STANDARDIZED_HEAD, """
train_loader, _ = make_loaders(X, y, batch_size, val_fraction, seed)
X_train = torch.cat([inputs for inputs, _ in train_loader])
return make_loaders(X / X_train.std(dim=0).clamp_min(1e-6), y, batch_size, val_fraction, seed)
"""), name="scaled but not centred"),
    Mistake("standardized_loaders", "same_split", "wrong_split", _body(_STANDARDIZED_HEAD, """
train_loader, _ = make_loaders(X, y, batch_size, val_fraction, seed)
X_train = torch.cat([inputs for inputs, _ in train_loader])
mean, std = X_train.mean(dim=0), X_train.std(dim=0).clamp_min(1e-6)
return make_loaders((X - mean) / std, y, batch_size, val_fraction, seed + 1)
"""), name="another seed the second time"),
    Mistake("standardized_loaders", "same_split", "make_loaders_broken", cells={"make_loaders": _split(
        *_SUBSETS, perm="torch.randperm(len(X)).tolist()")}, name="make_loaders from the global generator"),
]

# --- training_settings (challenge) --------------------------------------------------------------


def _settings(value: str) -> str:
    return f"def training_settings():\n    return {value}\n"


_TRAINING_SETTINGS = [
    Alternative("training_settings", "batches of 32, faster steps", _settings('{"batch_size": 32, "lr": 0.1, "momentum": 0.9}')),
    Alternative("training_settings", "batches of 8, less momentum",
                _settings('{"batch_size": 8, "lr": 0.05, "momentum": 0.8}')),
    Mistake("training_settings", "target", "below_target", _settings('{"batch_size": 32, "lr": 0.05, "momentum": 0.9}'),
            name="the 30-epoch run's settings"),
    Mistake("training_settings", "target", "below_target", _settings('{"batch_size": 16, "lr": 0.1, "momentum": 0.0}'),
            name="no momentum"),
    Mistake("training_settings", "settings_form", "wrong_settings", _settings('{"batch_size": 4, "lr": 0.1, "momentum": 0.9}'),
            name="batches too small"),
    Mistake("training_settings", "settings_form", "wrong_settings",
            _settings('{"batch_size": 16.0, "lr": 0.1, "momentum": 0.9}'), name="a float batch size"),
    Mistake("training_settings", "settings_form", "wrong_settings", _settings('{"batch_size": 16, "lr": 0.1, "momentum": 1.0}'),
            name="momentum 1"),
    Mistake("training_settings", "settings_form", "missing_keys", _settings('{"batch_size": 16, "lr": 0.1}'),
            name="no momentum key"),
    Mistake("training_settings", "settings_form", "wrong_return", _settings("(16, 0.1, 0.9)"), name="a tuple"),
    Mistake("training_settings", "target", "fit_broken", cells={"fit": _body(_FIT_HEAD, """
loss, acc = evaluate(model, val_loader, loss_fn)
return {"train_loss": [loss] * epochs, "val_loss": [loss] * epochs, "val_acc": [acc] * epochs}
""")}, name="a fit that forgets to train"),
]

CASES = (_MAKE_LOADERS + _TRAIN_ONE_EPOCH + _EVALUATE + _FIT + _PLOT_HISTORY + _PREDICTED_HIGHER_LOSS
         + _STANDARDIZED_LOADERS + _TRAINING_SETTINGS)
