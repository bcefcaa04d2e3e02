"""Diagnostics that teach: for each classic torch.nn mistake, planted in an
otherwise correct notebook, the checks name the cause.

Each row of MISTAKES is the code a learner might write for one exercise. It is
planted in the instructor's solution namespace (tests/support.solution_namespace)
and must be caught with the expected diagnosis code, in a message that names
the cause. Rows marked end_to_end are also planted in a copy of the notebook
that runs through `autograder check`, as a learner would see them.
"""

from __future__ import annotations

import ast
import math
import tempfile
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from autograder import registry
from support import assert_caught, block, check, exercise_line, flat, planted, solution_namespace


@dataclass(frozen=True)
class Mistake:
    what: str  # the mistake, in a learner's words
    notebook: str
    exercise: str  # whose checks must catch it
    code: str  # the diagnosis they must give
    source: str  # the learner's code: replaces the solution cell(s) of the names it defines
    cause: tuple[str, ...]  # the message names the cause: it contains one of these (case-insensitive)
    end_to_end: bool = False

    @property
    def id(self) -> str:
        return f"{self.notebook}-{self.exercise}-{self.code}"

    def defines(self) -> list[str]:
        return [node.name for node in ast.parse(self.source).body
                if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


MISTAKES = [
    # --- 01_tensors ------------------------------------------------------------------
    Mistake("a summing loss, seen in the gradient that relies on it", "01_tensors", "autograd_gradients",
            "mse_broken",
            '''def mse(pred, target):
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return ((pred - target) ** 2).sum()
''', ("your `mse`",)),
    # --- 02_manual_model -------------------------------------------------------------
    Mistake("initial weights drawn from the reseeded global generator", "02_manual_model", "init_params", "global_rng",
            '''def init_params(num_features, seed=0):
    torch.manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = ((torch.rand(num_features, 1) * 2 - 1) * bound).requires_grad_()
    return W, torch.zeros(1, requires_grad=True)
''', ("global random state",)),
    Mistake("initial weights from a clamped normal draw, not uniform", "02_manual_model", "init_params", "not_uniform",
            '''def init_params(num_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = torch.randn(num_features, 1, generator=generator).clamp(-bound, bound).requires_grad_()
    return W, torch.zeros(1, requires_grad=True)
''', ("not spread evenly",)),
    Mistake("invented losses instead of the ones measured", "02_manual_model", "train_manual", "losses_not_measured",
            '''def train_manual(X, y, epochs=100, lr=0.1, seed=0):
    W, b = init_params(X.shape[1], seed=seed)
    for _ in range(epochs):
        bce_loss(forward(X, W, b), y).backward()
        sgd_step([W, b], lr)
    return W, b, [1 / (e + 1) for e in range(epochs)]
''', ("before its step",)),
    Mistake("the seed not passed on to init_params", "02_manual_model", "train_manual", "seed_ignored",
            '''def train_manual(X, y, epochs=100, lr=0.1, seed=0):
    W, b = init_params(X.shape[1])
    losses = []
    for _ in range(epochs):
        loss = bce_loss(forward(X, W, b), y)
        loss.backward()
        sgd_step([W, b], lr)
        losses.append(loss.item())
    return W, b, losses
''', ("does not reach init_params",)),
    Mistake("weight in (1, n) layout instead of (n, 1)", "02_manual_model", "init_params", "weight_layout_transposed",
            '''def init_params(num_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = ((torch.rand(1, num_features, generator=generator) * 2 - 1) * bound).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    return W, b
''', ("one row per feature: shape (5, 1)",), end_to_end=True),
    Mistake("parameters that are not leaf tensors", "02_manual_model", "init_params", "not_leaf",
            '''def init_params(num_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(num_features)
    W = (torch.rand(num_features, 1, generator=generator, requires_grad=True) * 2 - 1) * bound
    return W, torch.zeros(1, requires_grad=True)
''', ("not a leaf",)),
    Mistake("(N,) against (N, 1) broadcasting in the forward pass", "02_manual_model", "forward", "broadcast_shape",
            '''def forward(X, W, b):
    return torch.sigmoid(X @ W + b).squeeze(1)
''', ("broadcasts to an (n, n) matrix",)),
    Mistake("a sigmoid applied twice", "02_manual_model", "forward", "double_sigmoid",
            '''def forward(X, W, b):
    return torch.sigmoid(torch.sigmoid(X @ W + b))
''', ("sigmoid twice",)),
    Mistake("(N,) against (N, 1) broadcasting let through by the loss", "02_manual_model", "bce_loss", "broadcast_shape",
            '''def bce_loss(probs, targets, eps=1e-7):
    probs = probs.clamp(eps, 1 - eps)
    return -(targets * torch.log(probs) + (1 - targets) * torch.log(1 - probs)).mean()
''', ("broadcasting silently turns",)),
    Mistake("no clamping in BCE (inf or NaN)", "02_manual_model", "bce_loss", "missing_clamp",
            '''def bce_loss(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} differ")
    return -(targets * torch.log(probs) + (1 - targets) * torch.log(1 - probs)).mean()
''', ("clamp the probabilities",), end_to_end=True),
    Mistake("sum instead of mean", "02_manual_model", "bce_loss", "sum_not_mean",
            '''def bce_loss(probs, targets, eps=1e-7):
    if probs.shape != targets.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} differ")
    probs = probs.clamp(eps, 1 - eps)
    return -(targets * torch.log(probs) + (1 - targets) * torch.log(1 - probs)).sum()
''', ("sums over the samples",)),
    Mistake("gradients never zeroed", "02_manual_model", "sgd_step", "grads_not_zeroed",
            '''def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
''', ("backward() adds to .grad",)),
    Mistake("gradients never zeroed, seen in training (they accumulate)", "02_manual_model", "train_manual",
            "grads_accumulate",
            '''def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
''', ("gradients are never cleared",)),
    Mistake("the update recorded in the graph", "02_manual_model", "sgd_step", "update_in_graph",
            '''def sgd_step(params, lr):
    for p in params:
        p -= lr * p.grad
        p.grad.zero_()
''', ("torch.no_grad()",), end_to_end=True),
    Mistake("the update makes non-leaf tensors", "02_manual_model", "sgd_step", "update_in_graph",
            '''def sgd_step(params, lr):
    for i, p in enumerate(params):
        params[i] = p - lr * p.grad
''', ("no longer a leaf",)),
    # --- 03_nn_module -----------------------------------------------------------------
    Mistake("bias missing (parameter count off by the number of outputs)", "03_nn_module", "SimpleModel",
            "missing_bias",
            '''class SimpleModel(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = nn.Linear(num_features, 1, bias=False)

    def forward(self, x):
        return torch.sigmoid(self.linear(x))
''', ("bias=false",), end_to_end=True),
    Mistake("super().__init__() missing", "03_nn_module", "ManualLogisticModule", "missing_super_init",
            '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)
''', ("super().__init__()",), end_to_end=True),
    Mistake("W initialised to zeros", "03_nn_module", "ManualLogisticModule", "zero_init",
            '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(num_features, 1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)
''', ("all zeros",)),
    Mistake("parameters kept as plain tensors (nothing registered)", "03_nn_module", "ManualLogisticModule",
            "not_registered",
            '''class ManualLogisticModule(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.W = torch.zeros(num_features, 1, requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b)
''', ("model.parameters() does not see it",)),
    Mistake("a sigmoid applied twice in a module", "03_nn_module", "SimpleModel", "double_sigmoid",
            '''class SimpleModel(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.linear = nn.Linear(num_features, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return torch.sigmoid(self.sigmoid(self.linear(x)))
''', ("sigmoid twice",)),
    Mistake("a manual (n, 1) weight copied into nn.Linear's (1, n) layout", "03_nn_module", "load_manual_weights",
            "weight_layout_transposed",
            '''def load_manual_weights(model, W, b):
    with torch.no_grad():
        model.linear.weight.copy_(W)
        model.linear.bias.copy_(b)
''', ("the transpose of",)),
    Mistake("weights copied into parameters with the copy recorded in the graph", "03_nn_module",
            "load_manual_weights", "update_in_graph",
            '''def load_manual_weights(model, W, b):
    model.linear.weight.copy_(W.T)
    model.linear.bias.copy_(b)
''', ("torch.no_grad()",)),
    # --- 04 and later ----------------------------------------------------------------
    Mistake("layers in a plain Python list (no parameters registered)", "04_sequential",
            "TwoLayerModelNoSequential", "layers_in_plain_list",
            '''class TwoLayerModelNoSequential(nn.Module):
    def __init__(self, num_features, hidden=3):
        super().__init__()
        # A plain list: nn.Module does not look inside it, so neither layer is registered.
        self.layers = [nn.Linear(num_features, hidden), nn.Linear(hidden, 1)]
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()

    # linear1 and linear2 read from the list, so registration is the only thing wrong.
    @property
    def linear1(self):
        return self.layers[0]

    @property
    def linear2(self):
        return self.layers[1]

    def forward(self, x):
        return self.sigmoid(self.linear2(self.relu(self.linear1(x))))
''', ("list",)),
    Mistake("layers left in a plain Python list instead of nn.Sequential", "04_sequential", "make_mlp",
            "layers_in_plain_list",
            '''def make_mlp(sizes, activation=nn.ReLU):
    if len(sizes) < 2:
        raise ValueError(f"make_mlp needs at least two sizes, got {sizes}")
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation())
    return layers
''', ("list",)),
    Mistake("a softmax inside the model before CrossEntropyLoss, which applies its own", "05_loss_optim",
            "DigitsClassifier", "double_softmax",
            '''class DigitsClassifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10), nn.Softmax(dim=1))

    def forward(self, x):
        return self.layers(x)
''', ("softmax",)),
    Mistake("a softmax before a loss that applies its own", "05_loss_optim", "training_step", "double_softmax",
            '''def training_step(model, loss_fn, optimizer, X, y):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(torch.softmax(model(X), dim=1), y)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("softmax",)),
    Mistake("eval() forgotten in evaluation", "06_training_loop", "evaluate", "missing_eval",
            '''def evaluate(model, loader, loss_fn):
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for X, y in loader:
            logits = model(X)
            total_loss += loss_fn(logits, y).item() * len(y)
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    return total_loss / count, correct / count
''', ("eval",)),
    Mistake("no_grad forgotten in evaluation", "06_training_loop", "evaluate", "missing_no_grad",
            '''def evaluate(model, loader, loss_fn):
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for X, y in loader:
        logits = model(X)
        total_loss += loss_fn(logits, y).item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        count += len(y)
    return total_loss / count, correct / count
''', ("no_grad", "graph")),
    Mistake("a checkpoint that pickles the whole module", "07_devices_checkpoints", "save_checkpoint",
            "pickled_module",
            '''def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model_state_dict": model, "optimizer_state_dict": optimizer.state_dict(), "epoch": int(epoch)},
               path)
''', ("state_dict",)),
    Mistake("a move_to that overwrites the caller's dict", "07_devices_checkpoints", "move_to", "modified_input",
            '''def move_to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for key in obj:
            obj[key] = move_to(obj[key], device)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(item, device) for item in obj)
    return obj
''', ("changed the batch it was given", "new container")),
    Mistake("a CNN whose convolution only has to exist", "09_capstone", "DigitsCNN", "conv_not_used",
            '''class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.mlp(x) + 0 * self.conv(x).mean()
''', ("do not carry the signal",)),
    Mistake("dropout without the 1/(1-p) scale", "08_regularization", "inverted_dropout", "missing_dropout_scale",
            '''def inverted_dropout(x, p, training, generator=None):
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep
''', ("1 - p", "1-p", "scale")),
]


def require_checks(notebook: str, exercises: list[str]) -> None:
    """Fail when the notebook's checks lack an exercise that a row is about."""
    missing = [e for e in exercises if e not in registry.exercises(notebook)]
    assert not missing, f"{notebook}'s checks have no exercise {missing}, which the curriculum promises"


def names_the_cause(message: str, mistake: Mistake) -> bool:
    return any(words.lower() in message.lower() for words in mistake.cause)


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_the_mistake_is_caught_and_its_cause_named(mistake):
    require_checks(mistake.notebook, [mistake.exercise])
    namespace = solution_namespace(mistake.notebook)
    exec(compile(mistake.source, f"<{mistake.id}>", "exec"), namespace)
    result = assert_caught(mistake.exercise, namespace, mistake.code)
    assert names_the_cause(result.message, mistake), (
        f"the message does not name the cause (expected one of {mistake.cause}): {result.message}")


def test_every_mistake_of_the_brief_has_a_row():
    codes = {m.code for m in MISTAKES}
    assert {"missing_bias", "weight_layout_transposed", "layers_in_plain_list", "missing_super_init",
            "broadcast_shape", "missing_clamp", "sum_not_mean", "grads_not_zeroed", "grads_accumulate",
            "update_in_graph", "double_softmax", "missing_eval", "missing_no_grad", "missing_dropout_scale",
            "pickled_module"} <= codes


END_TO_END = sorted({m.notebook for m in MISTAKES if m.end_to_end})


@pytest.mark.slow
@pytest.mark.parametrize("notebook", END_TO_END)
def test_autograder_check_shows_the_diagnosis_of_each_planted_mistake(notebook, tmp_path):
    mistakes = [m for m in MISTAKES if m.end_to_end and m.notebook == notebook]
    require_checks(notebook, [m.exercise for m in mistakes])
    sources = {name: m.source for m in mistakes for name in m.defines()}
    assert len(sources) == sum(len(m.defines()) for m in mistakes), "planted mistakes must be in different cells"
    status, output, _ = check("--strict", planted(notebook, tmp_path, **sources))
    assert status == 1
    for mistake in mistakes:
        line = exercise_line(output, mistake.exercise)
        assert f" 0/3  failed: {mistake.code} " in line, line
        assert names_the_cause(flat(block(output, mistake.exercise)), mistake), block(output, mistake.exercise)


# Each row of a later notebook also runs on its own here, to show that its planted
# code really has the mistake it stands for (apart from what the checks say of it).


def _plain_list_model(ns):
    model = ns["TwoLayerModelNoSequential"](5)
    assert list(model.parameters()) == [] and model(torch.randn(4, 5)).shape == (4, 1)


def _plain_list_mlp(ns):
    layers = ns["make_mlp"]([4, 3, 2])
    assert type(layers) is list and [type(m) for m in layers] == [nn.Linear, nn.ReLU, nn.Linear]


def _softmax_model(ns):
    probs = ns["DigitsClassifier"]()(torch.randn(6, 64))
    assert torch.allclose(probs.sum(dim=1), torch.ones(6))


def _softmax_step(ns):
    model = nn.Linear(64, 10)
    loss = ns["training_step"](model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                               torch.randn(8, 64), torch.randint(0, 10, (8,)))
    assert type(loss) is float and loss > math.log(10) - 0.1, "softmax then cross-entropy starts near log(10)"


def _evaluation(ns, eval_mode, graph):
    seen = []
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    model.register_forward_hook(lambda module, args, out: seen.append((module.training, out.requires_grad)))
    loader = [(torch.randn(5, 4), torch.randint(0, 3, (5,))) for _ in range(2)]
    loss, accuracy = ns["evaluate"](model, loader, nn.CrossEntropyLoss())
    assert type(loss) is float and type(accuracy) is float
    assert seen == [(not eval_mode, graph)] * 2


def _pickled(ns):
    model = nn.Linear(2, 1)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/checkpoint.pt"
        ns["save_checkpoint"](path, model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
        with pytest.raises(Exception):
            torch.load(path, weights_only=True)
        assert isinstance(torch.load(path, weights_only=False)["model_state_dict"], nn.Module)


def _in_place_move(ns):
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), "id")}
    moved = ns["move_to"](batch, torch.device("meta"))
    assert moved is batch and batch["x"].device.type == "meta", "the caller's own dict now holds the moved tensors"


def _idle_conv(ns):
    model = ns["DigitsCNN"]()
    images = torch.rand(4, 1, 8, 8)
    before = model(images)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
    assert torch.equal(model(images), before), "switching the convolution off changes nothing"


def _unscaled(ns):
    x = torch.ones(1000)
    out = ns["inverted_dropout"](x, 0.5, True, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0.0, 1.0}, "survivors keep their value instead of doubling"


SYMPTOMS = {
    "04_sequential-TwoLayerModelNoSequential-layers_in_plain_list": _plain_list_model,
    "04_sequential-make_mlp-layers_in_plain_list": _plain_list_mlp,
    "05_loss_optim-DigitsClassifier-double_softmax": _softmax_model,
    "05_loss_optim-training_step-double_softmax": _softmax_step,
    "06_training_loop-evaluate-missing_eval": lambda ns: _evaluation(ns, eval_mode=False, graph=False),
    "06_training_loop-evaluate-missing_no_grad": lambda ns: _evaluation(ns, eval_mode=True, graph=True),
    "07_devices_checkpoints-save_checkpoint-pickled_module": _pickled,
    "07_devices_checkpoints-move_to-modified_input": _in_place_move,
    "08_regularization-inverted_dropout-missing_dropout_scale": _unscaled,
    "09_capstone-DigitsCNN-conv_not_used": _idle_conv,
}
LATER = [m for m in MISTAKES if m.notebook >= "04"]


def test_every_row_of_a_later_notebook_has_its_symptom_shown():
    assert sorted(SYMPTOMS) == sorted(m.id for m in LATER)


@pytest.mark.parametrize("mistake", LATER, ids=[m.id for m in LATER])
def test_the_planted_code_of_a_later_notebook_runs_and_shows_its_mistake(mistake):
    namespace = {"torch": torch, "nn": nn, "math": math}
    exec(compile(mistake.source, f"<{mistake.id}>", "exec"), namespace)
    SYMPTOMS[mistake.id](namespace)
