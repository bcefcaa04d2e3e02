"""Planted mistakes and correct alternatives for 09_capstone (see autograder/cases/__init__.py).

Each mistake breaks one rule of its exercise's text and must be caught by that rule's check with the
diagnosis given; each alternative is correct, written another way.
"""

from autograder.cases import Alternative, Mistake

# --- predict, then run: conv_prediction -----------------------------------------------------

_PREDICTION = [
    Mistake("conv_prediction", "form", "wrong_form", name="the shape as a string", code='''
def conv_prediction():
    return 1168, "(4, 16, 13, 13)"
'''),
    Mistake("conv_prediction", "form", "wrong_form", name="a count as a float", code='''
def conv_prediction():
    return 1168.0, (4, 16, 13, 13)
'''),
    Mistake("conv_prediction", "matches_the_run", "wrong_prediction", hidden_only=True,
            name="as if padded (the shape after a padded convolution)", code='''
def conv_prediction():
    return 1168, (4, 16, 14, 14)
'''),
    Mistake("conv_prediction", "matches_the_run", "wrong_prediction", hidden_only=True,
            name="one filter per output channel, not per input channel too", code='''
def conv_prediction():
    return 16 * 3 * 3 + 16, (4, 16, 13, 13)
'''),
    Alternative("conv_prediction", "lists, worked out in the cell", '''
def conv_prediction():
    weights = 16 * 8 * 3 * 3
    side = (28 - 3 + 1) // 2
    return [weights + 16, [4, 16, side, side]]
'''),
    Alternative("conv_prediction", "a torch.Size", '''
def conv_prediction():
    return 1168, torch.Size([4, 16, 13, 13])
'''),
]

# --- DigitsCNN --------------------------------------------------------------------------------

_CONV_BLOCKS = '''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def features(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        return nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
'''


def _sequential(layers: str) -> str:
    return f'''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential({layers})

    def forward(self, x):
        return self.net(x)
'''


_CNN = [
    Mistake("DigitsCNN", "logits", "wrong_input_shape", name="expects flat rows of pixels", code='''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(64, 64)
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.embed(x).reshape(-1, 1, 8, 8)
        return self.fc(torch.relu(self.conv(x)).flatten(1))
'''),
    Mistake("DigitsCNN", "logits", "wrong_flatten", name="x.view(-1, 64) on 128 features per image", code='''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 4)   # (N, 32, 2, 2): 128 numbers per image
        return self.fc(x.view(-1, 64))
'''),
    Mistake("DigitsCNN", "raw_logits", "softmax_in_model", name="a softmax at the end", code=_sequential(
        "nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10), "
        "nn.Softmax(dim=1)")),
    Mistake("DigitsCNN", "raw_logits", "softmax_in_model", name="a log-softmax at the end", code=_sequential(
        "nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10), "
        "nn.LogSoftmax(dim=1)")),
    Mistake("DigitsCNN", "conv_carries_signal", "missing_conv2d", name="a multi-layer perceptron", code=_sequential(
        "nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)")),
    Mistake("DigitsCNN", "conv_carries_signal", "conv_not_used", name="an idle convolution beside an MLP", code='''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x) + 0 * self.conv(x).mean()
'''),
    Mistake("DigitsCNN", "max_numbers", "too_many_parameters", name="no pooling before a wide Linear", code=_sequential(
        "nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), "
        "nn.Linear(128, 10)")),
    Mistake("DigitsCNN", "max_numbers", "numbers_outside_parameters", name="the head kept in buffers", code='''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 128, 3, padding=1)
        self.register_buffer("head_weight", torch.randn(10, 128 * 8 * 8) * 0.01)
        self.register_buffer("head_bias", torch.zeros(10))

    def forward(self, x):
        features = torch.relu(self.conv(x)).flatten(1)
        return nn.functional.linear(features, self.head_weight, self.head_bias)
'''),
    Mistake("DigitsCNN", "batch_independent", "no_running_stats", name="batch norm without running statistics",
            code=_sequential("nn.Conv2d(1, 12, 3), nn.BatchNorm2d(12, track_running_stats=False), nn.ReLU(), "
                             "nn.Flatten(), nn.Linear(12 * 6 * 6, 10)")),
    Mistake("DigitsCNN", "batch_independent", "mixes_samples", name="a transpose across the batch before flattening",
            code=_CONV_BLOCKS + '''
    def forward(self, x):
        x = self.features(x)
        return self.fc(x.transpose(0, 1).reshape(len(x), -1))
'''),
    Mistake("DigitsCNN", "end_to_end", "detached", name="the features detached", code=_CONV_BLOCKS + '''
    def forward(self, x):
        return self.fc(self.features(x).detach().flatten(1))
'''),
    Mistake("DigitsCNN", "end_to_end", "detached", name="a layer never used", code=_CONV_BLOCKS.replace(
        "        self.fc = nn.Linear(32 * 2 * 2, 10)\n",
        "        self.fc = nn.Linear(32 * 2 * 2, 10)\n        self.extra = nn.Linear(10, 10)\n") + '''
    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
'''),
    Alternative("DigitsCNN", "functional pooling and flatten(1)", _CONV_BLOCKS + '''
    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
'''),
    Alternative("DigitsCNN", "batch norm, no padding, nn.Flatten", _sequential(
        "nn.Conv2d(1, 12, 3), nn.BatchNorm2d(12), nn.ReLU(), nn.Flatten(), nn.Linear(12 * 6 * 6, 10)")),
    Alternative("DigitsCNN", "adaptive average pooling and a view with the batch size", '''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = self.features(x)
        return self.head(x.view(x.size(0), -1))
'''),
]

# --- train_digits -----------------------------------------------------------------------------


def _trainer(images: str = "X.reshape(-1, 1, 8, 8)", seed: str = "torch.manual_seed(seed)", split_seed: str = "seed",
             optimizer: str = "torch.optim.Adam(model.parameters(), lr=0.01)", epochs: str = "epochs",
             loaders: str = "", returned: str = "model, history") -> str:
    return f'''
def train_digits(epochs=20, seed=0):
    {seed}
    X, y = load_digits()
    train_loader, val_loader = make_loaders({images}, y, batch_size=128, seed={split_seed})
{loaders}    model = DigitsCNN()
    optimizer = {optimizer}
    history = fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, {epochs})
    return {returned}
'''


_TRAIN = [
    Mistake("train_digits", "returns", "wrong_return", name="the model alone", code=_trainer(returned="model")),
    Mistake("train_digits", "returns", "wrong_return", name="history first", code=_trainer(returned="history, model")),
    Mistake("train_digits", "returns", "wrong_history", name="a fixed number of epochs", code=_trainer(epochs="3")),
    Mistake("train_digits", "returns", "DigitsCNN_broken", name="a DigitsCNN whose flatten mixes images, blamed",
            code=_trainer(), cells={"DigitsCNN": '''
class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(x.view(-1, 64))
'''}),
    Mistake("train_digits", "images", "wrong_input_shape", name="flat rows of pixels", code=_trainer(images="X")),
    Mistake("train_digits", "images", "wrong_input_shape", name="no channel dimension",
            code=_trainer(images="X.reshape(-1, 8, 8)")),
    Mistake("train_digits", "images", "wrong_reshape", name="transposed digits",
            code=_trainer(images="X.reshape(-1, 8, 8, 1).transpose(1, 3)")),
    Mistake("train_digits", "seeded", "not_seeded", name="never seeded", code=_trainer(seed="pass")),
    Mistake("train_digits", "seeded", "seed_ignored", name="always seed 0",
            code=_trainer(seed="torch.manual_seed(0)", split_seed="0")),
    Mistake("train_digits", "training_split_only", "trains_on_validation", name="trains on every digit",
            code=_trainer(loaders="    train_loader = DataLoader(TensorDataset(X.reshape(-1, 1, 8, 8), y), "
                                  "batch_size=128, shuffle=True)\n")),
    Mistake("train_digits", "training_split_only", "trains_on_validation",
            name="returns the epoch with the best validation accuracy", code='''
import copy

def train_digits(epochs=20, seed=0):
    torch.manual_seed(seed)
    X, y = load_digits()
    train_loader, val_loader = make_loaders(X.reshape(-1, 1, 8, 8), y, batch_size=128, seed=seed)
    model = DigitsCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    best = (-1.0, None)
    for _ in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, nn.CrossEntropyLoss(), optimizer))
        loss, accuracy = evaluate(model, val_loader, nn.CrossEntropyLoss())
        history["val_loss"].append(loss)
        history["val_acc"].append(accuracy)
        if accuracy > best[0]:
            best = (accuracy, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    return model, history
'''),
    Mistake("train_digits", "history_matches", "history_mismatch", name="trains a copy, returns the original",
            code='''
import copy

def train_digits(epochs=20, seed=0):
    torch.manual_seed(seed)
    X, y = load_digits()
    train_loader, val_loader = make_loaders(X.reshape(-1, 1, 8, 8), y, batch_size=128, seed=seed)
    model = DigitsCNN()
    trained = copy.deepcopy(model)
    optimizer = torch.optim.Adam(trained.parameters(), lr=0.01)
    history = fit(trained, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, epochs)
    return model, history
'''),
    Mistake("train_digits", "accuracy", "low_accuracy", name="a learning rate far too small",
            code=_trainer(optimizer="torch.optim.SGD(model.parameters(), lr=1e-4)")),
    Alternative("train_digits", "SGD with momentum and a view", _trainer(
        images="X.view(len(X), 1, 8, 8)", optimizer="torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)")),
    Alternative("train_digits", "the notebook's X and y, and a loop of its own", '''
def train_digits(epochs=20, seed=0):
    torch.manual_seed(seed)
    train_loader, val_loader = make_loaders(X.unsqueeze(1).unflatten(2, (8, 8)), y, batch_size=64, seed=seed)
    model = DigitsCNN()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        history["train_loss"].append(train_one_epoch(model, train_loader, nn.functional.cross_entropy, optimizer))
        loss, accuracy = evaluate(model, val_loader, nn.functional.cross_entropy)
        history["val_loss"].append(loss)
        history["val_acc"].append(accuracy)
    return model, history
'''),
]

# --- confusion_matrix -------------------------------------------------------------------------


def _matrix(body: str, before: str = "    model.eval()\n", grad: str = "with torch.no_grad():") -> str:
    return f'''
def confusion_matrix(model, loader, num_classes=10):
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
{before}    {grad}
        for inputs, targets in loader:
{body}    return matrix
'''


_LOOP = '''            for t, p in zip(targets.tolist(), model(inputs).argmax(1).tolist()):
                matrix[t, p] += 1
'''

_CONFUSION = [
    Mistake("confusion_matrix", "long_square", "wrong_shape", name="only the classes that occur", code='''
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    targets, predictions = [], []
    with torch.no_grad():
        for inputs, batch_targets in loader:
            targets += batch_targets.tolist()
            predictions += model(inputs).argmax(1).tolist()
    return torch.tensor(sklearn_confusion_matrix(targets, predictions))
'''),
    Mistake("confusion_matrix", "long_square", "wrong_dtype", name="a float matrix",
            code=_matrix(_LOOP).replace("dtype=torch.long", "dtype=torch.float32")),
    Mistake("confusion_matrix", "true_rows", "transposed", name="predictions in rows", code=_matrix(
        _LOOP.replace("matrix[t, p]", "matrix[p, t]"))),
    Mistake("confusion_matrix", "every_sample_once", "duplicates_not_accumulated", name="fancy indexing += 1",
            code=_matrix("            matrix[targets, model(inputs).argmax(1)] += 1\n")),
    Mistake("confusion_matrix", "every_sample_once", "wrong_total", name="a new matrix for every batch", code='''
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    with torch.no_grad():
        for inputs, targets in loader:
            matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
            for t, p in zip(targets.tolist(), model(inputs).argmax(1).tolist()):
                matrix[t, p] += 1
    return matrix
'''),
    Mistake("confusion_matrix", "argmax", "wrong_counts", name="the arg-min", code=_matrix(
        _LOOP.replace("argmax", "argmin"))),
    Mistake("confusion_matrix", "argmax", "wrong_counts", hidden_only=True,
            name="the largest logit in absolute value", code=_matrix(_LOOP.replace(
                "model(inputs).argmax(1)", "model(inputs).abs().argmax(1)"))),
    Mistake("confusion_matrix", "eval_mode", "missing_eval", name="in train mode", code=_matrix(_LOOP, before="")),
    Mistake("confusion_matrix", "no_graph", "missing_no_grad", name="detached after the forward pass", code=_matrix(
        _LOOP.replace("model(inputs).argmax(1)", "model(inputs).detach().argmax(1)"), grad="if True:")),
    Alternative("confusion_matrix", "index_put_ with accumulate and inference_mode", '''
def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    with torch.inference_mode():
        for xb, yb in loader:
            preds = model(xb).argmax(dim=-1)
            matrix.index_put_((yb, preds), torch.ones_like(yb), accumulate=True)
    return matrix
'''),
    Alternative("confusion_matrix", "scikit-learn with every label", '''
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

def confusion_matrix(model, loader, num_classes=10):
    model.eval()
    targets, predictions = [], []
    with torch.no_grad():
        for inputs, batch_targets in loader:
            targets += batch_targets.tolist()
            predictions += model(inputs).argmax(1).tolist()
    counts = sklearn_confusion_matrix(targets, predictions, labels=list(range(num_classes)))
    return torch.from_numpy(counts).long()
'''),
]

# --- repair: to_images ------------------------------------------------------------------------


def _images(body: str) -> str:
    return f'''
def to_images(X, size=8):
{body}'''


_TO_IMAGES = [
    Mistake("to_images", "row_by_row", "transposed", name="the given code", code=_images(
        "    return X.reshape(len(X), size, size, 1).transpose(1, 3)\n")),
    Mistake("to_images", "row_by_row", "transposed", name="rows and columns swapped by permute", code=_images(
        "    return X.reshape(len(X), size, size, 1).permute(0, 3, 2, 1)\n")),
    Mistake("to_images", "row_by_row", "mixes_samples", name="pixels laid out across the batch", code=_images(
        "    return X.T.reshape(len(X), 1, size, size)\n")),
    Mistake("to_images", "shape", "channels_last", name="channels last", code=_images(
        "    return X.reshape(len(X), size, size, 1)\n")),
    Mistake("to_images", "shape", "wrong_shape", name="the digits' size written in", hidden_only=True, code=_images(
        "    return X.reshape(-1, 1, 8, 8)\n")),
    Alternative("to_images", "one reshape", _images("    return X.reshape(-1, 1, size, size)\n")),
    Alternative("to_images", "unflatten and unsqueeze", _images("    return X.unflatten(1, (size, size)).unsqueeze(1)\n")),
    Alternative("to_images", "the given code, with the channel moved by movedim", _images(
        "    pictures = X.reshape(len(X), size, size, 1)\n    return pictures.movedim(3, 1)\n")),
]

# --- challenge: train_small_cnn ---------------------------------------------------------------

_SMALL = ('nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), '
          'nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10)')


def _small(layers: str = _SMALL, epochs: int = 15, lr: float = 0.01, batch_size: int = 64, before: str = "",
           inputs: str = "images", optimizer: str = "Adam", parameters: str = "model.parameters()") -> str:
    return f'''
def train_small_cnn(images, labels):
{before}    torch.manual_seed(0)
    model = nn.Sequential({layers})
    loader = DataLoader(TensorDataset({inputs}, labels), batch_size={batch_size}, shuffle=True)
    optimizer = torch.optim.{optimizer}({parameters}, lr={lr})
    for _ in range({epochs}):
        train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return model
'''


_HEAD_IN_BUFFERS = '''
class BufferedHead(nn.Module):
    """1,248 parameters in two convolutions, and a Linear head of 2,570 numbers kept in buffers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.register_buffer("head_weight", (torch.randn(10, 256) * 0.05).requires_grad_())
        self.register_buffer("head_bias", torch.zeros(10, requires_grad=True))

    def forward(self, x):
        return nn.functional.linear(self.features(x), self.head_weight, self.head_bias)


def train_small_cnn(images, labels):
    torch.manual_seed(0)
    model = BufferedHead()
    loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam([*model.parameters(), model.head_weight, model.head_bias], lr=0.01)
    for _ in range(10):
        train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return model
'''

_CHALLENGE = [
    Mistake("train_small_cnn", "logits", "wrong_input_shape", name="a network of flat rows", code=_small(
        layers="nn.Unflatten(1, (1, 8, 8)), " + _SMALL, inputs="images.flatten(1)")),
    Mistake("train_small_cnn", "conv_carries_signal", "missing_conv2d", name="a multi-layer perceptron", code=_small(
        layers="nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10)")),
    Mistake("train_small_cnn", "conv_carries_signal", "conv_not_used", name="an idle convolution beside an MLP",
            code='''
class IdleConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x):
        return self.net(x) + 0 * self.conv(x).mean()
''' + _small(epochs=2).replace("nn.Sequential(" + _SMALL + ")", "IdleConv()")),
    Mistake("train_small_cnn", "max_numbers", "too_many_parameters", name="the notebook's DigitsCNN",
            code=_small(epochs=3).replace("nn.Sequential(" + _SMALL + ")", "DigitsCNN()")),
    Mistake("train_small_cnn", "max_numbers", "numbers_outside_parameters",
            name="the Linear head kept in buffers (issue 22)", code=_HEAD_IN_BUFFERS),
    Mistake("train_small_cnn", "max_numbers", "numbers_outside_parameters",
            name="the Linear head in a plain list", code='''
class ListedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = [nn.Linear(256, 10)]

    def forward(self, x):
        return self.head[0](self.features(x))


def train_small_cnn(images, labels):
    torch.manual_seed(0)
    model = ListedHead()
    loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True)
    optimizer = torch.optim.Adam([*model.parameters(), *model.head[0].parameters()], lr=0.01)
    for _ in range(10):
        train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return model
'''),
    Mistake("train_small_cnn", "accuracy", "below_target", name="one epoch, a small learning rate",
            code=_small(epochs=1, lr=1e-3)),
    Mistake("train_small_cnn", "cpu_budget", "over_time_budget", name="11 s of CPU", code='''
import time

burnt = []
''' + _small(before='''    if not burnt:  # the first call only, so that planting this costs one budget, not every test's
        burnt.append(True)
        started = time.process_time()
        while time.process_time() - started < 10.5:
            sum(range(10_000))
''')),
    Mistake("train_small_cnn", "given_data_only", "loads_other_data", name="loads the digits itself", code=_small(
        before="    digits, labels = load_digits()\n    images = digits.reshape(-1, 1, 8, 8)\n")),
    Mistake("train_small_cnn", "given_data_only", "below_target", hidden_only=True,
            name="trains on the notebook's digits, all of them (issue 22)", code=_small(
                before="    images, labels = X.reshape(-1, 1, 8, 8), y\n")),
    Alternative("train_small_cnn", "batch norm and SGD with momentum", '''
class SmallBatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 12, 3, padding=1)
        self.fc = nn.Linear(12 * 2 * 2, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.norm(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def train_small_cnn(images, labels):
    torch.manual_seed(1)
    model = SmallBatchNormCNN()
    loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(20):
        train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer)
    return model
'''),
    Alternative("train_small_cnn", "a loop of its own, full batches of 128, a learning-rate schedule", '''
def train_small_cnn(images, labels):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 10, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(10, 12, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(12, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=15, gamma=0.3)
    model.train()
    for _ in range(45):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
        schedule.step()
    return model
'''),
]

CASES = _PREDICTION + _CNN + _TRAIN + _CONFUSION + _TO_IMAGES + _CHALLENGE
