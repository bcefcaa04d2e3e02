"""Planted mistakes and correct alternatives for 08_regularization (see autograder/cases/__init__.py).

Each mistake breaks one rule of its exercise's text and must be caught by that rule's check with the
diagnosis given; each alternative is correct, written another way.
"""

from autograder.cases import Alternative, Mistake

# --- inverted_dropout -----------------------------------------------------------------


def _dropout(body: str, validate: bool = True) -> str:
    check = '''    if not 0 <= p <= 1:
        raise ValueError(p)
''' if validate else ""
    return f'''
def inverted_dropout(x, p, training, generator=None):
{check}{body}'''


_BODY = '''    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
'''

_DROPOUT = [
    Mistake("inverted_dropout", "drop_rate", "keep_and_drop_swapped", name="p as the share kept", code=_dropout(
        _BODY + "    return x * (torch.rand(x.shape, generator=generator) < p) / (1 - p)\n")),
    Mistake("inverted_dropout", "scales_survivors", "missing_dropout_scale", name="no scale", code=_dropout(
        _BODY + "    return x * (torch.rand(x.shape, generator=generator) < 1 - p)\n")),
    Mistake("inverted_dropout", "scales_survivors", "wrong_scale", name="scaled by (1 - p)", code=_dropout(
        _BODY + "    return x * (torch.rand(x.shape, generator=generator) < 1 - p) * (1 - p)\n")),
    Mistake("inverted_dropout", "identity_when_off", "dropout_in_eval", name="training ignored", code=_dropout('''
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)
''')),
    Mistake("inverted_dropout", "p_one_zeros", "p_one_not_zero", name="a division by zero at p=1", code=_dropout('''
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)
''')),
    Mistake("inverted_dropout", "validates_p", "p_not_validated", name="no validation", code=_dropout('''
    if not training or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)
''', validate=False)),
    Mistake("inverted_dropout", "validates_p", "p_not_validated", name="validated in training only", code=_dropout('''
    if not training:
        return x
    if not 0 <= p <= 1:
        raise ValueError(p)
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)
''', validate=False)),
    Mistake("inverted_dropout", "uses_generator", "generator_ignored", name="the generator ignored", code=_dropout(
        _BODY + "    return x * (torch.rand(x.shape) < 1 - p) / (1 - p)\n")),
    Mistake("inverted_dropout", "fresh_mask", "same_mask_every_call", name="a seeded default generator",
            code=_dropout("    generator = generator or torch.Generator().manual_seed(0)\n" + _BODY +
                          "    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)\n")),
    Mistake("inverted_dropout", "never_modifies_x", "modified_input", name="zeros written into x", code=_dropout(
        _BODY + '''    drop = torch.rand(x.shape, generator=generator) < p
    x[drop] = 0
    return x / (1 - p)
''')),
    Mistake("inverted_dropout", "gradients_flow", "detached", name="the graph cut", code=_dropout(
        _BODY + "    return (x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)).detach()\n")),
    Alternative("inverted_dropout", "torch.bernoulli", '''
def inverted_dropout(x, p, training, generator=None):
    if p < 0 or p > 1:
        raise ValueError("p must lie in [0, 1]")
    if not training:
        return x.clone()
    if p == 1:
        return x * 0
    mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return mask * x / (1 - p)
'''),
    Alternative("inverted_dropout", "torch.where", '''
def inverted_dropout(x, p, training, generator=None):
    if not (0.0 <= p <= 1.0):
        raise ValueError(p)
    if training and p > 0:
        keep = torch.rand(x.shape, generator=generator) >= p
        return torch.where(keep, x / (1 - p) if p < 1 else torch.zeros_like(x), torch.zeros_like(x))
    return x
'''),
]

# --- predict, then run: eval_prediction -----------------------------------------------

_EVAL_PREDICTION = [
    Mistake("eval_prediction", "pair_of_booleans", "not_a_pair_of_booleans", name="words", code='''
def eval_prediction():
    return ("yes", "yes")
'''),
    Mistake("eval_prediction", "matches_the_run", "wrong_prediction", name="no graph after eval()",
            hidden_only=True, code='''
def eval_prediction():
    return (False, True)
'''),
    Alternative("eval_prediction", "a list", '''
def eval_prediction():
    return [True, True]
'''),
]

# --- RegularizedMLP -------------------------------------------------------------------


def _mlp(layers: str) -> str:
    """A RegularizedMLP whose Sequential holds ``layers`` (f, h, c and p are the constructor's arguments)."""
    return f'''
class RegularizedMLP(nn.Module):
    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        f, h, c, p = num_features, hidden, num_classes, p_drop
        self.network = nn.Sequential({layers})

    def forward(self, x):
        return self.network(x)
'''


_ATTRIBUTES = '''
class RegularizedMLP(nn.Module):
    def __init__(self, num_features, hidden, num_classes, p_drop=0.5):
        super().__init__()
        self.fc1 = nn.Linear(num_features, hidden, bias=False)
        self.bn = nn.BatchNorm1d(hidden)
        self.p_drop = p_drop
        self.dropout = nn.Dropout(p=p_drop)
        self.fc2 = nn.Linear(hidden, num_classes)
'''

_MLP = [
    Mistake("RegularizedMLP", "layers", "missing_batchnorm", name="no batch norm", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "layers", "wrong_order", name="the ReLU before the batch norm", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.ReLU(), nn.BatchNorm1d(h), nn.Dropout(p), nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "layers", "wrong_order", name="dropout on the inputs", code=_mlp(
        "nn.Dropout(p), nn.Linear(f, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "layers", "wrong_order", name="dropout on the logits", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, c), nn.Dropout(p)")),
    Mistake("RegularizedMLP", "layers", "p_drop_ignored", name="a fixed rate of 0.5", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5), nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "layers", "missing_dropout", name="no dropout", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "raw_logits", "softmax_in_model", name="a softmax at the end", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c), "
        "nn.Softmax(dim=1)")),
    Mistake("RegularizedMLP", "stats_are_buffers", "no_running_stats", name="no running statistics", code=_mlp(
        "nn.Linear(f, h, bias=False), nn.BatchNorm1d(h, track_running_stats=False), nn.ReLU(), nn.Dropout(p), "
        "nn.Linear(h, c)")),
    Mistake("RegularizedMLP", "train_eval", "dropout_in_eval", name="F.dropout always on", code=_ATTRIBUTES + '''
    def forward(self, x):
        return self.fc2(F.dropout(torch.relu(self.bn(self.fc1(x))), self.p_drop))
'''),
    Mistake("RegularizedMLP", "train_eval", "running_stats_ignored", name="no normalisation in eval mode",
            code=_ATTRIBUTES + '''
    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(self.dropout(F.relu(self.bn(h) if self.training else h)))
'''),
    Mistake("RegularizedMLP", "train_eval", "stats_updated_in_eval", name="batch norm forced into train mode",
            code=_ATTRIBUTES + '''
    def forward(self, x):
        self.bn.train()
        return self.fc2(self.dropout(F.relu(self.bn(self.fc1(x)))))
'''),
    Mistake("RegularizedMLP", "no_dead_weight", "dead_weight", name="a bias before the batch norm", code=_mlp(
        "nn.Linear(f, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, c)")),
    Alternative("RegularizedMLP", "attributes and F.relu", _ATTRIBUTES + '''
    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.bn(self.fc1(x)))))
'''),
    Alternative("RegularizedMLP", "F.dropout with training=self.training", _ATTRIBUTES + '''
    def forward(self, x):
        return self.fc2(F.dropout(torch.relu(self.bn(self.fc1(x))), self.p_drop, training=self.training))
'''),
]

# --- predict --------------------------------------------------------------------------

_PREDICT = [
    Mistake("predict", "eval_mode", "missing_eval", name="in train mode", code='''
def predict(model, X):
    with torch.no_grad():
        return model(X).argmax(dim=1)
'''),
    Mistake("predict", "no_graph", "missing_no_grad", name="detached afterwards", code='''
def predict(model, X):
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        return model(X).detach().argmax(dim=1)
    finally:
        for module, mode in modes:
            module.training = mode
'''),
    Mistake("predict", "class_indices", "returns_scores", name="probabilities", code='''
def predict(model, X):
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            return torch.softmax(model(X), dim=1)
    finally:
        for module, mode in modes:
            module.training = mode
'''),
    Mistake("predict", "class_indices", "returns_scores", name="the largest scores", code='''
def predict(model, X):
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            return model(X).max(dim=1).values
    finally:
        for module, mode in modes:
            module.training = mode
'''),
    Mistake("predict", "restores_every_mode", "mode_not_restored", name="left in eval mode", code='''
def predict(model, X):
    model.eval()
    with torch.no_grad():
        return model(X).argmax(dim=1)
'''),
    Mistake("predict", "restores_every_mode", "mode_not_restored", name="always back to train mode", code='''
def predict(model, X):
    model.eval()
    try:
        with torch.no_grad():
            return model(X).argmax(dim=1)
    finally:
        model.train()
'''),
    Mistake("predict", "restores_every_mode", "mode_not_restored", name="the attribute set by hand", code='''
def predict(model, X):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(X).argmax(dim=1)
    finally:
        model.training = was_training
'''),
    Mistake("predict", "restores_every_mode", "mode_not_restored",
            name="the top-level mode alone, not on error (issue 22)", code='''
def predict(model, X):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        classes = model(X).argmax(dim=1)
    model.train(was_training)
    return classes
'''),
    Mistake("predict", "restores_every_mode", "mode_not_restored", name="the top-level mode alone", code='''
def predict(model, X):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(X).argmax(dim=1)
    finally:
        model.train(was_training)
'''),
    Mistake("predict", "restores_on_error", "mode_not_restored_on_error", name="every mode, but not on error",
            code='''
def predict(model, X):
    modes = {module: module.training for module in model.modules()}
    model.eval()
    with torch.no_grad():
        classes = model(X).argmax(dim=1)
    for module, mode in modes.items():
        module.train(mode)
    return classes
'''),
    Alternative("predict", "inference_mode and torch.max", '''
def predict(model, X):
    modes = {name: module.training for name, module in model.named_modules()}
    model.eval()
    try:
        with torch.inference_mode():
            return torch.max(model(X), 1).indices
    finally:
        for name, module in model.named_modules():
            module.training = modes[name]
'''),
    Alternative("predict", "a context manager", '''
import contextlib

@contextlib.contextmanager
def evaluating(model):
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes:
            module.train(mode) if not list(module.children()) else setattr(module, "training", mode)

def predict(model, X):
    with evaluating(model), torch.no_grad():
        return torch.softmax(model(X), dim=1).argmax(dim=1)
'''),
]

# --- repair: DeepDropoutMLP -----------------------------------------------------------


def _deep(dropouts: str, forward: str = "x = dropout(torch.relu(layer(x)))",
          layers: str = "self.layers") -> str:
    return f'''
class DeepDropoutMLP(nn.Module):
    def __init__(self, sizes, p_drop=0.5):
        super().__init__()
        {layers} = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.p_drop = p_drop
        self.dropouts = {dropouts}

    def forward(self, x):
        for layer, dropout in zip({layers}, self.dropouts):
            {forward}
        return {layers}[-1](x)
'''


_DEEP = [
    Mistake("DeepDropoutMLP", "same_network", "network_changed", name="the layers renamed", code=_deep(
        "nn.ModuleList(nn.Dropout(p_drop) for _ in sizes[1:-1])", layers="self.linears")),
    Mistake("DeepDropoutMLP", "no_dropout_in_eval", "dropout_in_eval", name="the given code", code=_deep(
        "[nn.Dropout(p_drop) for _ in sizes[1:-1]]")),
    Mistake("DeepDropoutMLP", "no_dropout_in_eval", "dropout_in_eval", name="F.dropout without training", code=_deep(
        "list(sizes[1:-1])", forward="x = F.dropout(torch.relu(layer(x)), self.p_drop)")),
    Mistake("DeepDropoutMLP", "dropout_in_train", "missing_dropout", name="the dropouts removed", code=_deep(
        "nn.ModuleList(nn.Identity() for _ in sizes[1:-1])")),
    Mistake("DeepDropoutMLP", "dropout_in_train", "wrong_rate", name="a fixed rate of 0.5", code=_deep(
        "nn.ModuleList(nn.Dropout(0.5) for _ in sizes[1:-1])")),
    Mistake("DeepDropoutMLP", "dropout_in_train", "wrong_rate", name="after the first hidden layer only", code=_deep(
        "nn.ModuleList([nn.Dropout(p_drop)] + [nn.Identity() for _ in sizes[2:-1]])")),
    Mistake("DeepDropoutMLP", "dropout_in_train", "wrong_scale", name="survivors not scaled", code=_deep(
        "list(sizes[1:-1])",
        forward="x = torch.relu(layer(x))\n            x = x * (torch.rand(x.shape) >= self.p_drop) if self.training else x")),
    Alternative("DeepDropoutMLP", "one shared nn.Dropout", '''
class DeepDropoutMLP(nn.Module):
    def __init__(self, sizes, p_drop=0.5):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(p_drop)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.dropout(torch.relu(layer(x)))
        return self.layers[-1](x)
'''),
    Alternative("DeepDropoutMLP", "F.dropout with training=self.training", _deep(
        "list(sizes[1:-1])", forward="x = F.dropout(torch.relu(layer(x)), self.p_drop, training=self.training)")),
]

# --- challenge: train_despite_noise ---------------------------------------------------


def _trainer(layers: str, epochs: int = 200, weight_decay: float = 0.0, before: str = "") -> str:
    return f'''
def train_despite_noise(X, y):
{before}    torch.manual_seed(0)
    model = nn.Sequential({layers})
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay={weight_decay})
    model.train()
    for _ in range({epochs}):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model
'''


_WIDE = "nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)"
_DROPPED = "nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.8), nn.Linear(256, 10)"

_NOISE = [
    Mistake("train_despite_noise", "logits", "wrong_shape", name="classes, not logits", code='''
class Classes(nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x).argmax(dim=1)
''' + _trainer(_DROPPED).replace("    return model\n", "    return Classes(model)\n")),
    Mistake("train_despite_noise", "accuracy", "below_target", name="the plain network", code=_trainer(_WIDE)),
    Mistake("train_despite_noise", "cpu_budget", "over_time_budget", name="11 s of CPU", code='''
import time

burnt = []
''' + _trainer(_DROPPED, before='''    if not burnt:  # the first call only, so that planting this costs one budget, not every test's
        burnt.append(True)
        started = time.process_time()
        while time.process_time() - started < 10.5:
            sum(range(10_000))
''')),
    Mistake("train_despite_noise", "given_data_only", "loads_other_data", name="loads the digits itself", code='''
from autograder.data import load_digits
''' + _trainer(_DROPPED, before="    X, y = load_digits()\n")),
    Mistake("train_despite_noise", "given_data_only", "below_target", hidden_only=True,
            name="nearest neighbour over every clean digit, loaded at cell time (issue 22)", code='''
class Nearest(nn.Module):
    def __init__(self, X, y):
        super().__init__()
        self.register_buffer("digits", X.clone())
        self.register_buffer("labels", y.clone())

    def forward(self, x):
        return F.one_hot(self.labels[torch.cdist(x, self.digits).argmin(dim=1)], 10).float()


clean_digits = Nearest(X, y)   # the notebook's X and y: every digit, with its true label


def train_despite_noise(X, y):
    return clean_digits
'''),
    Alternative("train_despite_noise", "weight decay and fewer epochs", _trainer(_WIDE, epochs=30, weight_decay=0.05)),
    Alternative("train_despite_noise", "early stopping on 60 digits kept aside", '''
import copy

def train_despite_noise(X, y):
    torch.manual_seed(0)
    fit_X, fit_y, held_X, held_y = X[60:], y[60:], X[:60], y[:60]
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    best = (float("inf"), None)
    for _ in range(100):
        model.train()
        for start in range(0, len(fit_X), 40):
            optimizer.zero_grad()
            F.cross_entropy(model(fit_X[start:start + 40]), fit_y[start:start + 40]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            loss = F.cross_entropy(model(held_X), held_y).item()
        if loss < best[0]:
            best = (loss, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    return model
'''),
]

CASES = _DROPOUT + _EVAL_PREDICTION + _MLP + _PREDICT + _DEEP + _NOISE
